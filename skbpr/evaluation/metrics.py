"""Ranking metrics of a fitted recommender on held-out positives: :func:`evaluate` and one function per metric.

The protocol (what is ranked, what counts, ties, sampled negatives) is the
one of :mod:`skbpr.evaluation.ranking`, which computes the metrics from
scores; scorers for scikit-learn's model selection are in
:mod:`skbpr.evaluation.scorers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from skbpr.evaluation.names import DEFAULT_METRICS, cutoff_name, parse_metrics
from skbpr.evaluation.ranking import as_bool_csr, evaluate_scores

__all__ = [
    "auc_score",
    "evaluate",
    "hit_rate_at_k",
    "implicit_auc_score",
    "map_at_k",
    "mrr_score",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]


# --------------------------------------------------------------------------
# score-function API
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# estimator API
# --------------------------------------------------------------------------


def _resolve(estimator: Any, X: Any) -> tuple[Any, Any]:
    if isinstance(estimator, Pipeline):
        if len(estimator) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    if not callable(getattr(estimator, "user_item_scores", None)):
        raise TypeError(
            f"estimator {type(estimator).__name__} has no user_item_scores method; expected a fitted skbpr recommender"
        )
    for attr in ("train_positives_", "device_"):
        if not hasattr(estimator, attr):
            raise NotFittedError(
                f"this {type(estimator).__name__} instance is not fitted yet "
                f"(missing {attr}); call fit before evaluating"
            )
    if not hasattr(X, "positives") or not hasattr(X, "negatives"):
        X = _HeldOutMatrix(_held_out_positives(estimator, X), None)
    return estimator, X


@dataclass(frozen=True)
class _HeldOutMatrix:
    """Held-out positives given as a users x items matrix (no implicit negatives)."""

    positives: sp.csr_matrix
    negatives: None


_PER_USER_SPLITTERS = (
    "skbpr.model_selection.PerUserKFold, PerUserShuffleSplit, LeaveKOut or PerUserTimeSplit as cv, "
    "or skbpr.model_selection.train_test_split"
)


def _held_out_positives(estimator: Any, X: Any) -> sp.csr_matrix:
    """Check a users x items matrix of held-out positives against the fitted id space."""
    if X is None or not (sp.issparse(X) or hasattr(X, "__array__") or isinstance(X, list | tuple)):
        raise TypeError(
            "X must be an Interactions container or a users x items matrix of held-out positives, "
            f"got {type(X).__name__}"
        )
    from skbpr.data.interaction_matrix import check_interaction_matrix
    from skbpr.data.interactions import as_csr

    matrix = as_csr(check_interaction_matrix(X, "X"), "X")
    n_users, n_items = estimator.train_positives_.shape
    name = type(estimator).__name__
    if matrix.shape[1] != n_items:
        raise ValueError(
            f"X has {matrix.shape[1]} features, but {name} is expecting {n_items} features as input "
            "(X is a users x items matrix of held-out positives, one column per item of the fitted model)"
        )
    if matrix.shape[0] != n_users:
        raise ValueError(
            f"X has {matrix.shape[0]} rows (users) but {name} was fitted on {n_users}: a users x items matrix "
            "of held-out positives must be in the fitted id space, row u being user u. scikit-learn's "
            "splitters (the default KFold of cross_validate and GridSearchCV) split a matrix by rows: "
            "they hold out whole users the model never saw and renumber the others. Split each user's "
            f"positives instead: put the data in an Interactions container and use {_PER_USER_SPLITTERS}"
        )
    return matrix


def _warn_unseen_test_users(test: sp.csr_matrix, train: sp.csr_matrix) -> None:
    """Warn when most test users have no training positive: the split held out whole users."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    if users.size == 0:
        return
    unseen = int(np.count_nonzero(np.diff(train.indptr)[users] == 0))
    if unseen > 0.5 * users.size:
        warnings.warn(
            f"{unseen} of the {users.size} test users have no training positive: the split held out whole "
            "users, whom the model ranks from untrained representations, so the metric measures the wrong "
            "thing. scikit-learn's KFold and ShuffleSplit (the default cv of cross_validate and GridSearchCV) "
            "split by position and positives are stored sorted by user. Split each user's positives "
            f"instead: {_PER_USER_SPLITTERS}",
            UserWarning,
            stacklevel=3,
        )


