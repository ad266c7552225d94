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

Per-user values are NaN where a metric is undefined; means ignore them.
Results are keyed by the metric names exactly as given; names are parsed
case-insensitively and ``"ndcg_at_10"`` is read as ``"ndcg@10"``.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from skbpr.training.devices import resolve_device
from skbpr.utils.validation import check_number

__all__ = [
    "DEFAULT_METRICS",
    "MetricName",
    "RankingScorer",
    "auc_scorer",
    "auc_score",
    "evaluate",
    "evaluate_scores",
    "evaluate_scores_per_user",
    "hit_rate_at_k",
    "hit_rate_scorer",
    "implicit_auc_score",
    "implicit_auc_scorer",
    "make_ranking_scorer",
    "map_at_k",
    "map_scorer",
    "mrr_score",
    "mrr_scorer",
    "ndcg_at_k",
    "ndcg_scorer",
    "parse_metric",
    "precision_at_k",
    "precision_scorer",
    "recall_at_k",
    "recall_scorer",
]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "precision@10", "recall@10", "auc")

_CUTOFF_METRICS = ("ndcg", "precision", "recall", "map", "hit_rate")
_PLAIN_METRICS = ("auc", "mrr", "implicit_auc")
_ALIASES = {"hitrate": "hit_rate", "neg_auc": "implicit_auc"}
_METRIC_RE = re.compile(r"(?P<base>[a-z_]+?)(?:@|_at_)(?P<k>[+-]?\d+)")
_VALID_FORMS = "'auc', 'mrr', 'implicit_auc', 'ndcg@k', 'precision@k', 'recall@k', 'map@k', 'hit_rate@k'"
_EVALUATE_KWARGS = frozenset({"exclude_train", "chunk_size", "n_sampled_negatives", "random_state"})


# --------------------------------------------------------------------------
# metric names
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricName:
    """A parsed metric name: its base (``"ndcg"``) and cutoff (``10``, or ``None``).

    Examples
    --------
    >>> from skbpr.metrics import parse_metric
    >>> parse_metric("NDCG_at_10")
    MetricName(base='ndcg', k=10)
    >>> parse_metric("hitrate@5").name
    'hit_rate@5'
    """

    base: str
    k: int | None = None

    @property
    def name(self) -> str:
        """The canonical name, ``base@k`` or ``base``."""
        return self.base if self.k is None else f"{self.base}@{self.k}"


def parse_metric(metric: Any) -> MetricName:
    """Parse a metric name (``"auc"``, ``"ndcg@10"``, ``"recall_at_5"``...).

    Parameters
    ----------
    metric : str
        The name, in any case; ``@k`` or ``_at_k`` gives the cutoff.

    Returns
    -------
    MetricName

    Raises
    ------
    ValueError
        For an unknown name, a missing or invalid cutoff.

    Examples
    --------
    >>> from skbpr.metrics import parse_metric
    >>> parse_metric("auc")
    MetricName(base='auc', k=None)
    """
    if not isinstance(metric, str):
        raise TypeError(f"metric names must be strings, got {metric!r} of type {type(metric).__name__}")
    text = metric.strip().lower()
    match = _METRIC_RE.fullmatch(text)
    if match is not None:
        base = _ALIASES.get(match["base"], match["base"])
        k = int(match["k"])
        if base in _PLAIN_METRICS:
            raise ValueError(f"metric {metric!r}: {base!r} does not take a cutoff; use {base!r}")
        if base not in _CUTOFF_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid forms are {_VALID_FORMS}")
        if k <= 0:
            raise ValueError(f"metric {metric!r}: the cutoff k must be >= 1, got {k}")
        return MetricName(base, k)
    base = _ALIASES.get(text, text)
    if base in _PLAIN_METRICS:
        return MetricName(base)
    if base in _CUTOFF_METRICS:
        raise ValueError(f"metric {metric!r} needs a cutoff, e.g. '{base}@10'")
    if "@" in text:
        raise ValueError(f"metric {metric!r}: the cutoff k must be a positive integer, e.g. 'ndcg@10'")
    raise ValueError(f"unknown metric {metric!r}; valid forms are {_VALID_FORMS}")


