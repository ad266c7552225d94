"""Model files: a fitted recommender with its raw ids, written atomically with joblib and read back.

``skbpr fit --save`` writes them; ``skbpr evaluate``, ``skbpr recommend`` and
:meth:`skbpr.distributed.BatchRecommender.from_file` read them. joblib files
are pickles: loading one runs code, so load only files you trust.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skbpr.utils.files import atomic_destination

__all__ = ["MODEL_FORMAT", "read_model_file", "write_model_file"]

MODEL_FORMAT = "skbpr-model/1"


def write_model_file(
    path: str | os.PathLike[str],
    model: Any,
    *,
    config: dict[str, Any] | None = None,
    user_ids: Any = None,
    item_ids: Any = None,
    item_titles: Any = None,
) -> None:
    """Write ``model`` with its configuration and raw ids to ``path``, atomically.

    The bundle is written beside the target and renamed over it, so a crash
    never leaves a half-written model file.

    Parameters
    ----------
    path : str or path-like
        The file; its folder is created if missing.
    model : estimator
        A fitted recommender.
    config : dict or None, default=None
        The configuration the model was trained from, as plain data.
    user_ids, item_ids : array-like or None, default=None
        The raw ids behind the model's user and item indices.
    item_titles : array-like or None, default=None
        Item titles for display (MovieLens), in item index order.
    """
    import joblib

    import skbpr

    bundle = {
        "format": MODEL_FORMAT,
        "skbpr_version": skbpr.__version__,
        "estimator": model,
        "config": config,
        "user_ids": user_ids,
        "item_ids": item_ids,
        "item_titles": item_titles,
    }
    with atomic_destination(path) as partial:
        joblib.dump(bundle, partial)


def read_model_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A model file written by :func:`write_model_file` (or a bare pickled estimator) as a bundle dict.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dict
        ``estimator``, ``config``, ``user_ids``, ``item_ids`` and
        ``item_titles`` (``None`` where the file does not carry them).

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    ValueError
        When the file holds no skbpr model.
    """
    import joblib

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file not found: {os.fspath(path)!r}")
    obj = joblib.load(path)
    if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
        return obj
    if hasattr(obj, "recommend") and hasattr(obj, "train_positives_"):
        return {"estimator": obj, "config": None, "user_ids": None, "item_ids": None, "item_titles": None}
    raise ValueError(f"{os.fspath(path)!r} holds no skbpr model (found {type(obj).__name__})")
