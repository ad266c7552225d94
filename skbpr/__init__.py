"""skbpr: Bayesian Personalized Ranking as a scikit-learn estimator.

``HybridBPR`` learns user and item embeddings from implicit feedback, with
optional feature matrices on both sides and implicit negatives, in torch.
Heavy optional dependencies (MLflow, Optuna) are imported only where used.
"""

from skbpr.baseline import PopularityRecommender
from skbpr.estimator import HybridBPR
from skbpr.interactions import Interactions
from skbpr.preprocessing import InteractionsEncoder

__version__ = "0.1.0"

__all__ = ["HybridBPR", "Interactions", "InteractionsEncoder", "PopularityRecommender", "__version__"]