def _parse_metrics(metrics: Any) -> list[tuple[str, MetricName]]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a metric name or a sequence of names, got {metrics!r}")
    parsed = [(name, parse_metric(name)) for name in metrics]
    if not parsed:
        raise ValueError("metrics must name at least one metric, got an empty sequence")
    return parsed


def _cutoff_name(base: str, k: Any) -> str:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a positive integer, got {k!r}")
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return f"{base}@{int(k)}"


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------


def _as_bool_csr(matrix: Any, argname: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
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


# --------------------------------------------------------------------------
# per-chunk computation
# --------------------------------------------------------------------------


def _rows_mask(csr: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Dense boolean mask (len(rows), n_cols) of the given CSR rows."""
    sub = csr[rows]
    indptr = torch.from_numpy(sub.indptr.astype(np.int64)).to(device)
    cols = torch.from_numpy(sub.indices.astype(np.int64)).to(device)
    n_rows = len(rows)
    row_ids = torch.repeat_interleave(torch.arange(n_rows, device=device), indptr[1:] - indptr[:-1])
    mask = torch.zeros((n_rows, csr.shape[1]), dtype=torch.bool, device=device)
    mask[row_ids, cols] = True
    return mask


def _sample_negatives(disallowed: torch.Tensor, n_samples: int, rng: np.random.Generator) -> torch.Tensor:
    """Mask of ``n_samples`` items per row drawn uniformly without replacement
    among the items that are not ``disallowed`` (all of them if fewer)."""
    n_rows, n_items = disallowed.shape
    if n_samples >= n_items:
        return ~disallowed
    # A uniform random permutation per row; the allowed items with the
    # smallest keys form a uniform sample without replacement.
    keys = rng.permuted(np.tile(np.arange(n_items, dtype=np.int32), (n_rows, 1)), axis=1)
    keys_t = torch.from_numpy(keys).to(disallowed.device)
    keys_t = keys_t.masked_fill(disallowed, n_items)
    values, idx = torch.topk(keys_t, n_samples, dim=1, largest=False, sorted=False)
    sampled = torch.zeros_like(disallowed)
    sampled.scatter_(1, idx, values < n_items)
    return sampled


def _tie_groups(
    sorted_keys: torch.Tensor, b: torch.Tensor, j: torch.Tensor, slot: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end (exclusive) position of the group of keys equal to
    ``sorted_keys[b, j]`` in each row of the ascending ``sorted_keys``."""
    width = int(slot.max()) + 1 if len(slot) else 1
    queries = torch.zeros((sorted_keys.shape[0], width), dtype=sorted_keys.dtype, device=b.device)
    queries[b, slot] = sorted_keys[b, j]
    start = torch.searchsorted(sorted_keys, queries, side="left")
    end = torch.searchsorted(sorted_keys, queries, side="right")
    return start[b, slot], end[b, slot]


def _pairwise_auc(
    neg_sorted: torch.Tensor,
    b: torch.Tensor,
    start_p: torch.Tensor,
    end_p: torch.Tensor,
    n_pos: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Per-row AUC of the positives at flat positions (b, .) against the
    negatives in ``neg_sorted``, ties counting 1/2; NaN without negatives."""
    n_rows = neg_sorted.shape[0]
    cum = neg_sorted.cumsum(dim=1, dtype=torch.int32)  # negatives at or before
    n_neg = cum[:, -1]
    above = torch.where(start_p > 0, cum[b, (start_p - 1).clamp_min(0)], 0)
    at_or_above = cum[b, end_p - 1]  # end_p >= 1: the group holds the positive
    below = n_neg[b] - at_or_above
    wins = below.to(dtype) + 0.5 * (at_or_above - above).to(dtype)
    total = torch.zeros(n_rows, dtype=dtype, device=neg_sorted.device)
    total.index_add_(0, b, wins)
    denom = n_pos.to(dtype) * n_neg.to(dtype)
    return torch.where(n_neg > 0, total / denom.clamp_min(1), math.nan)


def _evaluate_chunk(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    rows: np.ndarray,
    test: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    negatives: sp.csr_matrix | None,
    wanted: list[MetricName],
    n_sampled: int | None,
    rng: np.random.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    n_rows, n_items = len(rows), test.shape[1]
    dtype = torch.float32 if device.type == "mps" else torch.float64
    users = torch.from_numpy(rows.astype(np.int64)).to(device)
    with torch.no_grad():
        scores = score_fn(users)
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"score_fn must return a torch.Tensor, got {type(scores).__name__}")
    if tuple(scores.shape) != (n_rows, n_items):
        raise ValueError(
            f"score_fn returned shape {tuple(scores.shape)} for {n_rows} users; expected ({n_rows}, {n_items})"
        )
    scores = scores.detach().to(device)
    if not scores.is_floating_point():
        scores = scores.to(torch.float64)
    elif scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()

    test_raw = _rows_mask(test, rows, device)
    if exclude is not None:
        excluded = _rows_mask(exclude, rows, device)
        pos = test_raw & ~excluded
        not_candidate = excluded | test_raw
    else:
        excluded = None
        pos = test_raw
        not_candidate = test_raw
    # Sort keys: negated scores, excluded items last (they are never counted).
    keys = torch.neg(scores)
    if excluded is not None:
        keys.masked_fill_(excluded, math.inf)
    if torch.isnan(keys).any():
        bad = rows[torch.isnan(keys).any(dim=1).cpu().numpy()]
        raise ValueError(f"score_fn returned NaN scores for users {bad[:10].tolist()}")

    if n_sampled is not None:
        assert rng is not None
        cand_neg = _sample_negatives(not_candidate, n_sampled, rng)
        ranked = pos | cand_neg
    else:
        cand_neg = ~not_candidate
        ranked = None if excluded is None else ~excluded

    # Ascending stable sort of the keys: best first, ties by lower index.
    sorted_keys, order = torch.sort(keys, dim=1, stable=True)
    pos_sorted = pos.gather(1, order)
    b, j = pos_sorted.nonzero(as_tuple=True)  # row-major: by rank within row
    n_pos = pos.sum(dim=1)
    slot = torch.arange(len(b), device=device) - (torch.cumsum(n_pos, 0) - n_pos)[b]
    out: dict[str, torch.Tensor] = {}

    bases = {m.base for m in wanted}
    if bases & {"auc", "implicit_auc"}:
        start_p, end_p = _tie_groups(sorted_keys, b, j, slot)
        if "auc" in bases:
            out["auc"] = _pairwise_auc(cand_neg.gather(1, order), b, start_p, end_p, n_pos, dtype)
        if "implicit_auc" in bases:
            assert negatives is not None
            implicit = _rows_mask(negatives, rows, device) & ~not_candidate
            out["implicit_auc"] = _pairwise_auc(implicit.gather(1, order), b, start_p, end_p, n_pos, dtype)

    if bases - {"auc", "implicit_auc"}:
        # Excluded items sort after every finite score, so the position is the
        # rank unless a positive scored -inf (its key ties with excluded items).
        if ranked is None or (n_sampled is None and not (sorted_keys[b, j] == math.inf).any()):
            rank = (j + 1).to(dtype)
        else:
            rank_all = ranked.gather(1, order).cumsum(dim=1, dtype=torch.int32)
            rank = rank_all[b, j].to(dtype)
        hit_no = (slot + 1).to(dtype)
        n_pos_f = n_pos.to(dtype)
        if "mrr" in bases:
            best = torch.full((n_rows,), math.inf, dtype=dtype, device=device)
            best.scatter_reduce_(0, b, rank, reduce="amin")
            out["mrr"] = 1.0 / best
        discount = 1.0 / torch.log2(rank + 1.0)
        prec_at_hit = hit_no / rank
        for k in sorted({m.k for m in wanted if m.k is not None}):
            in_top = (rank <= k).to(dtype)
            hits = torch.zeros(n_rows, dtype=dtype, device=device)
            hits.index_add_(0, b, in_top)
            ideal_hits = torch.clamp(n_pos_f, max=k)
            out[f"precision@{k}"] = hits / k
            out[f"recall@{k}"] = hits / n_pos_f
            out[f"hit_rate@{k}"] = (hits > 0).to(dtype)
            dcg = torch.zeros(n_rows, dtype=dtype, device=device)
            dcg.index_add_(0, b, in_top * discount)
            ideal_disc = 1.0 / torch.log2(torch.arange(2, min(k, n_items) + 2, device=device, dtype=dtype))
            ideal_cum = torch.nn.functional.pad(ideal_disc.cumsum(0), (1, 0))
            out[f"ndcg@{k}"] = dcg / ideal_cum[ideal_hits.long()]
            ap = torch.zeros(n_rows, dtype=dtype, device=device)
            ap.index_add_(0, b, in_top * prec_at_hit)
            out[f"map@{k}"] = ap / ideal_hits
    return {m.name: out[m.name] for m in wanted}


# --------------------------------------------------------------------------
# score-function API
# --------------------------------------------------------------------------


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
    parsed = _parse_metrics(metrics)
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable, got {type(score_fn).__name__}")
    test_csr = _as_bool_csr(test, "test")
    shape = test_csr.shape
    exclude_csr = None if exclude is None else _as_bool_csr(exclude, "exclude", shape)
    neg_csr = None if test_negatives is None else _as_bool_csr(test_negatives, "test_negatives", shape)
    wanted = list(dict.fromkeys(m for _, m in parsed))
    if neg_csr is None:
        for name, m in parsed:
            if m.base == "implicit_auc":
                raise ValueError(f"metric {name!r} requires test_negatives")
    chunk_size = check_number(chunk_size, "chunk_size", integer=True, low=1)
    n_sampled = check_number(n_sampled_negatives, "n_sampled_negatives", integer=True, low=1, allow_none=True)
    rng = None if n_sampled is None else _make_rng(random_state)
    device = resolve_device(device)

    effective = test_csr
    if exclude_csr is not None:
        effective = test_csr > exclude_csr
    users = np.flatnonzero(np.diff(effective.indptr) > 0)

    values = {m.name: np.empty(len(users), dtype=np.float64) for m in wanted}
    for start in range(0, len(users), chunk_size):
        rows = users[start : start + chunk_size]
        chunk = _evaluate_chunk(
            score_fn,
            rows,
            test_csr,
            exclude_csr,
            neg_csr,
            wanted,
            n_sampled,
            rng,
            device,
        )
        for name, arr in chunk.items():
            values[name][start : start + len(rows)] = arr.cpu().numpy()
    return users, {name: values[m.name].copy() for name, m in parsed}


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
    users, per_user = evaluate_scores_per_user(
        score_fn,
        test,
        exclude=exclude,
        metrics=metrics,
        test_negatives=test_negatives,
        n_sampled_negatives=n_sampled_negatives,
        random_state=random_state,
        chunk_size=chunk_size,
        device=device,
    )
    if len(users) == 0:
        warnings.warn(
            "no user has a test positive outside exclude; all metrics are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    result: dict[str, float] = {}
    for name, arr in per_user.items():
        defined = arr[~np.isnan(arr)]
        if len(defined) == 0:
            if len(users) > 0:
                warnings.warn(
                    f"metric {name!r} is undefined for every evaluated user; returning NaN",
                    RuntimeWarning,
                    stacklevel=2,
                )
            result[name] = math.nan
        else:
            result[name] = float(defined.mean())
    return result


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
    from skbpr.data.interactions import as_csr
    from skbpr.models.base import check_interaction_matrix

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
    parsed = _parse_metrics(metrics)
    _warn_unseen_test_users(sp.csr_matrix(test), sp.csr_matrix(train))
    negatives = None
    if any(m.base == "implicit_auc" for _, m in parsed):
        negatives = X.negatives
        if negatives is None:
            raise ValueError("metric 'implicit_auc' requires X.negatives, but X.negatives is None")
        negatives = _as_bool_csr(negatives, "X.negatives", test.shape)
        negatives = negatives > _as_bool_csr(train, "train_positives_")
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
    return evaluate(estimator, X, metrics=("auc",), **kwargs)["auc"]


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
    return evaluate(estimator, X, metrics=("implicit_auc",), **kwargs)["implicit_auc"]


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
    return evaluate(estimator, X, metrics=("mrr",), **kwargs)["mrr"]


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
    name = _cutoff_name("ndcg", k)
    return evaluate(estimator, X, metrics=(name,), **kwargs)[name]


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
    name = _cutoff_name("precision", k)
    return evaluate(estimator, X, metrics=(name,), **kwargs)[name]


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
    name = _cutoff_name("recall", k)
    return evaluate(estimator, X, metrics=(name,), **kwargs)[name]


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
    name = _cutoff_name("map", k)
    return evaluate(estimator, X, metrics=(name,), **kwargs)[name]


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
    name = _cutoff_name("hit_rate", k)
    return evaluate(estimator, X, metrics=(name,), **kwargs)[name]


# --------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------


class RankingScorer:
    """Scorer ``(estimator, X, y=None) -> float`` for one ranking metric.

    Usable as ``scoring=`` in scikit-learn model selection; greater is
    better for every metric. Build it with :func:`make_ranking_scorer`.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import RankingScorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = RankingScorer("mrr", exclude_train=False)
    >>> scorer
    make_ranking_scorer('mrr', exclude_train=False)
    >>> round(scorer(model, test), 4)
    0.5833
    """

    def __init__(self, metric: str, **kwargs: Any) -> None:
        parse_metric(metric)
        unknown = sorted(set(kwargs) - _EVALUATE_KWARGS)
        if unknown:
            raise TypeError(f"unexpected scorer argument(s) {unknown}; allowed are {sorted(_EVALUATE_KWARGS)}")
        self.metric = metric
        self.kwargs = dict(kwargs)

    def __call__(self, estimator: Any, X: Any, y: Any = None) -> float:
        return evaluate(estimator, X, metrics=(self.metric,), **self.kwargs)[self.metric]

    def __repr__(self) -> str:
        args = [repr(self.metric)]
        args += [f"{key}={value!r}" for key, value in sorted(self.kwargs.items())]
        return f"make_ranking_scorer({', '.join(args)})"


def make_ranking_scorer(metric: str, **kwargs: Any) -> RankingScorer:
    """Scorer for ``metric`` (e.g. ``"ndcg@10"``), forwarding ``kwargs``
    (``exclude_train``, ``chunk_size``, ``n_sampled_negatives``,
    ``random_state``) to :func:`evaluate`.

    A scorer is called as ``scorer(estimator, X)``, the signature
    scikit-learn's ``scoring=`` expects.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import make_ranking_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = make_ranking_scorer("hit_rate@1")
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer(metric, **kwargs)


def ndcg_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for NDCG@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import ndcg_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = ndcg_scorer(k=2)
    >>> scorer
    make_ranking_scorer('ndcg@2')
    >>> round(scorer(model, test), 4)
    0.877
    """
    return RankingScorer(_cutoff_name("ndcg", k), **kwargs)


def precision_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for precision@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import precision_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = precision_scorer(k=2)
    >>> scorer(model, test)
    0.5
    """
    return RankingScorer(_cutoff_name("precision", k), **kwargs)


def recall_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for recall@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import recall_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = recall_scorer(k=1)
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer(_cutoff_name("recall", k), **kwargs)


def map_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for MAP@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import map_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = map_scorer(k=2)
    >>> round(scorer(model, test), 4)
    0.8333
    """
    return RankingScorer(_cutoff_name("map", k), **kwargs)


def hit_rate_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for hit_rate@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import hit_rate_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = hit_rate_scorer(k=2)
    >>> scorer(model, test)
    1.0
    """
    return RankingScorer(_cutoff_name("hit_rate", k), **kwargs)


def auc_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the full-catalogue AUC.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import auc_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = auc_scorer()
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer("auc", **kwargs)


def mrr_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the mean reciprocal rank.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import mrr_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = mrr_scorer()
    >>> round(scorer(model, test), 4)
    0.8333
    """
    return RankingScorer("mrr", **kwargs)


def implicit_auc_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the AUC against held-out implicit negatives.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import Interactions, PopularityRecommender
    >>> from skbpr.metrics import implicit_auc_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> shown = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    >>> held_out = Interactions.from_matrices(test, negatives=shown)
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = implicit_auc_scorer()
    >>> scorer(model, held_out)
    0.5
    """
    return RankingScorer("implicit_auc", **kwargs)
