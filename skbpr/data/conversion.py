"""Conversion and checking of the arrays an :class:`~skbpr.data.interactions.Interactions` is built from.

1-D arrays of indices, weights and timestamps, CSR matrices of negatives and
features, raw-id arrays, and the canonical order of positives (sorted by
user, then item; duplicates merged) with the positives-win rule.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.utils.validation import check_number, examples


def as_1d(values: Any, name: str, length: int | None = None) -> np.ndarray:
    """``values`` as a 1-D array (of ``length`` entries, one per positive, when given)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length} (one entry per positive), got shape {array.shape}")
    return array


FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal)  # positives below round to 0 in float32


def check_float32_values(values: np.ndarray, name: str, what: str = "values") -> None:
    """Raise when finite float64 ``values`` would become ``inf`` or ``0`` in float32, naming ``name``.

    The examples shown are the values given, before any cast; NaN and
    infinite values are left to the checks that name them so.
    """
    huge = (values > FLOAT32_MAX) & (values < np.inf)  # NaN and inf: the finiteness checks' business
    if huge.any():
        raise ValueError(
            f"{name} has {int(huge.sum())} {what} beyond float32's largest ({FLOAT32_MAX:.4g}), "
            f"e.g. {examples(values[huge])}; rescale them (weights are relative: their mean is normalised to 1)"
        )
    tiny = (values > 0) & (values <= FLOAT32_TINY / 2)  # up to half the smallest subnormal rounds to 0
    if tiny.any():
        raise ValueError(
            f"{name} has {int(tiny.sum())} positive {what} below float32's smallest ({FLOAT32_TINY:.4g}), "
            f"e.g. {examples(values[tiny])}, which float32 would turn into 0; rescale them"
        )


def check_weights(values: Any, name: str, length: int) -> np.ndarray:
    """Strictly positive, finite float32 weights (ones for ``None``), checked in float64 before the cast."""
    if values is None:
        return np.ones(length, dtype=np.float32)
    array = as_1d(values, name, length)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has NaN or infinite values")
    if np.any(array <= 0):
        raise ValueError(f"{name} must be strictly positive, got {examples(array[array <= 0])}")
    check_float32_values(array, name, "weights")
    return array.astype(np.float32)


