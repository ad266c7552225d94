"""Implicit feedback indexed by positive interaction.

:class:`Interactions` holds the positives of an implicit-feedback data set
as parallel 1-D arrays, together with the side information that does not
depend on which positives are selected: the size of the id space, implicit
negatives, user and item features and the raw-id maps.

Its sample axis is the positive interaction: ``len(X)`` and ``X.shape[0]``
count positives and ``X[index]`` selects positives, so scikit-learn's model
selection tools (``cross_validate``, ``GridSearchCV``, ``_safe_indexing``)
split it like any array. Every selection keeps the whole side information.

Rules
-----
* Canonical order: positives are sorted by user, then item. Duplicated
  ``(user, item)`` pairs given to a constructor are merged: their weights are
  summed and the latest timestamp is kept.
* Selection ``X[index]`` accepts an integer array or list, a slice, an integer
  or a boolean mask of length ``n_positives``. The selected positives are
  returned in canonical order, so the order of ``index`` does not matter and
  ``X[a][b]`` holds the same positives as ``X[np.sort(a)[b]]`` (which is
  ``X[a[b]]`` when ``a`` is increasing, as the splitters of
  :mod:`skbpr.model_selection` yield). A position may be selected once only.
* Positives win over negatives: a ``(user, item)`` pair present in both is
  dropped from ``negatives`` and a ``UserWarning`` gives the count.
* Interaction weights, negative weights and feature values must be finite and
  nonnegative; positive weights must be strictly positive.
* Feature tables given to :meth:`Interactions.from_frame` are DataFrames
  indexed by raw id: numeric columns are kept as they are, bool, categorical,
  string and object columns are one-hot encoded into columns named
  ``"column=value"`` (missing values and categories unseen when the encoding
  was learned encode as all zeros). Ids of the id space that are absent from
  a feature table get an all-zero feature row.
* Datetime timestamps become int64 nanoseconds since the epoch.

Side information (negatives, features, id maps) is shared, not copied, by
the containers that selection returns; treat it as read-only.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.folds import fold_of
from skbpr.utils.validation import check_indices, check_number, examples

__all__ = ["EventColumns", "FeatureEncoding", "Interactions"]

_MAX_PAIRS = int(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _as_1d(values: Any, name: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length} (one entry per positive), got shape {array.shape}")
    return array


def _check_weights(values: Any, name: str, length: int) -> np.ndarray:
    if values is None:
        return np.ones(length, dtype=np.float32)
    array = _as_1d(values, name, length)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has NaN or infinite values")
    if np.any(array <= 0):
        raise ValueError(f"{name} must be strictly positive, got {examples(array[array <= 0])}")
    return array.astype(np.float32)


def _check_timestamps(values: Any, name: str, length: int) -> np.ndarray | None:
    if values is None:
        return None
    array = _as_1d(values, name, length)
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
    csr = csr.astype(np.float32)
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise ValueError(f"{name} has values too large for float32")
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def _check_raw_ids(ids: Any, name: str, length: int) -> np.ndarray | None:
    if ids is None:
        return None
    array = _as_1d(ids, name)
    if array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got shape {array.shape}")
    index = pd.Index(array)
    if index.hasnans:
        raise ValueError(f"{name} has missing values")
    if not index.is_unique:
        raise ValueError(f"{name} must be unique, got duplicates {examples(index[index.duplicated()])}")
    return array.copy()


def _check_names(names: Any, name: str, features: sp.csr_matrix | None) -> np.ndarray | None:
    if names is None:
        return None
    if features is None:
        raise ValueError(f"{name} is given but the matching feature matrix is None")
    array = _as_1d(names, name)
    if array.shape[0] != features.shape[1]:
        raise ValueError(f"{name} must have one name per feature column ({features.shape[1]}), got shape {array.shape}")
    return array.astype(str).astype(object)


def _pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return users.astype(np.int64) * np.int64(n_items) + items.astype(np.int64)


def _canonicalise(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    timestamps: np.ndarray | None,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sort by (user, item); merge duplicates (sum weights, latest timestamp)."""
    keys = _pair_keys(users, items, n_items)
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
    ts = None
    if timestamps is not None:
        ts = np.full(n_groups, timestamps.min(), dtype=timestamps.dtype)
        np.maximum.at(ts, group, timestamps[order])
    starts = order[first]
    return users[starts], items[starts], merged.astype(np.float32), ts


