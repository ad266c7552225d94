"""Ranking metrics of a fitted recommender on held-out positives: :func:`evaluate` and one function per metric.

The protocol (what is ranked, what counts, ties, sampled negatives) is the
one of :mod:`skbpr.evaluation.ranking`, which computes the metrics from
scores; scorers for scikit-learn's model selection are in
:mod:`skbpr.evaluation.scorers`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from skbpr.evaluation.names import DEFAULT_METRICS, cutoff_name, parse_metrics
from skbpr.evaluation.ranking import ListResults, as_bool_csr, check_list_metrics, evaluate_lists

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "arp_at_k",
    "auc_score",
    "coverage_at_k",
    "evaluate",
    "gini_at_k",
    "ild_at_k",
    "hit_rate_at_k",
    "implicit_auc_score",
    "map_at_k",
    "mrr_score",
    "ndcg_at_k",
    "novelty_at_k",
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
    item_vectors: Any = None,
    per_user: bool = False,
) -> dict[str, float] | pd.DataFrame:
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
        Metric names: the accuracy metrics of :mod:`skbpr.evaluation.ranking`
        and the beyond-accuracy ``coverage@k``, ``gini@k``, ``arp@k``,
        ``novelty@k`` and ``ild@k`` of :mod:`skbpr.evaluation.beyond`, all
        read from one ranking of the catalogue; item popularity is counted
        on the training positives (``train_positives_``).
    exclude_train : bool
        Remove the training positives from every ranking.
    chunk_size, n_sampled_negatives, random_state
        See :func:`evaluate_scores_per_user`.
    item_vectors : array-like or sparse matrix of shape (n_items, d), optional
        Item vectors of ``ild@k`` (for instance genre rows); default the
        model's item representations (``item_representations()``).
    per_user : bool, default=False
        Return one row per evaluated user instead of the means.

    Returns
    -------
    dict of str to float, or pandas.DataFrame
        Mean of each metric over the evaluated users (``coverage@k`` and
        ``gini@k``: their value over all the lists). With ``per_user=True``,
        a DataFrame indexed by the evaluated users (``user``: the raw user
        ids when ``X`` carries them, else indices), one column per metric;
        ``coverage@k`` and ``gini@k`` have no per-user value and are refused.

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
    >>> evaluate(model, test, metrics=["hit_rate@2", "coverage@1"])  # the top-1 lists are [3], [1], [0]
    {'hit_rate@2': 1.0, 'coverage@1': 0.75}
    >>> evaluate(model, test, metrics=["precision@1", "arp@1"], per_user=True).round(4).reset_index()
       user  precision@1   arp@1
    0     0          0.0  0.3333
    1     1          1.0  0.6667
    2     2          1.0  0.6667
    """
    if not isinstance(per_user, bool | np.bool_):
        raise TypeError(f"per_user must be a bool, got {per_user!r}")
    parsed = parse_metrics(metrics)
    if per_user:
        for name, m in parsed:
            if not m.per_user:
                raise ValueError(
                    f"metric {name!r} describes all the lists together and has no per-user value; "
                    "leave it out of per_user=True"
                )
    results = evaluate_lists_of(
        estimator,
        X,
        metrics=metrics,
        exclude_train=exclude_train,
        chunk_size=chunk_size,
        n_sampled_negatives=n_sampled_negatives,
        random_state=random_state,
        item_vectors=item_vectors,
    )
    if per_user:
        return per_user_frame(results, _user_ids(X))
    return _means(results)


def _user_ids(X: Any) -> np.ndarray | None:
    ids = getattr(X, "user_ids", None)
    return None if ids is None else np.asarray(ids)


def per_user_frame(results: ListResults, user_ids: np.ndarray | None) -> pd.DataFrame:
    """The per-user values of ``results`` as a DataFrame indexed by ``user`` (raw ids when given)."""
    import pandas as pd

    index = pd.Index(results.users if user_ids is None else user_ids[results.users], name="user")
    return pd.DataFrame(
        {name: results.per_user[name] for name in results.names if name in results.per_user}, index=index
    )


def _means(results: ListResults) -> dict[str, float]:
    if len(results.users) == 0:
        warnings.warn("no user has a test positive outside exclude; all metrics are NaN", RuntimeWarning, stacklevel=3)
    means: dict[str, float] = dict(results.catalogue)
    for name, arr in results.per_user.items():
        defined = arr[~np.isnan(arr)]
        if len(defined) == 0 and len(results.users) > 0:
            warnings.warn(
                f"metric {name!r} is undefined for every evaluated user; returning NaN", RuntimeWarning, stacklevel=3
            )
        means[name] = float(defined.mean()) if len(defined) else math.nan
    return {name: means[name] for name in results.names}


