"""Full-catalogue ranking metrics for implicit-feedback recommenders.

Every metric is computed per user from one dense score matrix per chunk of
users, on a torch device, and then averaged over the evaluated users.

Protocol
--------
For each user the *ranking* contains every item that is not in ``exclude``
(usually the training positives). The held-out *test positives* are the
nonzero entries of ``test`` outside ``exclude`` (an item that is both in
``test`` and in ``exclude`` is removed from the ranking and does not count).
Users without any test positive are skipped.

* ``precision@k`` = hits in the top k / k
* ``recall@k`` = hits in the top k / number of test positives
* ``ndcg@k``: binary gains, discount ``1 / log2(rank + 1)``, ideal DCG with
  ``min(#test positives, k)`` hits
* ``map@k``: sum over hits in the top k of the precision at that rank,
  divided by ``min(#test positives, k)``
* ``hit_rate@k`` = 1 if there is at least one hit in the top k, else 0
* ``mrr`` = 1 / rank of the first test positive in the full ranking
* ``auc``: probability that a random test positive is scored above a random
  candidate negative (an item neither in ``exclude`` nor in ``test``); ties
  count 1/2. Undefined (NaN, ignored in the mean) for users without
  candidate negatives.
* ``implicit_auc`` (alias ``neg_auc``): the same probability against the
  user's held-out implicit negatives (``test_negatives`` outside ``exclude``
  and outside ``test``). Users without such negatives are ignored for this
  metric.

Ties in the rank-based metrics (all but the two AUCs) are broken by item
index: among equal scores, the lower item index is ranked first.

With ``n_sampled_negatives=N`` each user's test positives are ranked against
``N`` negatives drawn uniformly without replacement from the user's candidate
negatives (all of them when the user has at most ``N``) instead of against
the full catalogue; every metric except ``implicit_auc`` is then computed
over the candidate set {test positives} U {sampled negatives}. The sample
depends only on ``random_state`` and the data, not on ``chunk_size``.

The beyond-accuracy metrics ``coverage@k``, ``gini@k``, ``arp@k``,
``novelty@k`` and ``ild@k`` describe each user's top-k list of the same
ranking (see :mod:`skbpr.evaluation.beyond` for their formulas); they need
the full catalogue (no ``n_sampled_negatives``) and a cutoff no larger than
the catalogue.

Per-user values are NaN where a metric is undefined; means ignore them.
Results are keyed by the metric names exactly as given; names are parsed
case-insensitively and ``"ndcg_at_10"`` is read as ``"ndcg@10"``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from skbpr.evaluation.beyond import catalogue_value, item_counts, list_context
from skbpr.evaluation.chunk_metrics import evaluate_chunk
from skbpr.evaluation.names import DEFAULT_METRICS, MetricName, parse_metrics
from skbpr.training.devices import resolve_device
from skbpr.utils.validation import check_number, invalid

__all__ = [
    "ListResults",
    "as_bool_csr",
    "check_list_metrics",
    "evaluate_lists",
    "evaluate_scores",
    "evaluate_scores_per_user",
]


def as_bool_csr(matrix: Any, argname: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        raise TypeError(f"{argname} must be a scipy sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"{argname} must be 2-dimensional, got shape {matrix.shape}")
    if shape is not None and tuple(matrix.shape) != tuple(shape):
        raise ValueError(f"{argname} must have the same shape as test {tuple(shape)}, got {tuple(matrix.shape)}")
    csr = sp.csr_matrix(matrix, copy=True)
    csr.sum_duplicates()
    csr = csr.astype(bool)
    csr.eliminate_zeros()
    return csr


def _make_rng(random_state: Any) -> np.random.Generator:
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**32, size=4))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}")
        return np.random.default_rng(int(random_state))
    raise TypeError(f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}")


def evaluate_scores_per_user(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    test: Any,
    *,
    exclude: Any = None,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    test_negatives: Any = None,
    n_sampled_negatives: int | None = None,
    random_state: Any = None,
    chunk_size: int = 1024,
    device: str | torch.device = "cpu",
    train: Any = None,
    item_vectors: Any = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-user ranking metrics from a score function.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(users)`` takes a LongTensor of user indices on ``device``
        and returns a ``(len(users), n_items)`` tensor of scores.
    test : scipy sparse matrix of shape (n_users, n_items)
        Nonzero entries are the held-out positives.
    exclude : scipy sparse matrix of the same shape, optional
        Items removed from each user's ranking (typically training positives).
    metrics : str or sequence of str
        Metric names, see the module docstring.
    test_negatives : scipy sparse matrix of the same shape, optional
        Held-out implicit negatives, required for ``"implicit_auc"``.
    n_sampled_negatives : int, optional
        Rank against this many sampled candidate negatives per user instead
        of the full catalogue.
    random_state : int, RandomState, Generator or None
        Seed of the negative sampling.
    chunk_size : int
        Number of users scored at once.
    device : str or torch.device
        Device of the per-chunk computation.
    train : scipy sparse matrix of the same shape, optional
        Training positives, whose per-item counts are the popularity of
        ``arp@k`` and ``novelty@k`` (default ``exclude``).
    item_vectors : array-like of shape (n_items, d), optional
        Item vectors of ``ild@k`` (feature rows, embeddings); required for it.

    Returns
    -------
    users : ndarray of shape (n_evaluated,)
        Indices of the users with at least one test positive outside
        ``exclude``, ascending.
    values : dict of str to ndarray of shape (n_evaluated,)
        Per-user value of each requested metric (keyed by the name as
        given); NaN where the metric is undefined for that user.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skbpr.metrics import evaluate_scores_per_user
    >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    >>> test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 1, 0]]))
    >>> train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]]))
    >>> def score_fn(users):
    ...     return scores[users]
    >>> users, values = evaluate_scores_per_user(score_fn, test, exclude=train, metrics=["mrr", "auc"])
    >>> users
    array([0, 1])
    >>> values["mrr"], values["auc"]
    (array([1. , 0.5]), array([1. , 0.5]))
    """
    if not isinstance(metrics, str) and isinstance(metrics, Iterable):
        metrics = list(metrics)  # read twice: checked here, then computed
    parsed = parse_metrics(metrics)
    for name, m in parsed:
        if not m.per_user:
            raise ValueError(
                f"metric {name!r} describes all the lists together and has no per-user value; "
                "evaluate_scores returns it"
            )
    result = evaluate_lists(
        score_fn,
        test,
        exclude=exclude,
        metrics=metrics,
        test_negatives=test_negatives,
        n_sampled_negatives=n_sampled_negatives,
        random_state=random_state,
        chunk_size=chunk_size,
        device=device,
        train=train,
        item_vectors=item_vectors,
    )
    return result.users, result.per_user