def _drop_overlap(
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
    neg_keys = _pair_keys(neg_users, negatives.indices, n_items)
    pos_keys = _pair_keys(users, items, n_items)  # sorted: canonical order
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


# --------------------------------------------------------------------------
# frame encoding
# --------------------------------------------------------------------------
def _series_timestamps(series: pd.Series, name: str) -> np.ndarray:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing values")
    if pd.api.types.is_bool_dtype(series.dtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype)
    ):
        raise TypeError(f"{name} must be numeric or datetime, got dtype {series.dtype}")
    return _check_timestamps(series.to_numpy(), name, len(series))


@dataclass(frozen=True)
class _ParsedEvents:
    users: np.ndarray
    items: np.ndarray
    positive: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray | None


@dataclass(frozen=True)
class EventColumns:
    """Which columns of an events DataFrame hold what, and the positive rule.

    Parameters
    ----------
    user_col, item_col : str
        Columns with the raw user and item ids.
    rating_col : str, optional
        Rating column; rows with ``rating >= threshold`` are positives, the
        others implicit negatives. Requires ``threshold``.
    label_col : str, optional
        Label column; truthy rows are positives, falsy rows implicit
        negatives. Exclusive with ``rating_col``.
    threshold : float, optional
        Rating threshold, only with ``rating_col``.
    timestamp_col : str, optional
        Numeric or datetime column with the time of each event.
    weight_col : str, optional
        Strictly positive weight of each event (default 1).

    Without ``label_col`` and ``rating_col`` every row is a positive.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr.interactions import EventColumns
    >>> events = pd.DataFrame({"user_id": ["ann", "ann", "bob"], "item_id": ["x", "y", "x"], "rating": [5, 2, 4]})
    >>> columns = EventColumns(rating_col="rating", threshold=4)
    >>> parsed = columns.parse(events)
    >>> parsed.users.tolist(), parsed.positive.tolist()
    (['ann', 'ann', 'bob'], [True, False, True])
    >>> EventColumns(label_col="clicked").validate(events)
    Traceback (most recent call last):
    ...
    ValueError: events has no column 'clicked' (label_col); columns are ['user_id', 'item_id', 'rating']
    """

    user_col: Any = "user_id"
    item_col: Any = "item_id"
    rating_col: Any = None
    label_col: Any = None
    threshold: Any = None
    timestamp_col: Any = None
    weight_col: Any = None

    def validate(self, events: Any) -> None:
        """Check the parameters and that ``events`` has the named columns."""
        if not isinstance(events, pd.DataFrame):
            raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
        if self.rating_col is not None and self.label_col is not None:
            raise ValueError(f"give rating_col ({self.rating_col!r}) or label_col ({self.label_col!r}), not both")
        if self.rating_col is not None:
            check_number(self.threshold, "threshold")  # required with rating_col
        elif self.threshold is not None:
            raise ValueError(f"threshold={self.threshold!r} is given but rating_col is None")
        if self.user_col == self.item_col:
            raise ValueError(f"user_col and item_col are the same column {self.user_col!r}")
        for argument in (
            "user_col",
            "item_col",
            "rating_col",
            "label_col",
            "timestamp_col",
            "weight_col",
        ):
            column = getattr(self, argument)
            if column is not None and column not in events.columns:
                raise ValueError(f"events has no column {column!r} ({argument}); columns are {list(events.columns)}")

    def parse(self, events: pd.DataFrame) -> _ParsedEvents:
        """Validated raw ids, positive mask, weights and timestamps of ``events``."""
        self.validate(events)
        ids = {}
        for argument in ("user_col", "item_col"):
            column = getattr(self, argument)
            series = events[column]
            if series.isna().any():
                raise ValueError(f"{argument} {column!r} has {int(series.isna().sum())} missing ids")
            ids[argument] = series.to_numpy()
        n_rows = len(events)
        if self.label_col is not None:
            labels = events[self.label_col]
            if not (pd.api.types.is_bool_dtype(labels.dtype) or pd.api.types.is_numeric_dtype(labels.dtype)):
                raise TypeError(f"label_col {self.label_col!r} must be boolean or numeric, got dtype {labels.dtype}")
            if labels.isna().any():
                raise ValueError(f"label_col {self.label_col!r} has missing values")
            positive = labels.to_numpy().astype(bool)
        elif self.rating_col is not None:
            ratings = events[self.rating_col]
            if pd.api.types.is_bool_dtype(ratings.dtype) or not pd.api.types.is_numeric_dtype(ratings.dtype):
                raise TypeError(f"rating_col {self.rating_col!r} must be numeric, got dtype {ratings.dtype}")
            if ratings.isna().any():
                raise ValueError(f"rating_col {self.rating_col!r} has missing values")
            positive = ratings.to_numpy(dtype=np.float64) >= float(self.threshold)
        else:
            positive = np.ones(n_rows, dtype=bool)
        weights = np.ones(n_rows, dtype=np.float32)
        if self.weight_col is not None:
            column = events[self.weight_col]
            if pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
                raise TypeError(f"weight_col {self.weight_col!r} must be numeric, got dtype {column.dtype}")
            weights = _check_weights(column.to_numpy(dtype=np.float64), f"weight_col {self.weight_col!r}", n_rows)
        timestamps = None
        if self.timestamp_col is not None:
            timestamps = _series_timestamps(events[self.timestamp_col], f"timestamp_col {self.timestamp_col!r}")
        return _ParsedEvents(ids["user_col"], ids["item_col"], positive, weights, timestamps)