def prepare_evaluation(
    estimator: Any,
    X: Any,
    *,
    metrics: Iterable[str] | str,
    exclude_train: bool = True,
    n_sampled_negatives: int | None = None,
    item_vectors: Any = None,
    all_cutoffs: bool = False,
) -> tuple[Any, Any, dict[str, Any]]:
    """The checks of :func:`evaluate`, before any work: the resolved estimator and data, and the pass's arguments."""
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
    representations = getattr(estimator, "item_representations", None)
    vectors = check_list_metrics(
        parsed,
        test.shape[1],
        n_sampled_negatives=n_sampled_negatives,
        item_vectors=item_vectors,
        has_vectors=callable(representations),
        all_cutoffs=all_cutoffs,
    )
    if vectors is None and any(m.base == "ild" for _, m in parsed):
        vectors = np.asarray(representations()[0], dtype=np.float64)
    negatives = None
    if any(m.base == "implicit_auc" for _, m in parsed):
        negatives = X.negatives
        if negatives is None:
            raise ValueError("metric 'implicit_auc' requires X.negatives, but X.negatives is None")
        negatives = as_bool_csr(negatives, "X.negatives", test.shape)
        negatives = negatives > as_bool_csr(train, "train_positives_")
    kwargs = {
        "exclude": train if exclude_train else None,
        "metrics": metrics,
        "test_negatives": negatives,
        "n_sampled_negatives": n_sampled_negatives,
        "train": train,
        "item_vectors": vectors,
        "device": estimator.device_,
    }
    return estimator, X, kwargs


def evaluate_lists_of(
    estimator: Any,
    X: Any,
    *,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    exclude_train: bool = True,
    chunk_size: int = 1024,
    n_sampled_negatives: int | None = None,
    random_state: Any = None,
    item_vectors: Any = None,
) -> ListResults:
    """The ranking pass of :func:`evaluate`: per-user values, top-k lists and catalogue metrics."""
    if not isinstance(metrics, str):
        metrics = list(metrics)  # read twice: checked, then computed
    estimator, X, kwargs = prepare_evaluation(
        estimator,
        X,
        metrics=metrics,
        exclude_train=exclude_train,
        n_sampled_negatives=n_sampled_negatives,
        item_vectors=item_vectors,
    )
    _warn_unseen_test_users(sp.csr_matrix(X.positives), sp.csr_matrix(estimator.train_positives_))
    return evaluate_lists(
        estimator.user_item_scores, X.positives, random_state=random_state, chunk_size=chunk_size, **kwargs
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


def coverage_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Catalogue coverage: the share of the items in at least one evaluated user's top k.

    ``coverage@k = |union_u L_u| / n_items``, ``L_u`` being user u's top-k
    list (training positives excluded), over the users :func:`evaluate`
    scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import coverage_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> coverage_at_k(model, test, k=1)  # the lists are [3], [1], [0]
    0.75
    """
    return evaluate_metric(estimator, X, cutoff_name("coverage", k), **kwargs)


def gini_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Gini index of how often each item of the catalogue appears in the top-k lists.

    With ``x_i`` the number of lists holding item i (zeros included), sorted
    ascending, ``gini@k = sum_i (2i - n - 1) x_i / (n * sum_i x_i)`` over the
    ``n`` items: 0 when every item is recommended equally often, close to 1
    when a few items fill every list. Lower is more even.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import gini_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> gini_at_k(model, test, k=1)  # counts 0, 1, 1, 1: (-3*0 - 1 + 1 + 3) / (4 * 3)
    0.25
    """
    return evaluate_metric(estimator, X, cutoff_name("gini", k), **kwargs)


def arp_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Average recommendation popularity: the mean over users of the mean popularity of their top k.

    ``arp@k = mean_u mean_{i in L_u} n_i / n_users``, ``n_i`` the number of
    training users with a positive on item i and ``n_users`` the rows of the
    training matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import arp_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(arp_at_k(model, test, k=1), 4)  # (1/3 + 2/3 + 2/3) / 3
    0.5556
    """
    return evaluate_metric(estimator, X, cutoff_name("arp", k), **kwargs)


def novelty_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Mean self-information of the recommended items, in bits.

    ``novelty@k = mean_u mean_{i in L_u} -log2((n_i + 1) / (n_users + 1))``,
    ``n_i`` the number of training users with a positive on item i: higher
    for lists of less popular items.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import novelty_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(novelty_at_k(model, test, k=1), 4)  # (-log2(2/4) - 2 log2(3/4)) / 3
    0.61
    """
    return evaluate_metric(estimator, X, cutoff_name("novelty", k), **kwargs)


def ild_at_k(estimator: Any, X: Any, k: int = 10, **kwargs: Any) -> float:
    """Intra-list diversity: the mean over users of the mean cosine distance between the items of their top k.

    ``ild@k = mean_u mean_{a < b in L_u} (1 - cos(v_a, v_b))`` with ``v``
    the rows of ``item_vectors=`` (for instance genres), else the model's
    item representations; a zero vector has cosine 0 with every vector.
    Users whose list has a single item are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import ild_at_k
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> genres = np.array([[1, 0], [1, 0], [0, 1], [1, 1]])
    >>> model = PopularityRecommender().fit(train)
    >>> round(ild_at_k(model, test, k=2, item_vectors=genres), 4)  # lists [3, 2], [1, 3], [0, 2]
    0.5286
    """
    return evaluate_metric(estimator, X, cutoff_name("ild", k), **kwargs)
