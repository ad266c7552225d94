"""skbpr: Bayesian Personalized Ranking as a scikit-learn estimator.

``HybridBPR`` learns user and item embeddings from implicit feedback, with
optional feature matrices on both sides and implicit negatives, in torch.

``import skbpr`` is cheap: the public classes are loaded on first access
(``skbpr.HybridBPR``, ``from skbpr import HybridBPR``), so torch,
scikit-learn and pandas are imported only when a class that needs them is
used, and MLflow and Optuna only where tracking or tuning is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "HybridBPR": "skbpr.models.hybrid",
    "Interactions": "skbpr.data.interactions",
    "InteractionsEncoder": "skbpr.data.preprocessing",
    "PopularityRecommender": "skbpr.models.popularity",
}

__all__ = ["HybridBPR", "Interactions", "InteractionsEncoder", "PopularityRecommender", "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from skbpr.data.interactions import Interactions
    from skbpr.data.preprocessing import InteractionsEncoder
    from skbpr.models.hybrid import HybridBPR
    from skbpr.models.popularity import PopularityRecommender


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skbpr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