def check_list_metrics(
    parsed: list[tuple[str, MetricName]],
    n_items: int,
    *,
    n_sampled_negatives: int | None = None,
    item_vectors: Any = None,
    has_popularity: bool = True,
    has_vectors: bool | None = None,
    all_cutoffs: bool = False,
) -> np.ndarray | None:
    """Check what the beyond-accuracy metrics among ``parsed`` need, before any work.

    Their cutoff must not exceed the catalogue (every metric's with
    ``all_cutoffs``), they need the full-catalogue ranking, ``arp`` and
    ``novelty`` the training positives, ``ild`` item vectors (``item_vectors``,
    or the model's when ``has_vectors``). Returns ``item_vectors`` as a dense
    ``(n_items, d)`` float array (or None).
    """
    for name, m in parsed:
        if m.k is not None and m.k > n_items and (all_cutoffs or m.beyond_accuracy):
            raise invalid("metrics", f"cutoffs no larger than the catalogue of {n_items} items", name)
        if not m.beyond_accuracy:
            continue
        if n_sampled_negatives is not None:
            raise ValueError(
                f"metric {name!r} describes the top-k lists of the full catalogue; it cannot be computed with "
                f"n_sampled_negatives={n_sampled_negatives!r} (leave it None)"
            )
        if m.base in ("arp", "novelty") and not has_popularity:
            raise ValueError(f"metric {name!r} takes item popularity from the training positives: pass train=")
        if m.base == "ild" and item_vectors is None and not has_vectors:
            raise ValueError(
                f"metric {name!r} needs item vectors: pass item_vectors= (one row per item, for instance its genres)"
            )
    if item_vectors is None:
        return None
    vectors = item_vectors.toarray() if sp.issparse(item_vectors) else item_vectors
    try:
        vectors = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("item_vectors", "a numeric matrix with one row per item", item_vectors,
                      shown=type(item_vectors).__name__) from None  # fmt: skip
    if vectors.ndim != 2 or vectors.shape[0] != n_items:
        raise invalid(
            "item_vectors", f"a matrix with one row per item ({n_items} rows)", vectors, shown=f"shape {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        raise invalid("item_vectors", "finite", vectors, shown="non-finite values")
    return vectors


@dataclass(frozen=True)
class ListResults:
    """What one ranking pass yields: the evaluated users, per-user values and the top-k lists.

    ``per_user`` holds the per-user metrics keyed by the names as given;
    ``lists`` the top-k lists ``(n_evaluated, k)`` (item indices, -1 in
    empty slots) of every k that a catalogue metric (``coverage``,
    ``gini``) asked for; ``catalogue`` those metrics' values.
    """

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    lists: dict[int, np.ndarray]
    catalogue: dict[str, float]
    n_items: int
    names: tuple[str, ...]


def evaluate_lists(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    test: Any,
    *,
    exclude: Any = None,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    test_negatives: Any = None,
    n_sampled_negatives: int | None = None,
    random_state: Any = None,
    chunk_size: int = 1024,
    device: str | torch.device = "cpu",
    train: Any = None,
    item_vectors: Any = None,
) -> ListResults:
    """The one ranking pass behind :func:`evaluate_scores` and :func:`evaluate_scores_per_user`."""
    parsed = parse_metrics(metrics)
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable, got {type(score_fn).__name__}")
    test_csr = as_bool_csr(test, "test")
    shape = test_csr.shape
    exclude_csr = None if exclude is None else as_bool_csr(exclude, "exclude", shape)
    neg_csr = None if test_negatives is None else as_bool_csr(test_negatives, "test_negatives", shape)
    wanted = list(dict.fromkeys(m for _, m in parsed))
    train_csr = None if train is None else as_bool_csr(train, "train", shape)
    popularity = train_csr if train_csr is not None else exclude_csr
    vectors = check_list_metrics(
        parsed,
        shape[1],
        n_sampled_negatives=n_sampled_negatives,
        item_vectors=item_vectors,
        has_popularity=popularity is not None,
    )
    if neg_csr is None:
        for name, m in parsed:
            if m.base == "implicit_auc":
                raise ValueError(f"metric {name!r} requires test_negatives")
    chunk_size = check_number(chunk_size, "chunk_size", integer=True, low=1)
    n_sampled = check_number(n_sampled_negatives, "n_sampled_negatives", integer=True, low=1, allow_none=True)
    rng = None if n_sampled is None else _make_rng(random_state)
    device = resolve_device(device)
    lists = None
    if any(m.beyond_accuracy for m in wanted):
        dtype = torch.float32 if device.type == "mps" else torch.float64
        empty = sp.csr_matrix(shape, dtype=bool)
        lists = list_context(popularity if popularity is not None else empty, vectors, device, dtype)

    effective = test_csr
    if exclude_csr is not None:
        effective = test_csr > exclude_csr
    users = np.flatnonzero(np.diff(effective.indptr) > 0)

    values = {m.name: np.empty(len(users), dtype=np.float64) for m in wanted if m.per_user}
    top_k = {m.k: np.empty((len(users), m.k), dtype=np.int64) for m in wanted if not m.per_user}
    for start in range(0, len(users), chunk_size):
        rows = users[start : start + chunk_size]
        chunk = evaluate_chunk(
            score_fn,
            rows,
            test_csr,
            exclude_csr,
            neg_csr,
            wanted,
            n_sampled,
            rng,
            device,
            lists,
        )
        for name, arr in chunk[0].items():
            values[name][start : start + len(rows)] = arr.cpu().numpy()
        for k, arr in chunk[1].items():
            top_k[k][start : start + len(rows)] = arr.cpu().numpy()
    catalogue = {
        name: catalogue_value(m.base, item_counts(top_k[m.k], shape[1])) for name, m in parsed if not m.per_user
    }
    per_user = {name: values[m.name].copy() for name, m in parsed if m.per_user}
    return ListResults(users, per_user, top_k, catalogue, shape[1], tuple(dict.fromkeys(name for name, _ in parsed)))


def evaluate_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    test: Any,
    *,
    exclude: Any = None,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    test_negatives: Any = None,
    n_sampled_negatives: int | None = None,
    random_state: Any = None,
    chunk_size: int = 1024,
    device: str | torch.device = "cpu",
    train: Any = None,
    item_vectors: Any = None,
) -> dict[str, float]:
    """Ranking metrics from a score function, averaged over users.

    Takes the arguments of :func:`evaluate_scores_per_user` and returns the
    mean of each metric over the users where it is defined (NaN, with a
    warning, when it is defined for none), keyed by the metric name as given.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skbpr.metrics import evaluate_scores
    >>> scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    >>> test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 1, 0]]))
    >>> train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]]))
    >>> evaluate_scores(lambda users: scores[users], test, exclude=train, metrics=["precision@1", "mrr", "auc"])
    {'precision@1': 0.5, 'mrr': 0.75, 'auc': 0.75}
    """
    result = evaluate_lists(
        score_fn,
        test,
        exclude=exclude,
        metrics=metrics,
        test_negatives=test_negatives,
        n_sampled_negatives=n_sampled_negatives,
        random_state=random_state,
        chunk_size=chunk_size,
        device=device,
        train=train,
        item_vectors=item_vectors,
    )
    users = result.users
    if len(users) == 0:
        warnings.warn(
            "no user has a test positive outside exclude; all metrics are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    means: dict[str, float] = {}
    for name, arr in result.per_user.items():
        defined = arr[~np.isnan(arr)]
        if len(defined) == 0:
            if len(users) > 0:
                warnings.warn(
                    f"metric {name!r} is undefined for every evaluated user; returning NaN",
                    RuntimeWarning,
                    stacklevel=2,
                )
            means[name] = math.nan
        else:
            means[name] = float(defined.mean())
    means.update(result.catalogue)
    return {name: means[name] for name in result.names}
