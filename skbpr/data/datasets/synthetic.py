"""Synthetic implicit-feedback data with planted structure.

The generative story, for every user ``u`` and item ``i``:

1. Latent factors ``p_u``, ``q_i`` (``n_components`` dimensions) give the
   affinity ``a_ui = p_u . q_i`` (unit variance).
2. Item popularity follows a Zipf law, ``w_i ∝ rank_i ** -popularity_skew``
   (ranks randomly permuted over the items); user activity is lognormal.
3. Exposure: each user draws a Poisson number of candidate items from the
   popularity distribution (inverse-CDF sampling through a guide table);
   duplicates collapse, and a candidate is *shown* with probability
   ``sigmoid(exposure_signal * a_ui)``.  Shown items are therefore biased
   towards popular items and items the user is likely to enjoy.
4. Engagement: the preference ``r_ui = a_ui + 0.5 * z_i + noise * eps`` (``z_i``
   is the standardised log-popularity) decides; shown items with
   ``r_ui > 0.5`` are positives, the others are implicit negatives, each kept
   with probability ``negative_rate``.  Negatives are thus items the user saw
   and liked less, not random non-interactions.
5. Features: the first ``n_informative_features`` columns on each side are
   thresholded noisy random projections of the latent factors; the remaining
   columns are independent Bernoulli(0.3) noise.

Generation runs over chunks of users, so memory scales with the output and
never with ``n_users * n_items``.  The candidate rate is calibrated on a
pilot sample of users so that the number of positives is close to
``n_interactions``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from skbpr.data.datasets.item_sampling import guide_table, sample_items
from skbpr.utils.validation import check_number

if TYPE_CHECKING:
    from skbpr.data.interactions import Interactions

_CHUNK_CANDIDATES = 1 << 21  # candidate draws per chunk (bounded memory)
_PILOT_USERS = 4000
_PILOT_ROUNDS = 8
_ENGAGE_THRESHOLD = 0.5
_POPULARITY_WEIGHT = 0.5
_FEATURE_DENSITY = 0.3


@dataclass
class _Model:
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    item_cdf: np.ndarray
    item_guide: np.ndarray
    activity: np.ndarray
    exposure_signal: float
    negative_rate: float
    noise: float


def _seed_sequence(random_state: object) -> np.random.SeedSequence:
    """Turn a scikit-learn style ``random_state`` into a ``SeedSequence``."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state!r}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31 - 1)))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState, got {random_state!r}")


def _binary_features(
    factors: np.ndarray, n_features: int, n_informative: int, rng: np.random.Generator
) -> sp.csr_matrix:
    """Informative (thresholded projections) then noise binary columns."""
    n_rows, k = factors.shape
    dense = np.empty((n_rows, n_features), dtype=bool)
    if n_informative:
        proj = factors.astype(np.float64) @ rng.standard_normal((k, n_informative))
        proj /= proj.std(axis=0, keepdims=True) + 1e-12
        proj += 0.3 * rng.standard_normal(proj.shape)
        dense[:, :n_informative] = proj > 0.5
    n_noise = n_features - n_informative
    if n_noise:
        dense[:, n_informative:] = rng.random((n_rows, n_noise)) < _FEATURE_DENSITY
    return sp.csr_matrix(dense, dtype=np.float32)