def _check_table(frame: Any, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame indexed by raw id, got {type(frame).__name__}")
    if frame.index.hasnans:
        raise ValueError(f"{name} has missing ids in its index")
    if not frame.index.is_unique:
        raise ValueError(
            f"{name} index must be unique, got duplicated ids {examples(frame.index[frame.index.duplicated()])}"
        )
    return frame


def _is_categorical(dtype: Any) -> bool:
    return (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _numeric_column(frame: pd.DataFrame, column: Any, name: str) -> np.ndarray:
    values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} column {column!r} has NaN or infinite values")
    if np.any(values < 0):
        raise ValueError(f"{name} column {column!r} has negative values, e.g. {examples(values[values < 0])}")
    return values


def _sorted_categories(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return np.asarray(series.cat.categories, dtype=object)
    values = pd.Index(pd.unique(series.dropna().to_numpy(dtype=object)))
    try:
        return np.asarray(values.sort_values(), dtype=object)
    except TypeError:
        return np.asarray(values[np.argsort(values.astype(str), kind="stable")], dtype=object)


class FeatureEncoding:
    """Column encoding of a feature table, learned once and reusable.

    Numeric columns are kept as they are (finite, nonnegative); bool,
    categorical, string and object columns are one-hot encoded with one
    output column ``"column=value"`` per value seen by :meth:`fit`.

    Parameters
    ----------
    columns : list of (column, categories or None)
        Table columns in order; ``None`` marks a numeric column.
    name : str
        Name of the table, used in error messages.

    Attributes
    ----------
    feature_names : ndarray of str
        Names of the encoded columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr.interactions import FeatureEncoding
    >>> table = pd.DataFrame({"genre": ["rock", "jazz", "rock"], "length": [3.5, 5.0, 4.0]}, index=["x", "y", "z"])
    >>> encoding = FeatureEncoding.fit(table, name="item_features")
    >>> encoding.feature_names.tolist(), encoding.n_features
    (['genre=jazz', 'genre=rock', 'length'], 3)
    >>> encoding.transform(table, ["z", "x", "unknown"]).toarray()
    array([[0. , 1. , 4. ],
           [0. , 1. , 3.5],
           [0. , 0. , 0. ]], dtype=float32)
    """

    def __init__(self, columns: list[tuple[Any, np.ndarray | None]], name: str) -> None:
        self.columns = columns
        self.name = name

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, name: str = "features") -> FeatureEncoding:
        """Learn the encoding of ``frame`` (a DataFrame indexed by raw id)."""
        frame = _check_table(frame, name)
        columns: list[tuple[Any, np.ndarray | None]] = []
        for column in frame.columns:
            dtype = frame[column].dtype
            if _is_categorical(dtype):
                columns.append((column, _sorted_categories(frame[column])))
            elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
                _numeric_column(frame, column, name)
                columns.append((column, None))
            else:
                raise TypeError(
                    f"{name} column {column!r} has unsupported dtype {dtype}; "
                    "use numeric, bool, categorical or string columns"
                )
        return cls(columns, name)

    @property
    def feature_names(self) -> np.ndarray:
        names: list[np.ndarray] = []
        for column, categories in self.columns:
            if categories is None:
                names.append(np.array([str(column)], dtype=object))
            else:
                labels = pd.Index(categories, dtype=object).astype(str).to_numpy(dtype=object)
                names.append(f"{column}=" + labels if labels.size else labels)
        if not names:
            return np.zeros(0, dtype=object)
        return np.concatenate(names).astype(object)

    @property
    def n_features(self) -> int:
        return sum(1 if cats is None else len(cats) for _, cats in self.columns)

    def transform(self, frame: pd.DataFrame, ids: Any) -> sp.csr_matrix:
        """Encode ``frame`` into a float32 CSR matrix with one row per id of ``ids``.

        Ids missing from ``frame`` get an all-zero row; values not seen by
        :meth:`fit` in a one-hot column encode as zeros.
        """
        frame = _check_table(frame, self.name)
        missing = [column for column, _ in self.columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{self.name} lacks the fitted columns {missing}")
        ids = np.asarray(ids)
        rows = frame.index.get_indexer(ids)
        present = rows >= 0
        out_rows = np.flatnonzero(present)
        source = rows[present]
        all_rows, all_cols, all_vals = [], [], []
        offset = 0
        for column, categories in self.columns:
            if categories is None:
                values = _numeric_column(frame, column, self.name)[source]
                all_rows.append(out_rows)
                all_cols.append(np.full(out_rows.shape[0], offset, dtype=np.int64))
                all_vals.append(values)
                offset += 1
            else:
                values = frame[column].to_numpy(dtype=object)[source]
                codes = pd.Index(categories, dtype=object).get_indexer(values)
                hit = codes >= 0
                all_rows.append(out_rows[hit])
                all_cols.append(offset + codes[hit].astype(np.int64))
                all_vals.append(np.ones(int(hit.sum())))
                offset += len(categories)
        shape = (ids.shape[0], offset)
        if not all_rows:
            return sp.csr_matrix(shape, dtype=np.float32)
        matrix = sp.csr_matrix(
            (np.concatenate(all_vals), (np.concatenate(all_rows), np.concatenate(all_cols))),
            shape=shape,
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        return matrix


def id_space(raw_ids: np.ndarray, table: pd.DataFrame | None, name: str) -> np.ndarray:
    """Sorted unique raw ids of the events and of a feature table's index."""
    index = pd.Index(raw_ids)
    if table is not None:
        index = index.append(table.index)
    index = index.unique()
    try:
        index = index.sort_values()
    except TypeError as exc:
        raise TypeError(f"the raw ids of {name} cannot be sorted together (mixed types?): {exc}") from exc
    return index.to_numpy()


def _fixed_space(ids: Any, name: str) -> np.ndarray:
    array = _as_1d(ids, name)
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return _check_raw_ids(array, name, array.shape[0])


def encode_ids(raw: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each raw id in ``ids`` (-1 for an id not there)."""
    return pd.Index(ids).get_indexer(raw).astype(np.int64)


# --------------------------------------------------------------------------
# the container
# --------------------------------------------------------------------------
class Interactions:
    """Implicit feedback whose samples are the positive interactions.

    Parameters
    ----------
    pos_users, pos_items : array-like of int, shape (n_positives,)
        User and item index of each positive.
    n_users, n_items : int
        Size of the id space.
    pos_values : array-like of float, shape (n_positives,), optional
        Strictly positive weight of each positive (default 1).
    timestamps : array-like, shape (n_positives,), optional
        Time of each positive (int64, float64 or datetime64).
    negatives : sparse matrix or array of shape (n_users, n_items), optional
        Implicit negatives (shown or consumed but not engaged with).
    user_features, item_features : sparse matrix or array, optional
        Nonnegative features, one row per user / item.
    user_ids, item_ids : array-like, optional
        Raw id of each user / item index.
    user_feature_names, item_feature_names : array-like of str, optional
        Names of the feature columns.

    Attributes
    ----------
    pos_users, pos_items : ndarray of int64
    pos_values : ndarray of float32
    timestamps : ndarray of int64 or float64, or None
    n_users, n_items : int
    negatives : scipy.sparse.csr_matrix of float32, or None
    user_features, item_features : scipy.sparse.csr_matrix of float32, or None
    user_ids, item_ids : ndarray or None
    user_feature_names, item_feature_names : ndarray of str or None
    fold : tuple of (int, int) or None
        ``(split, n_splits)`` when this container is the training part of a
        cross-validation split of skbpr's splitters (see
        :mod:`skbpr.data.folds`); estimators pass it on to their callbacks.
    cv_folds : dict
        The splits a splitter made of this container (digest of the train
        positions -> ``(split, n_splits)``); empty unless it was split.

    Notes
    -----
    See the module docstring for the canonical order, the duplicate rule and
    the positives-win rule.

    Examples
    --------
    >>> from skbpr import Interactions
    >>> data = Interactions([0, 0, 1, 2], [1, 2, 0, 2], n_users=3, n_items=4)
    >>> data.n_users, data.n_items, data.n_positives
    (3, 4, 4)
    >>> len(data), data.shape
    (4, (4, 2))
    >>> data.positives.toarray()
    array([[0., 1., 1., 0.],
           [1., 0., 0., 0.],
           [0., 0., 1., 0.]], dtype=float32)
    """

    fold: tuple[int, int] | None = None  # set on the selections made by a split's train positions

    def __init__(
        self,
        pos_users: Any,
        pos_items: Any,
        *,
        n_users: int,
        n_items: int,
        pos_values: Any = None,
        timestamps: Any = None,
        negatives: Any = None,
        user_features: Any = None,
        item_features: Any = None,
        user_ids: Any = None,
        item_ids: Any = None,
        user_feature_names: Any = None,
        item_feature_names: Any = None,
    ) -> None:
        n_users = check_number(n_users, "n_users", integer=True, low=1)
        n_items = check_number(n_items, "n_items", integer=True, low=1)
        if n_users * n_items > _MAX_PAIRS:  # Python ints: the product cannot overflow here
            raise ValueError(
                f"n_users * n_items must be <= 2**63 - 1 (pairs are keyed as user * n_items + item in int64), "
                f"got n_users={n_users}, n_items={n_items}"
            )
        users = check_indices(pos_users, "pos_users", n_users)
        items = check_indices(pos_items, "pos_items", n_items, length=users.shape[0])
        if users.shape[0] == 0:
            raise ValueError("pos_users is empty: at least one positive interaction is needed")
        values = _check_weights(pos_values, "pos_values", users.shape[0])
        stamps = _check_timestamps(timestamps, "timestamps", users.shape[0])
        negatives = None if negatives is None else as_csr(negatives, "negatives")
        if negatives is not None and negatives.shape != (n_users, n_items):
            raise ValueError(
                f"negatives must have shape (n_users, n_items) = {(n_users, n_items)}, got {negatives.shape}"
            )
        user_features = self._check_features(user_features, "user_features", n_users)
        item_features = self._check_features(item_features, "item_features", n_items)
        self.n_users = n_users
        self.cv_folds: dict[str, tuple[int, int]] = {}
        self.n_items = n_items
        self.user_features = user_features
        self.item_features = item_features
        self.user_ids = _check_raw_ids(user_ids, "user_ids", n_users)
        self.item_ids = _check_raw_ids(item_ids, "item_ids", n_items)
        self.user_feature_names = _check_names(user_feature_names, "user_feature_names", user_features)
        self.item_feature_names = _check_names(item_feature_names, "item_feature_names", item_features)
        users, items, values, stamps = _canonicalise(users, items, values, stamps, n_items)
        self.negatives = _drop_overlap(negatives, users, items)
        self._set_positives(users, items, values, stamps)

    @staticmethod
    def _check_features(features: Any, name: str, n_rows: int) -> sp.csr_matrix | None:
        if features is None:
            return None
        matrix = as_csr(features, name)
        if matrix.shape[0] != n_rows:
            owner = "n_users" if name.startswith("user") else "n_items"
            raise ValueError(f"{name} must have {owner} = {n_rows} rows, got shape {matrix.shape}")
        return matrix

    def _set_positives(
        self,
        users: np.ndarray,
        items: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray | None,
    ) -> None:
        self.pos_users = users
        self.pos_items = items
        self.pos_values = values
        self.timestamps = timestamps
        self._positives: sp.csr_matrix | None = None

    def _replace(
        self,
        users: np.ndarray,
        items: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray | None,
        negatives: sp.csr_matrix | None,
    ) -> Interactions:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.fold = None  # a selection is a fold only when selected by a split's train positions
        new.cv_folds = {}
        new.negatives = negatives
        new._set_positives(users, items, values, timestamps)
        return new

    # ---------------------------------------------------------------- sizes
    @property
    def n_positives(self) -> int:
        """Number of positive interactions (the sample count)."""
        return int(self.pos_users.shape[0])

    @property
    def n_negatives(self) -> int:
        """Number of stored implicit negatives (0 without negatives)."""
        return 0 if self.negatives is None else int(self.negatives.nnz)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_positives, 2)``: one sample per positive (user, item) pair."""
        return (self.n_positives, 2)

    def __len__(self) -> int:
        return self.n_positives

    @property
    def positives(self) -> sp.csr_matrix:
        """Positives as a canonical float32 CSR matrix of shape (n_users, n_items)."""
        if self._positives is None:
            counts = np.bincount(self.pos_users, minlength=self.n_users)
            indptr = np.concatenate([[0], np.cumsum(counts)])
            matrix = sp.csr_matrix(
                (self.pos_values.copy(), self.pos_items.copy(), indptr),
                shape=(self.n_users, self.n_items),
            )
            matrix.has_sorted_indices = True
            matrix.has_canonical_format = True
            self._positives = matrix
        return self._positives

    # ------------------------------------------------------------- indexing
    def _positions(self, key: Any) -> np.ndarray:
        n = self.n_positives
        if isinstance(key, tuple):
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            elif len(key) == 1:
                key = key[0]
            else:
                raise TypeError(
                    f"Interactions is indexed along its positives only; got a tuple index of length {len(key)}"
                )
        if isinstance(key, slice):
            return np.sort(np.arange(n)[key])
        if isinstance(key, (bool, np.bool_)):
            raise TypeError(f"index must not be a scalar boolean, got {key!r}")
        if isinstance(key, numbers.Integral):
            key = np.array([key])
        array = np.asarray(key)
        if array.size == 0 and array.dtype.kind not in "b":
            array = array.astype(np.int64)
        if array.ndim != 1:
            raise ValueError(f"index must be 1-D, got shape {array.shape}")
        if array.dtype.kind == "b":
            if array.shape[0] != n:
                raise ValueError(f"boolean index must have length n_positives = {n}, got length {array.shape[0]}")
            return np.flatnonzero(array)
        if array.dtype.kind not in "iu":
            raise TypeError(f"index must be integers, a slice or a boolean mask, got dtype {array.dtype}")
        if array.size == 0:
            return array.astype(np.int64)
        bad = (array < -n) | (array >= n)
        if bad.any():
            raise _PositionError(f"index out of range for {n} positives: {examples(array[bad])}")
        positions = np.sort(np.where(array < 0, array + n, array).astype(np.int64))
        repeated = positions[1:] == positions[:-1]
        if repeated.any():
            raise ValueError(f"index selects some positives more than once: {examples(positions[1:][repeated])}")
        return positions

    def __getitem__(self, key: Any) -> Interactions:
        """Select positives; side information is kept whole (see module docs).

        Selected by the train positions of a cross-validation split of
        skbpr's splitters, the selection's :attr:`fold` says which split it is
        (see :mod:`skbpr.data.folds`).
        """
        positions = self._positions(key)
        timestamps = None if self.timestamps is None else self.timestamps[positions]
        selected = self._replace(
            self.pos_users[positions],
            self.pos_items[positions],
            self.pos_values[positions],
            timestamps,
            self.negatives,
        )
        selected.fold = fold_of(self, positions)
        return selected

    # --------------------------------------------------------- constructors
    def with_positives(
        self,
        users: Any,
        items: Any,
        values: Any = None,
        timestamps: Any = None,
    ) -> Interactions:
        """Copy with other positives and the same side information.

        The positives are validated, merged and sorted as in the constructor;
        an empty set of positives is allowed. Pairs that are also negatives
        are dropped from the copy's negatives (positives win, with a warning).
        """
        users = check_indices(users, "users", self.n_users)
        items = check_indices(items, "items", self.n_items, length=users.shape[0])
        values = _check_weights(values, "values", users.shape[0])
        stamps = _check_timestamps(timestamps, "timestamps", users.shape[0])
        users, items, values, stamps = _canonicalise(users, items, values, stamps, self.n_items)
        negatives = _drop_overlap(self.negatives, users, items)
        return self._replace(users, items, values, stamps, negatives)

    @classmethod
    def from_matrices(
        cls,
        positives: Any,
        negatives: Any = None,
        *,
        user_features: Any = None,
        item_features: Any = None,
        user_ids: Any = None,
        item_ids: Any = None,
        user_feature_names: Any = None,
        item_feature_names: Any = None,
    ) -> Interactions:
        """Build from a (n_users, n_items) matrix of positives.

        Parameters
        ----------
        positives : sparse matrix or array-like of shape (n_users, n_items)
            Nonzero entries are positives; their values are the weights.
        negatives : sparse matrix or array-like of shape (n_users, n_items), optional
            Nonzero entries are implicit negatives. Pairs also positive are
            dropped from it with a ``UserWarning`` (positives win).
        user_features, item_features, user_ids, item_ids, user_feature_names, \
item_feature_names : optional
            As in :class:`Interactions`.

        Returns
        -------
        Interactions
        """
        matrix = as_csr(positives, "positives")
        if matrix.nnz == 0:
            raise ValueError(f"positives has no nonzero entry (shape {matrix.shape})")
        if negatives is not None:
            neg_shape = getattr(negatives, "shape", None)
            if neg_shape is None:
                neg_shape = np.shape(negatives)
            if tuple(neg_shape) != matrix.shape:
                raise ValueError(f"negatives must have the shape of positives {matrix.shape}, got {tuple(neg_shape)}")
        users = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
        return cls(
            users,
            matrix.indices.astype(np.int64),
            n_users=matrix.shape[0],
            n_items=matrix.shape[1],
            pos_values=matrix.data,
            negatives=negatives,
            user_features=user_features,
            item_features=item_features,
            user_ids=user_ids,
            item_ids=item_ids,
            user_feature_names=user_feature_names,
            item_feature_names=item_feature_names,
        )

    @classmethod
    def from_frame(
        cls,
        events: pd.DataFrame,
        *,
        user_col: Any = "user_id",
        item_col: Any = "item_id",
        rating_col: Any = None,
        label_col: Any = None,
        threshold: float | None = None,
        timestamp_col: Any = None,
        weight_col: Any = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        users: Any = None,
        items: Any = None,
    ) -> Interactions:
        """Build from an events DataFrame (one row per event).

        Parameters
        ----------
        events : pandas.DataFrame
            One row per event.
        user_col, item_col, rating_col, label_col, threshold, timestamp_col, \
weight_col
            See :class:`EventColumns`: ``label_col`` truthy rows, or rows with
            ``rating_col >= threshold``, are positives and the other rows
            implicit negatives; without both every row is a positive.
        user_features, item_features : pandas.DataFrame, optional
            Feature tables indexed by raw id, encoded by :class:`FeatureEncoding`.
        users, items : array-like, optional
            Raw ids fixing the id space (in this order). Without them the id
            space is the sorted union of the ids in ``events`` and in the
            feature table's index.

        Returns
        -------
        Interactions

        Examples
        --------
        >>> import pandas as pd
        >>> from skbpr import Interactions
        >>> events = pd.DataFrame(
        ...     {"user": ["ann", "ann", "bob", "cid"], "item": ["x", "y", "x", "z"], "rating": [5, 2, 4, 5]}
        ... )
        >>> data = Interactions.from_frame(events, user_col="user", item_col="item", rating_col="rating", threshold=4)
        >>> data.n_positives, data.n_negatives
        (3, 1)
        >>> data.user_ids, data.item_ids
        (array(['ann', 'bob', 'cid'], dtype=object), array(['x', 'y', 'z'], dtype=object))
        >>> data.to_frame()
          user_id item_id  weight
        0     ann       x     1.0
        1     bob       x     1.0
        2     cid       z     1.0
        """
        columns = EventColumns(user_col, item_col, rating_col, label_col, threshold, timestamp_col, weight_col)
        columns.validate(events)
        user_encoding = None if user_features is None else FeatureEncoding.fit(user_features, name="user_features")
        item_encoding = None if item_features is None else FeatureEncoding.fit(item_features, name="item_features")
        user_space = None if users is None else _fixed_space(users, "users")
        item_space = None if items is None else _fixed_space(items, "items")
        parsed = columns.parse(events)
        if not parsed.positive.any():
            raise ValueError(f"events has no positive row ({len(events)} rows)")
        if user_space is None:
            user_space = id_space(parsed.users, user_features, f"user_col {user_col!r}")
        if item_space is None:
            item_space = id_space(parsed.items, item_features, f"item_col {item_col!r}")
        user_codes = encode_ids(parsed.users, user_space)
        item_codes = encode_ids(parsed.items, item_space)
        for argument, column, raw, codes in (
            ("user_col", user_col, parsed.users, user_codes),
            ("item_col", item_col, parsed.items, item_codes),
        ):
            unknown = codes < 0
            if unknown.any():
                space = "users" if argument == "user_col" else "items"
                raise ValueError(
                    f"{argument} {column!r} has {int(unknown.sum())} rows with ids outside "
                    f"the given {space}, e.g. {examples(raw[unknown])}"
                )
        return assemble_events(
            parsed,
            user_codes,
            item_codes,
            user_space,
            item_space,
            None if user_encoding is None else user_encoding.transform(user_features, user_space),
            None if item_encoding is None else item_encoding.transform(item_features, item_space),
            None if user_encoding is None else user_encoding.feature_names,
            None if item_encoding is None else item_encoding.feature_names,
        )

    # ---------------------------------------------------------------- views
    def to_frame(self, *, user_col: str = "user_id", item_col: str = "item_id") -> pd.DataFrame:
        """Positives as a DataFrame of raw ids, weights and timestamps."""
        users = self.pos_users if self.user_ids is None else self.user_ids[self.pos_users]
        items = self.pos_items if self.item_ids is None else self.item_ids[self.pos_items]
        data = {user_col: users, item_col: items, "weight": self.pos_values}
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps
        return pd.DataFrame(data)

    def equals(self, other: Any) -> bool:
        """Whether ``other`` holds the same positives and side information."""
        if not isinstance(other, Interactions):
            return False
        if (self.n_users, self.n_items) != (other.n_users, other.n_items):
            return False
        for name in ("pos_users", "pos_items", "pos_values"):
            if not np.array_equal(getattr(self, name), getattr(other, name)):
                return False
        for name in ("timestamps", "user_ids", "item_ids", "user_feature_names", "item_feature_names"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if (mine is None) != (theirs is None):
                return False
            if mine is not None and not np.array_equal(mine, theirs):
                return False
        for name in ("negatives", "user_features", "item_features"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if (mine is None) != (theirs is None):
                return False
            if mine is not None and (mine.shape != theirs.shape or (mine != theirs).nnz):
                return False
        return True

    def __repr__(self) -> str:
        def width(features: sp.csr_matrix | None) -> int | None:
            return None if features is None else features.shape[1]

        return (
            f"Interactions(n_users={self.n_users}, n_items={self.n_items}, "
            f"n_positives={self.n_positives}, n_negatives={self.n_negatives}, "
            f"timestamps={self.timestamps is not None}, "
            f"user_features={width(self.user_features)}, "
            f"item_features={width(self.item_features)})"
        )


class _PositionError(IndexError, ValueError):
    """An index outside the positives (both an IndexError and a ValueError)."""


def assemble_events(
    parsed: _ParsedEvents,
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    user_features: sp.csr_matrix | None,
    item_features: sp.csr_matrix | None,
    user_feature_names: np.ndarray | None,
    item_feature_names: np.ndarray | None,
    keep: np.ndarray | None = None,
) -> Interactions:
    """Build the container from encoded events (rows outside ``keep`` dropped)."""
    positive = parsed.positive if keep is None else parsed.positive & keep
    negative = ~parsed.positive if keep is None else ~parsed.positive & keep
    shape = (len(user_ids), len(item_ids))
    negatives = None
    if negative.any():
        negatives = sp.csr_matrix(
            (parsed.weights[negative], (user_codes[negative], item_codes[negative])),
            shape=shape,
            dtype=np.float32,
        )
    return Interactions(
        user_codes[positive],
        item_codes[positive],
        n_users=shape[0],
        n_items=shape[1],
        pos_values=parsed.weights[positive],
        timestamps=None if parsed.timestamps is None else parsed.timestamps[positive],
        negatives=negatives,
        user_features=user_features,
        item_features=item_features,
        user_ids=user_ids,
        item_ids=item_ids,
        user_feature_names=user_feature_names,
        item_feature_names=item_feature_names,
    )
