"""Per-user sample helpers shared by the splitters: user codes, timestamps, ranks within a user."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import _num_samples, check_consistent_length

from skbpr.data.interactions import Interactions

__all__ = ["n_test_per_user", "rank_within_user", "require_test", "sample_timestamps", "user_codes"]


def user_codes(X: Any, y: Any, groups: Any) -> np.ndarray:
    """User index (0..n_distinct-1) of each sample of ``X``."""
    if isinstance(X, Interactions):
        check_consistent_length(X, y)
        return X.pos_users
    if groups is None:
        raise ValueError(
            f"groups is required when X is not an Interactions (got {type(X).__name__}): "
            'pass the user of each row, e.g. groups=events["user_id"]'
        )
    n_samples = _num_samples(X)
    values = groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    if values.ndim != 1 or values.shape[0] != n_samples:
        raise ValueError(f"groups must have shape ({n_samples},) (one user per row of X), got {values.shape}")
    check_consistent_length(X, y)
    codes, _ = pd.factorize(values)
    if np.any(codes < 0):
        raise ValueError(f"groups has {int(np.sum(codes < 0))} missing values")
    return codes.astype(np.int64)


def sample_timestamps(X: Any, timestamp_col: Any) -> np.ndarray:
    """Timestamp of each sample of ``X`` (an ``Interactions`` or a DataFrame column)."""
    if isinstance(X, Interactions):
        if X.timestamps is None:
            raise ValueError("X.timestamps is None: a temporal split needs timestamps")
        return X.timestamps
    if isinstance(X, pd.DataFrame):
        if timestamp_col is None:
            raise ValueError("timestamp_col is None: give the timestamp column of the DataFrame X")
        if timestamp_col not in X.columns:
            raise ValueError(f"X has no column {timestamp_col!r} (timestamp_col); columns are {list(X.columns)}")
        series = X[timestamp_col]
        if series.isna().any():
            raise ValueError(f"timestamp_col {timestamp_col!r} has missing values")
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            if isinstance(series.dtype, pd.DatetimeTZDtype):
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            return series.to_numpy().astype("datetime64[ns]").view(np.int64)
        if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
            raise TypeError(f"timestamp_col {timestamp_col!r} must be numeric or datetime, got dtype {series.dtype}")
        return series.to_numpy()
    raise ValueError(
        "timestamps are required: pass an Interactions with timestamps or a "
        f"DataFrame with timestamp_col, got X of type {type(X).__name__}"
    )


def rank_within_user(users: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank of each sample within its user when sorted by ``keys``.

    ``keys`` are sort keys from the least to the most significant (after the
    user). Returns ``(rank, count, order)``: the rank of each sample, its
    user's number of samples and the sorting permutation.
    """
    n = users.shape[0]
    order = np.lexsort((*keys, users)) if keys else np.argsort(users, kind="stable")
    counts = np.bincount(users)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[users[order]]
    return rank, counts[users], order


def n_test_per_user(count: np.ndarray, test_size: float) -> np.ndarray:
    """``round(test_size * count)`` clipped to [1, count - 1]; 0 when count < 2."""
    n_test = np.floor(test_size * count + 0.5).astype(np.int64)
    n_test = np.clip(n_test, 1, np.maximum(count - 1, 1))
    return np.where(count >= 2, n_test, 0)


def require_test(mask: np.ndarray, message: str) -> None:
    """Raise ``ValueError(message)`` when no sample of ``mask`` can be tested."""
    if not mask.any():
        raise ValueError(message)