def _chunk(
    model: _Model, users: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positive and negative (user, item) pairs for a block of users.

    ``users`` must be increasing; outputs are sorted by (user, item).
    """
    n_items = model.item_cdf.shape[0]
    u_rep = np.repeat(users.astype(np.int64), counts)
    items = sample_items(model.item_guide, model.item_cdf, rng.random(u_rep.shape[0]))
    keys = u_rep * n_items + items
    keys.sort(kind="stable")  # radix sort; np.unique is much slower here
    if keys.shape[0]:
        keep = np.empty(keys.shape[0], dtype=bool)
        keep[0] = True
        np.not_equal(keys[1:], keys[:-1], out=keep[1:])
        keys = keys[keep]
    uu = keys // n_items
    ii = keys - uu * n_items
    m = keys.shape[0]
    # Row-wise dot product, one pass per component (factors stored k x n).
    affinity = np.zeros(m, dtype=np.float32)
    for pk, qk in zip(model.user_factors, model.item_factors, strict=True):
        affinity += pk[uu] * qk[ii]
    with np.errstate(over="ignore"):  # exp overflow -> probability 0, as it should
        shown_p = 1.0 / (1.0 + np.exp(-model.exposure_signal * affinity))
    shown = rng.random(m, dtype=np.float32) < shown_p
    pref = affinity + model.item_bias[ii]
    if model.noise:
        pref += np.float32(model.noise) * rng.standard_normal(m, dtype=np.float32)
    engaged = pref > _ENGAGE_THRESHOLD
    pos = shown & engaged
    neg = shown & ~engaged
    if model.negative_rate < 1.0:
        neg &= rng.random(m, dtype=np.float32) < model.negative_rate
    return (
        uu[pos].astype(np.int32),
        ii[pos].astype(np.int32),
        uu[neg].astype(np.int32),
        ii[neg].astype(np.int32),
    )


def _draw_counts(model: _Model, users: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    n_items = model.item_cdf.shape[0]
    lam = np.minimum(scale * model.activity[users], 4.0 * n_items)
    return rng.poisson(lam)


def _calibrate(model: _Model, n_interactions: int, seed: np.random.SeedSequence) -> float:
    """Candidate draws per unit of activity giving ~``n_interactions`` positives.

    Secant iterations in log space on a pilot sample of users, with common
    random numbers across rounds so the yield curve is smooth.
    """
    n_users = model.activity.shape[0]
    n_pilot = min(n_users, _PILOT_USERS)
    pilot_seed, round_seed = seed.spawn(2)
    pilot = np.sort(np.random.default_rng(pilot_seed).choice(n_users, size=n_pilot, replace=False))
    log_target = np.log(n_interactions)
    log_scale = np.log(n_interactions / (0.3 * n_users))
    tried: list[tuple[float, float]] = []  # (log scale, log estimate)
    for _ in range(_PILOT_ROUNDS):
        rng = np.random.default_rng(round_seed)
        counts = _draw_counts(model, pilot, np.exp(log_scale), rng)
        n_pos = _chunk(model, pilot, counts, rng)[0].shape[0]
        if n_pos == 0:
            log_scale += np.log(10.0)
            continue
        log_est = np.log(n_pos * n_users / n_pilot)
        tried.append((log_scale, log_est))
        if abs(log_target - log_est) < 0.005:
            break
        slope = 1.0
        if len(tried) > 1 and tried[-1][0] != tried[-2][0]:
            slope = (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])
            slope = float(np.clip(slope, 0.3, 1.0))
        log_scale += float(np.clip((log_target - log_est) / slope, -2.0, 2.0))
    if not tried:
        return float(np.exp(log_scale))
    # the evaluated scale closest to the target, never an untested step
    best = min(tried, key=lambda point: abs(point[1] - log_target))
    return float(np.exp(best[0]))


def _to_csr(counts: np.ndarray, cols: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """CSR from per-row counts and column indices sorted by (row, col)."""
    col = np.concatenate(cols) if cols else np.empty(0, np.int32)
    idx_dtype = np.int32 if col.shape[0] < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(counts.shape[0] + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    data = np.ones(col.shape[0], dtype=np.float32)
    mat = sp.csr_matrix((data, col.astype(idx_dtype, copy=False), indptr), shape=(counts.shape[0], n_items))
    mat.has_sorted_indices = True
    return mat


def _plant(
    n_users: int,
    n_items: int,
    n_components: int,
    popularity_skew: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latent factors (rows), the item popularity CDF, the standardised log-popularity and the user activity."""
    scale = n_components**-0.25
    user_factors = (scale * rng.standard_normal((n_users, n_components))).astype(np.float32)
    item_factors = (scale * rng.standard_normal((n_items, n_components))).astype(np.float32)
    ranks = rng.permutation(n_items) + 1.0
    log_w = -popularity_skew * np.log(ranks)
    weights = np.exp(log_w - log_w.max())
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    std = log_w.std()
    item_bias = np.zeros(n_items) if std == 0 else (log_w - log_w.mean()) / std
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    activity /= activity.mean()
    return user_factors, item_factors, cdf, item_bias, activity


def _sample(model: _Model, rate: float, seed: np.random.SeedSequence) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Positives and negatives of every user, ``rate`` candidate draws per unit of activity.

    Runs over chunks of users holding about ``_CHUNK_CANDIDATES`` candidates each.
    """
    n_users, n_items = model.activity.shape[0], model.item_cdf.shape[0]
    all_users = np.arange(n_users)
    counts = _draw_counts(model, all_users, rate, np.random.default_rng(seed))
    # Chunk boundaries by cumulative candidate count.
    cum = np.cumsum(counts)
    n_chunks = max(1, int(np.ceil(cum[-1] / _CHUNK_CANDIDATES)))
    bounds = np.unique(
        np.concatenate(([0], np.searchsorted(cum, np.arange(1, n_chunks) * _CHUNK_CANDIDATES), [n_users]))
    )
    chunk_seeds = seed.spawn(len(bounds) - 1)
    pos_counts = np.zeros(n_users, dtype=np.int64)
    neg_counts = np.zeros(n_users, dtype=np.int64)
    pos_cols: list[np.ndarray] = []
    neg_cols: list[np.ndarray] = []
    for start, stop, chunk_seed in zip(bounds[:-1], bounds[1:], chunk_seeds, strict=True):
        pos_u, pos_i, neg_u, neg_i = _chunk(
            model, all_users[start:stop], counts[start:stop], np.random.default_rng(chunk_seed)
        )
        pos_counts[start:stop] = np.bincount(pos_u - start, minlength=stop - start)
        neg_counts[start:stop] = np.bincount(neg_u - start, minlength=stop - start)
        pos_cols.append(pos_i)
        neg_cols.append(neg_i)
    return _to_csr(pos_counts, pos_cols, n_items), _to_csr(neg_counts, neg_cols, n_items)


def _feature_names(side: str, n_features: int) -> np.ndarray | None:
    """``<side>_feature_<j>`` for each column; ``None`` without columns."""
    return np.array([f"{side}_feature_{j}" for j in range(n_features)]) if n_features else None


def make_interactions(
    n_users: int = 1000,
    n_items: int = 500,
    n_interactions: int = 20000,
    *,
    n_components: int = 8,
    n_user_features: int = 10,
    n_item_features: int = 10,
    n_informative_features: int = 4,
    popularity_skew: float = 1.0,
    exposure_signal: float = 1.0,
    negative_rate: float = 0.5,
    noise: float = 0.5,
    random_state: object = None,
) -> Interactions:
    """Generate implicit feedback with planted factors, exposure and features.

    See the module docstring for the generative model.

    Parameters
    ----------
    n_users, n_items : int
        Catalogue size.
    n_interactions : int
        Target number of positives, reached within a few percent up to about
        10% density; denser targets saturate and fall short.  At most 20% of
        ``n_users * n_items``.
    n_components : int
        Dimension of the planted latent factors.
    n_user_features, n_item_features : int
        Binary feature columns per side.
    n_informative_features : int
        Leading columns per side derived from the latent factors (capped at
        the number of columns); the rest are pure noise.
    popularity_skew : float
        Zipf exponent of item popularity; 0 gives uniform exposure.
    exposure_signal : float
        How strongly affinity raises the chance that a candidate is shown;
        0 makes exposure depend on popularity only.
    negative_rate : float in [0, 1]
        Probability that a shown but not engaged item is recorded as an
        implicit negative.
    noise : float
        Standard deviation of the preference noise (signal has unit variance).
    random_state : int, numpy Generator or RandomState, or None
        Seed for reproducible output.

    Returns
    -------
    Interactions
        Positives and negatives (disjoint, ``float32`` ones), binary user and
        item features (``None`` when zero columns) with names
        ``user_feature_j`` / ``item_feature_j``.

    Examples
    --------
    >>> from skbpr.datasets import make_interactions
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> data.n_users, data.n_items
    (100, 50)
    >>> data.user_features.shape, data.item_features.shape
    ((100, 10), (50, 10))
    >>> data.item_feature_names[:3]
    array(['item_feature_0', 'item_feature_1', 'item_feature_2'], dtype=object)
    """
    from skbpr.data.interactions import Interactions

    n_users = check_number(n_users, "n_users", integer=True, low=1)
    n_items = check_number(n_items, "n_items", integer=True, low=1)
    n_interactions = check_number(n_interactions, "n_interactions", integer=True, low=1)
    if n_interactions > 0.2 * n_users * n_items:
        raise ValueError(
            "n_interactions must be at most 20% of n_users * n_items "
            f"({int(0.2 * n_users * n_items)}), got {n_interactions}"
        )
    n_components = check_number(n_components, "n_components", integer=True, low=1)
    n_user_features = check_number(n_user_features, "n_user_features", integer=True, low=0)
    n_item_features = check_number(n_item_features, "n_item_features", integer=True, low=0)
    n_informative_features = check_number(n_informative_features, "n_informative_features", integer=True, low=0)
    popularity_skew = check_number(popularity_skew, "popularity_skew", low=0)
    exposure_signal = check_number(exposure_signal, "exposure_signal", low=0)
    negative_rate = check_number(negative_rate, "negative_rate", low=0, high=1)
    noise = check_number(noise, "noise", low=0)
    seeds = _seed_sequence(random_state).spawn(4)

    planted = _plant(n_users, n_items, n_components, popularity_skew, np.random.default_rng(seeds[0]))
    user_factors, item_factors, cdf, item_bias, activity = planted
    model = _Model(
        user_factors=np.ascontiguousarray(user_factors.T),
        item_factors=np.ascontiguousarray(item_factors.T),
        item_bias=(_POPULARITY_WEIGHT * item_bias).astype(np.float32),
        item_cdf=cdf,
        item_guide=guide_table(cdf),
        activity=activity,
        exposure_signal=exposure_signal,
        negative_rate=negative_rate,
        noise=noise,
    )
    feat_rng = np.random.default_rng(seeds[1])
    user_features = _binary_features(
        user_factors, n_user_features, min(n_informative_features, n_user_features), feat_rng
    )
    item_features = _binary_features(
        item_factors, n_item_features, min(n_informative_features, n_item_features), feat_rng
    )
    positives, negatives = _sample(model, _calibrate(model, n_interactions, seeds[2]), seeds[3])
    return Interactions.from_matrices(
        positives,
        negatives,
        user_features=user_features if n_user_features else None,
        item_features=item_features if n_item_features else None,
        user_feature_names=_feature_names("user", n_user_features),
        item_feature_names=_feature_names("item", n_item_features),
    )
