"""A popularity baseline with the same fit / recommend / score interface."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


class PopularityRecommender(BaseEstimator):
    """Rank every item by its number of training positives, the same for all users.

    The yardstick a personalised model must beat: on MovieLens it is
    surprisingly strong. Accepts the same inputs as :class:`skbpr.HybridBPR`
    and works with the scorers of :mod:`skbpr.metrics`.

    Attributes
    ----------
    item_counts_ : ndarray of shape (n_items,)
        Training positives per item.
    train_positives_ : scipy.sparse.csr_matrix
        Training positives, excluded from rankings.
    """

    def fit(self, X: Any, Rneg: Any = None, **kwargs: Any) -> PopularityRecommender:
        """Count each item's training positives; features and negatives are ignored."""
        from skbpr.interactions import Interactions

        data = X if isinstance(X, Interactions) else Interactions.from_matrices(X, Rneg)
        self.train_positives_ = data.positives
        self.item_counts_ = np.asarray(data.positives.getnnz(axis=0), dtype=np.float32)
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        self.device_ = torch.device("cpu")
        return self

    def _user_item_scores(self, users: torch.Tensor) -> torch.Tensor:
        check_is_fitted(self, "item_counts_")
        return torch.as_tensor(self.item_counts_).expand(users.numel(), -1).clone()

    def score(self, X: Any, y: Any = None) -> float:
        """NDCG@10 of the held-out positives in ``X``, training positives excluded."""
        from skbpr.metrics import ndcg_at_k

        return ndcg_at_k(self, X, k=10)
