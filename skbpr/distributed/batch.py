"""Top-k recommendations for many users at once, as DataFrames of raw ids.

:class:`BatchRecommender` maps a pandas DataFrame with a column of user ids
to a DataFrame with the columns ``user, item, score, rank`` (``k`` rows per
user, best first, raw ids in and raw ids out). The same object works

- on one machine: ``recommender(frame)``;
- as a Spark ``mapInPandas`` function: ``spark_frame.mapInPandas(recommender,
  recommender.spark_schema)`` (Spark hands it an iterator of frames, it
  yields one frame per input frame);
- on Dask DataFrame partitions: ``dask_frame.map_partitions(recommender,
  meta=recommender.meta)``.

Each frame costs one vectorised :meth:`skbpr.HybridBPR.recommend` call (the
users are scored ``batch_size`` at a time); nothing loops over users in
Python. Unknown users and a missing column raise a :class:`ValueError`
naming them before any scoring.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from skbpr.utils.validation import check_indices, check_number, examples, invalid

__all__ = ["OUTPUT_COLUMNS", "BatchRecommender", "recommend_frame"]

OUTPUT_COLUMNS = ("user", "item", "score", "rank")


def _spark_type(dtype: np.dtype) -> str:
    if np.issubdtype(dtype, np.integer):
        return "long"
    if np.issubdtype(dtype, np.floating):
        return "double"
    return "string"


class BatchRecommender:
    """Top-``k`` items for each user of a DataFrame: raw ids in, raw ids out.

    Parameters
    ----------
    model : HybridBPR
        A fitted estimator.
    user_ids : array-like of shape (n_users,), optional
        Raw id of each user index (``Interactions.user_ids``); ``None``
        means the users are given as indices ``0 .. n_users - 1``.
    item_ids : array-like of shape (n_items,), optional
        Raw id of each item index (``Interactions.item_ids``); ``None``
        returns item indices.
    k : int, default=10
        Items per user.
    user_col : str, default="user"
        Column of the input frames that holds the user ids.
    exclude_seen : bool, default=True
        Remove each user's training positives from the ranking.
    batch_size : int, default=4096
        Users scored per matrix product (``batch_size x n_items`` scores in
        memory at a time).

    Attributes
    ----------
    meta : pandas.DataFrame
        An empty frame with the output's columns and dtypes, for Dask's
        ``map_partitions(..., meta=...)``.
    spark_schema : str
        The output schema as a Spark DDL string, for ``mapInPandas``.

    Raises
    ------
    ValueError
        When the model is not fitted, ``k`` is outside ``[1, n_items]``, or
        ``user_ids`` / ``item_ids`` do not have one distinct id per user /
        item of the model.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr import HybridBPR, Interactions
    >>> from skbpr.distributed.batch import BatchRecommender
    >>> events = pd.DataFrame({"user_id": ["ann", "ann", "bob", "bob", "cid", "cid"],
    ...                        "item_id": ["x", "y", "y", "z", "x", "z"]})
    >>> data = Interactions.from_frame(events, user_col="user_id", item_col="item_id")
    >>> model = HybridBPR(4, epochs=2, random_state=0, n_threads=1).fit(data)
    >>> recommender = BatchRecommender(model, data.user_ids, data.item_ids, k=1)
    >>> recs = recommender(pd.DataFrame({"user": ["bob", "ann"]}))
    >>> recs[["user", "item", "rank"]].to_string(index=False)
    'user item  rank\\n bob    x     1\\n ann    z     1'
    >>> recommender.spark_schema
    'user string, item string, score double, rank int'
    """

    def __init__(
        self,
        model: Any,
        user_ids: Any = None,
        item_ids: Any = None,
        *,
        k: int = 10,
        user_col: str = "user",
        exclude_seen: bool = True,
        batch_size: int = 4096,
    ) -> None:
        if not hasattr(model, "model_") or not hasattr(model, "n_users_"):
            raise invalid("model", "a fitted HybridBPR", model, shown=f"an unfitted {type(model).__name__}")
        n_users, n_items = int(model.n_users_), int(model.n_items_)
        k = check_number(k, "k", integer=True, low=1, high=n_items)
        batch_size = check_number(batch_size, "batch_size", integer=True, low=1)
        if not isinstance(user_col, str):
            raise invalid("user_col", "a column name (str)", user_col)
        self.model = model
        self.user_ids = self._check_ids("user_ids", user_ids, n_users)
        self.item_ids = self._check_ids("item_ids", item_ids, n_items)
        self.k = int(k)
        self.user_col = user_col
        self.exclude_seen = bool(exclude_seen)
        self.batch_size = int(batch_size)
        self._lookup = None if self.user_ids is None else pd.Index(self.user_ids)

    @staticmethod
    def _check_ids(name: str, ids: Any, n: int) -> np.ndarray | None:
        if ids is None:
            return None
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise invalid(name, f"one id per model row ({n})", arr, shown=f"an array of shape {arr.shape}")
        index = pd.Index(arr)
        if not index.is_unique:
            raise invalid(name, "distinct ids", arr, shown=f"repeated ones such as {examples(arr[index.duplicated()])}")
        return arr

    # ------------------------------------------------------------ the schema
    @property
    def meta(self) -> pd.DataFrame:
        users = np.empty(0, dtype=self.user_ids.dtype if self.user_ids is not None else np.int64)
        items = np.empty(0, dtype=self.item_ids.dtype if self.item_ids is not None else np.int64)
        return pd.DataFrame(
            {
                "user": users,
                "item": items,
                "score": np.empty(0, dtype=np.float64),
                "rank": np.empty(0, dtype=np.int32),
            }
        )

    @property
    def spark_schema(self) -> str:
        user = _spark_type(self.user_ids.dtype) if self.user_ids is not None else "long"
        item = _spark_type(self.item_ids.dtype) if self.item_ids is not None else "long"
        return f"user {user}, item {item}, score double, rank int"

    # ------------------------------------------------------------- the work
    def user_indices(self, users: Any) -> np.ndarray:
        """Model row of each raw user id; a :class:`ValueError` names the unknown ones."""
        values = np.asarray(users)
        if values.ndim != 1:
            raise invalid(self.user_col, "a 1-D column of user ids", values, shown=f"shape {values.shape}")
        if self._lookup is None:
            if values.size and not np.issubdtype(values.dtype, np.integer):
                raise invalid(
                    self.user_col,
                    "integer user indices (the model has no raw user ids)",
                    values,
                    shown=f"dtype {values.dtype} such as {examples(values)}",
                )
            return check_indices(values, self.user_col, self.model.n_users_)
        indices = self._lookup.get_indexer(values)
        unknown = indices < 0
        if unknown.any():
            known = ", ".join(repr(v) for v in self.user_ids[:3].tolist())
            raise invalid(
                self.user_col,
                f"user ids known to the model (such as {known}; dtype {self.user_ids.dtype})",
                values,
                shown=f"{int(unknown.sum())} unknown id(s) such as {examples(values[unknown])}",
            )
        return indices.astype(np.int64)

    def recommend_indices(self, indices: np.ndarray) -> pd.DataFrame:
        """The output frame for users given as model rows (one ``recommend`` call)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return self.meta
        items, scores = self.model.recommend(
            indices, k=self.k, exclude_seen=self.exclude_seen, batch_size=self.batch_size
        )
        keep = (items >= 0).ravel()  # -1: fewer than k candidates were left for that user
        users = indices if self.user_ids is None else self.user_ids[indices]
        flat_items = items.ravel()[keep]
        return pd.DataFrame(
            {
                "user": np.repeat(users, self.k)[keep],
                "item": flat_items if self.item_ids is None else self.item_ids[flat_items],
                "score": scores.ravel()[keep].astype(np.float64),
                "rank": np.tile(np.arange(1, self.k + 1, dtype=np.int32), indices.size)[keep],
            }
        )

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``user, item, score, rank`` for the users of ``frame[user_col]``, in their order.

        Raises
        ------
        ValueError
            When ``frame`` has no column ``user_col`` or holds users the
            model does not know, before any scoring.
        """
        if not isinstance(frame, pd.DataFrame):
            raise invalid(
                "frame", f"a pandas DataFrame with a {self.user_col!r} column", frame, shown=type(frame).__name__
            )
        if self.user_col not in frame.columns:
            raise invalid(
                "user_col",
                "a column of the frame",
                self.user_col,
                shown=f"{self.user_col!r} (the frame has columns {list(frame.columns)[:20]})",
            )
        return self.recommend_indices(self.user_indices(frame[self.user_col].to_numpy()))

    def __call__(self, frames: pd.DataFrame | Iterable[pd.DataFrame]) -> Any:
        """A frame for a frame (pandas, Dask partitions), an iterator for an iterator (Spark ``mapInPandas``)."""
        if isinstance(frames, pd.DataFrame):
            return self.transform(frames)
        return self._stream(iter(frames))

    def _stream(self, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            yield self.transform(frame)

    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> BatchRecommender:
        """A recommender for a model file written by ``skbpr fit --save`` (with its raw ids).

        The file is a joblib pickle: load only files you trust. ``kwargs``
        go to the constructor (``k``, ``user_col``, ...).
        """
        from skbpr.models.files import read_model_file

        bundle = read_model_file(path)
        return cls(bundle["estimator"], bundle.get("user_ids"), bundle.get("item_ids"), **kwargs)


def recommend_frame(
    model: Any,
    users: pd.DataFrame,
    *,
    user_ids: Any = None,
    item_ids: Any = None,
    k: int = 10,
    user_col: str = "user",
    exclude_seen: bool = True,
) -> pd.DataFrame:
    """Top-``k`` items for each user of ``users[user_col]`` as a ``user, item, score, rank`` frame.

    A shortcut for ``BatchRecommender(model, user_ids, item_ids, k=k,
    user_col=user_col, exclude_seen=exclude_seen)(users)``; see
    :class:`BatchRecommender` for Spark and Dask.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr import HybridBPR
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.distributed.batch import recommend_frame
    >>> data = make_interactions(50, 30, 300, random_state=0)  # no raw ids: users are indices
    >>> model = HybridBPR(4, epochs=2, random_state=0, n_threads=1).fit(data)
    >>> recs = recommend_frame(model, pd.DataFrame({"user": [3, 7]}), k=2)
    >>> recs.shape, list(recs.columns), recs["rank"].tolist()
    ((4, 4), ['user', 'item', 'score', 'rank'], [1, 2, 1, 2])
    """
    recommender = BatchRecommender(model, user_ids, item_ids, k=k, user_col=user_col, exclude_seen=exclude_seen)
    return recommender.transform(users)
