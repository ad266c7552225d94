"""Events tables: which columns hold what, feature tables and raw-id spaces.

:class:`EventColumns`, :class:`FeatureEncoding`, :func:`id_space` and :func:`encode_ids`.

What :meth:`Interactions.from_frame <skbpr.data.interactions.Interactions.from_frame>`
and :class:`~skbpr.data.preprocessing.InteractionsEncoder` share to turn
DataFrames into the container's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.conversion import as_1d, check_raw_ids, check_timestamps, check_weights
from skbpr.utils.validation import check_number, examples


def series_timestamps(series: pd.Series, name: str) -> np.ndarray:
    """A DataFrame column of timestamps as the container holds them (see :func:`check_timestamps`)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing values")
    if pd.api.types.is_bool_dtype(series.dtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype)
    ):
        raise TypeError(f"{name} must be numeric or datetime, got dtype {series.dtype}")
    return check_timestamps(series.to_numpy(), name, len(series))


@dataclass(frozen=True)
class ParsedEvents:
    """The rows of an events table as arrays: raw ids, positive flags, weights, timestamps."""

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
        Strictly positive weight of each event (default 1): HybridBPR turns
        weights into confidences (its ``weighting`` parameter).

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

    def parse(self, events: pd.DataFrame) -> ParsedEvents:
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
            weights = check_weights(column.to_numpy(dtype=np.float64), f"weight_col {self.weight_col!r}", n_rows)
        timestamps = None
        if self.timestamp_col is not None:
            timestamps = series_timestamps(events[self.timestamp_col], f"timestamp_col {self.timestamp_col!r}")
        return ParsedEvents(ids["user_col"], ids["item_col"], positive, weights, timestamps)


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


def fixed_space(ids: Any, name: str) -> np.ndarray:
    """A raw-id space given by the user: non-empty, unique, in the given order."""
    array = as_1d(ids, name)
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return check_raw_ids(array, name, array.shape[0])


def encode_ids(raw: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each raw id in ``ids`` (-1 for an id not there)."""
    return pd.Index(ids).get_indexer(raw).astype(np.int64)