def check_merged_weights(users: np.ndarray, items: np.ndarray, values: np.ndarray, n_items: int, name: str) -> None:
    """Raise when the summed weights of repeated ``(user, item)`` pairs exceed float32, naming ``name``.

    The sums are taken in float64; the exact per-pair check runs only when
    the total could overflow.
    """
    if not values.size or float(values.sum(dtype=np.float64)) <= FLOAT32_MAX:
        return
    keys = pair_keys(users, items, n_items)
    unique, group = np.unique(keys, return_inverse=True)
    sums = np.bincount(group.ravel(), weights=values.astype(np.float64), minlength=unique.size)
    over = np.flatnonzero(sums > FLOAT32_MAX)
    if over.size:
        pair = (int(unique[over[0]] // n_items), int(unique[over[0]] % n_items))
        raise ValueError(
            f"{name}: the weights of {over.size} repeated (user, item) pairs add up beyond float32's largest "
            f"({FLOAT32_MAX:.4g}), e.g. {sums[over[0]]:.4g} for the pair (user, item) = {pair} (indices); "
            "rescale the weights (they are relative: their mean is normalised to 1)"
        )


def check_timestamps(values: Any, name: str, length: int) -> np.ndarray | None:
    """Timestamps as int64 (datetimes: nanoseconds since the epoch) or finite float64; ``None`` stays ``None``."""
    if values is None:
        return None
    array = as_1d(values, name, length)
    if array.dtype.kind == "M":
        if np.any(np.isnat(array)):
            raise ValueError(f"{name} has missing (NaT) values")
        return array.astype("datetime64[ns]").view(np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has NaN or infinite values")
        return array.astype(np.float64)
    raise TypeError(f"{name} must be numeric or datetime64, got dtype {array.dtype}")


def as_csr(matrix: Any, name: str) -> sp.csr_matrix:
    """Validated float32 CSR copy: 2-D, finite, nonnegative, zeros removed."""
    if sp.issparse(matrix):
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        csr = sp.csr_matrix(matrix, copy=True)
        data = csr.data
    else:
        try:
            dense = np.asarray(matrix)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a 2-D array or sparse matrix: {exc}") from exc
        if dense.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {dense.shape}")
        if dense.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {dense.dtype}")
        data = dense
        csr = None
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {data.dtype}")
    if data.size and not np.all(np.isfinite(data)):
        raise ValueError(f"{name} has NaN or infinite values")
    if data.size and np.any(data < 0):
        raise ValueError(f"{name} has negative values, e.g. {examples(data[data < 0])}")
    if csr is None:
        if data.dtype == np.float16:  # scipy.sparse has no float16; float32 holds every float16 exactly
            data = data.astype(np.float32)
        try:
            csr = sp.csr_matrix(data)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} has dtype {data.dtype}, which scipy.sparse cannot hold: {exc}") from exc
    csr = csr.astype(np.float64)
    csr.sum_duplicates()  # in float64: repeated entries can add up beyond float32
    check_float32_values(csr.data, name)
    csr = csr.astype(np.float32)
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def check_raw_ids(ids: Any, name: str, length: int) -> np.ndarray | None:
    """A copy of ``length`` unique, non-missing raw ids; ``None`` stays ``None``."""
    if ids is None:
        return None
    array = as_1d(ids, name)
    if array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got shape {array.shape}")
    index = pd.Index(array)
    if index.hasnans:
        raise ValueError(f"{name} has missing values")
    if not index.is_unique:
        raise ValueError(f"{name} must be unique, got duplicates {examples(index[index.duplicated()])}")
    return array.copy()


def check_feature_names(names: Any, name: str, features: sp.csr_matrix | None) -> np.ndarray | None:
    """One string name per column of ``features``; ``None`` stays ``None``."""
    if names is None:
        return None
    if features is None:
        raise ValueError(f"{name} is given but the matching feature matrix is None")
    array = as_1d(names, name)
    if array.shape[0] != features.shape[1]:
        raise ValueError(f"{name} must have one name per feature column ({features.shape[1]}), got shape {array.shape}")
    return array.astype(str).astype(object)


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 key per ``(user, item)`` pair, ordered like the pairs."""
    return users.astype(np.int64) * np.int64(n_items) + items.astype(np.int64)


def canonicalise(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    timestamps: np.ndarray | None,
    n_items: int,
    name: str = "pos_values",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sort by (user, item); merge duplicates (sum weights in float64, latest timestamp; ``name``: the weights')."""
    keys = pair_keys(users, items, n_items)
    if np.all(keys[1:] > keys[:-1]):
        ts = None if timestamps is None else timestamps.copy()
        return users.copy(), items.copy(), values.copy(), ts
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    first = np.ones(keys.shape[0], dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    if first.all():
        ts = None if timestamps is None else timestamps[order]
        return users[order], items[order], values[order], ts
    group = np.cumsum(first) - 1
    n_groups = int(group[-1]) + 1 if group.size else 0
    merged = np.bincount(group, weights=values[order], minlength=n_groups)
    check_float32_values(merged, name, "summed weights of repeated (user, item) pairs")
    ts = None
    if timestamps is not None:
        ts = np.full(n_groups, timestamps.min(), dtype=timestamps.dtype)
        np.maximum.at(ts, group, timestamps[order])
    starts = order[first]
    return users[starts], items[starts], merged.astype(np.float32), ts


def drop_overlap(
    negatives: sp.csr_matrix | None,
    users: np.ndarray,
    items: np.ndarray,
) -> sp.csr_matrix | None:
    """Remove positive pairs from the negatives (positives win), with a warning.

    ``users`` and ``items`` must be in canonical order.
    """
    if negatives is None or negatives.nnz == 0 or users.size == 0:
        return negatives
    n_items = negatives.shape[1]
    neg_users = np.repeat(np.arange(negatives.shape[0]), np.diff(negatives.indptr))
    neg_keys = pair_keys(neg_users, negatives.indices, n_items)
    pos_keys = pair_keys(users, items, n_items)  # sorted: canonical order
    found = np.minimum(np.searchsorted(pos_keys, neg_keys), pos_keys.shape[0] - 1)
    overlap = pos_keys[found] == neg_keys
    n_overlap = int(overlap.sum())
    if n_overlap == 0:
        return negatives
    warnings.warn(
        f"{n_overlap} (user, item) pairs are both positive and negative; "
        "positives win and these pairs were dropped from the negatives",
        UserWarning,
        stacklevel=3,
    )
    keep = ~overlap
    cleaned = sp.csr_matrix(
        (negatives.data[keep], (neg_users[keep], negatives.indices[keep])),
        shape=negatives.shape,
        dtype=np.float32,
    )
    cleaned.sort_indices()
    return cleaned


def check_features(features: Any, name: str, n_rows: int) -> sp.csr_matrix | None:
    """Features as a CSR matrix with ``n_rows`` rows, or ``None``."""
    if features is None:
        return None
    matrix = as_csr(features, name)
    if matrix.shape[0] != n_rows:
        owner = "n_users" if name.startswith("user") else "n_items"
        raise ValueError(f"{name} must have {owner} = {n_rows} rows, got shape {matrix.shape}")
    return matrix


def positives_csr(
    users: np.ndarray, items: np.ndarray, values: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """Canonical CSR matrix of positives sorted by user, then item (the arrays are copied)."""
    counts = np.bincount(users, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sp.csr_matrix((values.copy(), items.copy(), indptr), shape=(n_users, n_items))
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


_MAX_PAIRS = int(np.iinfo(np.int64).max)


def check_id_space(n_users: Any, n_items: Any) -> tuple[int, int]:
    """``(n_users, n_items)`` as ints >= 1 whose pair keys fit in int64."""
    n_users = check_number(n_users, "n_users", integer=True, low=1)
    n_items = check_number(n_items, "n_items", integer=True, low=1)
    if n_users * n_items > _MAX_PAIRS:  # Python ints: the product cannot overflow here
        raise ValueError(
            f"n_users * n_items must be <= 2**63 - 1 (pairs are keyed as user * n_items + item in int64), "
            f"got n_users={n_users}, n_items={n_items}"
        )
    return n_users, n_items
