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

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.assembly import assemble_events, interactions_from_frame
from skbpr.data.conversion import (
    as_csr,
    canonicalise,
    check_feature_names,
    check_features,
    check_id_space,
    check_raw_ids,
    check_timestamps,
    check_weights,
    drop_overlap,
    positives_csr,
)
from skbpr.data.equality import same_contents
from skbpr.data.events import EventColumns, FeatureEncoding
from skbpr.data.folds import CARRIED, fold_of, split_records
from skbpr.data.positions import positions_of
from skbpr.utils.validation import check_indices

__all__ = ["EventColumns", "FeatureEncoding", "Interactions", "assemble_events"]


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
        Splitting a container does not change it: the splits are noted
        beside it (:func:`skbpr.data.folds.split_records`).

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
        n_users, n_items = check_id_space(n_users, n_items)
        users = check_indices(pos_users, "pos_users", n_users)
        items = check_indices(pos_items, "pos_items", n_items, length=users.shape[0])
        if users.shape[0] == 0:
            raise ValueError("pos_users is empty: at least one positive interaction is needed")
        values = check_weights(pos_values, "pos_values", users.shape[0])
        stamps = check_timestamps(timestamps, "timestamps", users.shape[0])
        negatives = None if negatives is None else as_csr(negatives, "negatives")
        if negatives is not None and negatives.shape != (n_users, n_items):
            raise ValueError(
                f"negatives must have shape (n_users, n_items) = {(n_users, n_items)}, got {negatives.shape}"
            )
        user_features = check_features(user_features, "user_features", n_users)
        item_features = check_features(item_features, "item_features", n_items)
        self.n_users = n_users
        self.n_items = n_items
        self.user_features = user_features
        self.item_features = item_features
        self.user_ids = check_raw_ids(user_ids, "user_ids", n_users)
        self.item_ids = check_raw_ids(item_ids, "item_ids", n_items)
        self.user_feature_names = check_feature_names(user_feature_names, "user_feature_names", user_features)
        self.item_feature_names = check_feature_names(item_feature_names, "item_feature_names", item_features)
        users, items, values, stamps = canonicalise(users, items, values, stamps, n_items)
        self.negatives = drop_overlap(negatives, users, items)
        self._set_positives(users, items, values, stamps)

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
        new.__dict__.pop(CARRIED, None)  # a selection was not split
        new.fold = None  # a selection is a fold only when selected by a split's train positions
        new.negatives = negatives
        new._set_positives(users, items, values, timestamps)
        return new

    def __getstate__(self) -> dict[str, Any]:
        """The attributes, and the splits noted for this container, so that worker processes know them too."""
        state = dict(self.__dict__)
        records = split_records(self)
        if records:
            state[CARRIED] = records
        return state

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
            self._positives = positives_csr(self.pos_users, self.pos_items, self.pos_values, self.n_users, self.n_items)
        return self._positives

    # ------------------------------------------------------------- indexing
    def __getitem__(self, key: Any) -> Interactions:
        """Select positives; side information is kept whole (see module docs).

        Selected by the train positions of a cross-validation split of
        skbpr's splitters, the selection's :attr:`fold` says which split it is
        (see :mod:`skbpr.data.folds`).
        """
        positions = positions_of(key, self.n_positives)
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
        values = check_weights(values, "values", users.shape[0])
        stamps = check_timestamps(timestamps, "timestamps", users.shape[0])
        users, items, values, stamps = canonicalise(users, items, values, stamps, self.n_items, name="values")
        negatives = drop_overlap(self.negatives, users, items)
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
        return interactions_from_frame(
            events,
            columns=EventColumns(user_col, item_col, rating_col, label_col, threshold, timestamp_col, weight_col),
            user_features=user_features,
            item_features=item_features,
            users=users,
            items=items,
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
        return same_contents(self, other)

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
