"""A popularity baseline with the fit / score interface of HybridBPR, for the scorers of skbpr.metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skbpr.models.base import RecommenderTagsMixin


class PopularityRecommender(RecommenderTagsMixin, BaseEstimator):
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

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import evaluate
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> model.item_counts_
    array([2., 2., 0., 1.], dtype=float32)
    >>> scores = evaluate(model, test, metrics=["precision@1", "recall@2"])
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'precision@1': 0.6667, 'recall@2': 1.0}
    """

    def fit(self, X: Any, Rneg: Any = None, **kwargs: Any) -> PopularityRecommender:
        """Count each item's training positives; features and negatives are ignored.

        Parameters
        ----------
        X : Interactions or sparse matrix or array of shape (n_users, n_items)
            Training positives (nonzero = interaction; values other than 1
            are treated as binary, with a ``UserWarning``).
        Rneg : sparse matrix or array of shape (n_users, n_items), optional
            Implicit negatives, checked and ignored. A 1-D array (the target
            ``y`` of scikit-learn tools) is ignored.
        **kwargs
            Other arguments of :meth:`skbpr.HybridBPR.fit`, ignored.

        Returns
        -------
        self : PopularityRecommender
        """
        from skbpr.data.interactions import Interactions
        from skbpr.models.base import check_interaction_matrix, ignore_target, warn_if_weighted

        Rneg = ignore_target(Rneg)
        if isinstance(X, Interactions):
            data = X
        else:
            X = check_interaction_matrix(X, "X")
            data = Interactions.from_matrices(X, None if Rneg is None else check_interaction_matrix(Rneg, "Rneg"))
        warn_if_weighted(data, type(self).__name__)
        self.train_positives_ = data.positives
        self.item_counts_ = np.asarray(data.positives.getnnz(axis=0), dtype=np.float32)
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        self.n_features_in_ = data.n_items
        self.device_ = torch.device("cpu")
        return self

    def user_item_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for ``users``: the item's training popularity, the same for every user."""
        check_is_fitted(self, "item_counts_")
        return torch.as_tensor(self.item_counts_).expand(users.numel(), -1).clone()

    def score(self, X: Any, y: Any = None) -> float:
        """NDCG@10 of the held-out positives in ``X``, training positives excluded."""
        from skbpr.evaluation.metrics import ndcg_at_k

        return ndcg_at_k(self, X, k=10)