def evaluate(
    estimator: Any,
    X: Any,
    *,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    exclude_train: bool = True,
    chunk_size: int = 1024,
    n_sampled_negatives: int | None = None,
    random_state: Any = None,
) -> dict[str, float]:
    """Ranking metrics of a fitted recommender on held-out interactions.

    Parameters
    ----------
    estimator : fitted recommender or Pipeline ending in one
        Needs ``user_item_scores``, ``device_`` and ``train_positives_``.
        With a Pipeline, ``X`` is transformed by all steps but the last.
    X : Interactions or sparse matrix or array of shape (n_users, n_items)
        Held-out data: ``X.positives`` are the test positives and
        ``X.negatives`` (or None) the implicit negatives; or a matrix of
        test positives (nonzero = positive) in the fitted id space, as
        ``fit`` takes it.
    metrics : str or sequence of str
        Metric names, see the module docstring.
    exclude_train : bool
        Remove the training positives from every ranking.
    chunk_size, n_sampled_negatives, random_state
        See :func:`evaluate_scores_per_user`.

    Returns
    -------
    dict of str to float
        Mean of each metric over the evaluated users.

    Warns
    -----
    UserWarning
        When more than half of the users with test positives have no
        training positive: the split held out whole users (the default
        ``KFold`` of scikit-learn does, on positives sorted by user), and
        the per-user splitters of :mod:`skbpr.model_selection` are needed.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import evaluate
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scores = evaluate(model, test, metrics=["precision@1", "recall@2", "auc"])
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'precision@1': 0.6667, 'recall@2': 1.0, 'auc': 0.6667}
    """
    estimator, X = _resolve(estimator, X)
    if not isinstance(exclude_train, bool | np.bool_):
        raise TypeError(f"exclude_train must be a bool, got {exclude_train!r}")
    test = X.positives
    train = estimator.train_positives_
    if not sp.issparse(test):
        raise TypeError(f"X.positives must be a scipy sparse matrix, got {type(test).__name__}")
    if not sp.issparse(train) or train.shape != test.shape:
        raise ValueError(
            f"X.positives has shape {test.shape} but the estimator was fitted on shape {getattr(train, 'shape', None)}"
        )
    parsed = parse_metrics(metrics)
    _warn_unseen_test_users(sp.csr_matrix(test), sp.csr_matrix(train))
    negatives = None
    if any(m.base == "implicit_auc" for _, m in parsed):
        negatives = X.negatives
        if negatives is None:
            raise ValueError("metric 'implicit_auc' requires X.negatives, but X.negatives is None")
        negatives = as_bool_csr(negatives, "X.negatives", test.shape)
        negatives = negatives > as_bool_csr(train, "train_positives_")
    device = estimator.device_
    return evaluate_scores(
        estimator.user_item_scores,
        test,
        exclude=train if exclude_train else None,
        metrics=metrics,
        test_negatives=negatives,
        n_sampled_negatives=n_sampled_negatives,
        random_state=random_state,
        chunk_size=chunk_size,
        device=device,
    )


def evaluate_metric(estimator: Any, X: Any, metric: str, **kwargs: Any) -> float:
    """The mean of one metric, ``evaluate(estimator, X, metrics=(metric,), **kwargs)[metric]``.

    Parameters
    ----------
    estimator, X
        As in :func:`evaluate`.
    metric : str
        Metric name, see :mod:`skbpr.evaluation.ranking`.
    **kwargs
        Other arguments of :func:`evaluate`.

    Returns
    -------
    float
    """
    return evaluate(estimator, X, metrics=(metric,), **kwargs)[metric]


def auc_score(estimator: Any, X: Any, **kwargs: Any) -> float:
    """Mean per-user AUC over all candidate items (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import auc_score
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(auc_score(model, test), 4)
    0.6667
    """
    return evaluate_metric(estimator, X, "auc", **kwargs)


def implicit_auc_score(estimator: Any, X: Any, **kwargs: Any) -> float:
    """Mean per-user AUC of test positives against held-out negatives.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import Interactions, PopularityRecommender
    >>> from skbpr.metrics import implicit_auc_score
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> shown = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    >>> held_out = Interactions.from_matrices(test, negatives=shown)
    >>> model = PopularityRecommender().fit(train)
    >>> implicit_auc_score(model, held_out)  # user 2 has no held-out negative and is ignored
    0.5
    """
    return evaluate_metric(estimator, X, "implicit_auc", **kwargs)


def mrr_score(estimator: Any, X: Any, **kwargs: Any) -> float:
    """Mean reciprocal rank of the first test positive (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import mrr_score
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(mrr_score(model, test), 4)
    0.8333
    """
    return evaluate_metric(estimator, X, "mrr", **kwargs)


def ndcg_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Mean NDCG@k with binary gains (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import ndcg_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(ndcg_at_k(model, test, k=2), 4)
    0.877
    """
    return evaluate_metric(estimator, X, cutoff_name("ndcg", k), **kwargs)


def precision_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Mean precision@k (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import precision_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> precision_at_k(model, test, k=2)
    0.5
    """
    return evaluate_metric(estimator, X, cutoff_name("precision", k), **kwargs)


def recall_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Mean recall@k, hits / number of test positives (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import recall_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(recall_at_k(model, test, k=1), 4)
    0.6667
    >>> recall_at_k(model, test, k=2)
    1.0
    """
    return evaluate_metric(estimator, X, cutoff_name("recall", k), **kwargs)


def map_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Mean average precision at k (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import map_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(map_at_k(model, test, k=2), 4)
    0.8333
    """
    return evaluate_metric(estimator, X, cutoff_name("map", k), **kwargs)


def hit_rate_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Fraction of users with a test positive in their top k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import hit_rate_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(hit_rate_at_k(model, test, k=1), 4)
    0.6667
    >>> hit_rate_at_k(model, test, k=2)
    1.0
    """
    return evaluate_metric(estimator, X, cutoff_name("hit_rate", k), **kwargs)
