"""Pipeline step turning an events DataFrame into :class:`~skbpr.Interactions`.

:class:`InteractionsEncoder` learns an id space and a feature encoding in
``fit`` and reuses them in ``transform``, so that the training and the
scoring parts of a split share their user and item indices::

    make_pipeline(InteractionsEncoder(label_col="clicked"), HybridBPR())

Rules
-----
* The id space learned by ``fit`` is the sorted union of the ids in the
  events and in the index of the feature tables. Users or items that only
  appear in a feature table are therefore part of it and can be scored from
  their features.
* ``transform`` drops the rows whose user or item is outside that id space
  (unknown and without features), with one ``UserWarning`` giving the count.
* The positive rule, duplicates, timestamps and the positives-win rule are
  those of :meth:`skbpr.interactions.Interactions.from_frame`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skbpr.data.events import EventColumns, FeatureEncoding, encode_ids, id_space
from skbpr.data.interactions import Interactions, assemble_events

__all__ = ["InteractionsEncoder"]


class InteractionsEncoder(TransformerMixin, BaseEstimator):
    """Encode an events DataFrame into :class:`~skbpr.interactions.Interactions`.

    Parameters
    ----------
    user_col, item_col : str, default="user_id", "item_id"
        Columns with the raw user and item ids.
    rating_col : str, optional
        Rows with ``rating >= threshold`` are positives, the others implicit
        negatives.
    label_col : str, optional
        Truthy rows are positives, falsy rows implicit negatives.
    threshold : float, optional
        Rating threshold, required with ``rating_col``.
    timestamp_col : str, optional
        Numeric or datetime column with the time of each event.
    user_features, item_features : pandas.DataFrame, optional
        Feature tables indexed by raw id (numeric columns kept, others
        one-hot encoded as ``"column=value"``).
    weight_col : str, optional
        Strictly positive weight of each event (default 1): HybridBPR turns
        weights into confidences (its ``weighting`` parameter).

    Attributes
    ----------
    user_ids_, item_ids_ : ndarray
        Raw id of each user / item index.
    n_users_, n_items_ : int
        Size of the id space.
    user_encoding_, item_encoding_ : FeatureEncoding or None
        Learned feature encodings.
    user_features_, item_features_ : scipy.sparse.csr_matrix or None
        Encoded feature matrices aligned with the id space.

    Notes
    -----
    See the module docstring for the id-space and unknown-row rules.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr.preprocessing import InteractionsEncoder
    >>> events = pd.DataFrame(
    ...     {
    ...         "user_id": ["ann", "ann", "bob", "bob", "cid"],
    ...         "item_id": ["x", "y", "x", "z", "y"],
    ...         "rating": [5, 2, 4, 5, 3],
    ...     }
    ... )
    >>> encoder = InteractionsEncoder(rating_col="rating", threshold=4)
    >>> data = encoder.fit_transform(events)
    >>> encoder.user_ids_.tolist(), encoder.item_ids_.tolist()
    (['ann', 'bob', 'cid'], ['x', 'y', 'z'])
    >>> data.n_positives, data.n_negatives
    (3, 2)
    >>> data.positives.toarray()
    array([[1., 0., 0.],
           [1., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """

    def __init__(
        self,
        user_col: Any = "user_id",
        item_col: Any = "item_id",
        rating_col: Any = None,
        label_col: Any = None,
        threshold: float | None = None,
        timestamp_col: Any = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        weight_col: Any = None,
    ) -> None:
        self.user_col = user_col
        self.item_col = item_col
        self.rating_col = rating_col
        self.label_col = label_col
        self.threshold = threshold
        self.timestamp_col = timestamp_col
        self.user_features = user_features
        self.item_features = item_features
        self.weight_col = weight_col

    def __sklearn_tags__(self) -> Any:
        """scikit-learn >= 1.6 tags: the input is an events DataFrame, not a numeric array."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = False
        return tags

    def _more_tags(self) -> dict[str, Any]:
        """The same tags for scikit-learn < 1.6."""
        return {"X_types": ["string"], "requires_y": False}

    def _columns(self) -> EventColumns:
        return EventColumns(
            self.user_col,
            self.item_col,
            self.rating_col,
            self.label_col,
            self.threshold,
            self.timestamp_col,
            self.weight_col,
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> InteractionsEncoder:
        """Learn the id space and the feature encodings from events ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Events, one row per event.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        columns = self._columns()
        columns.validate(X)
        user_encoding = (
            None if self.user_features is None else FeatureEncoding.fit(self.user_features, name="user_features")
        )
        item_encoding = (
            None if self.item_features is None else FeatureEncoding.fit(self.item_features, name="item_features")
        )
        parsed = columns.parse(X)
        self.user_ids_ = id_space(parsed.users, self.user_features, f"user_col {self.user_col!r}")
        self.item_ids_ = id_space(parsed.items, self.item_features, f"item_col {self.item_col!r}")
        self.n_users_ = int(self.user_ids_.shape[0])
        self.n_items_ = int(self.item_ids_.shape[0])
        self.user_encoding_ = user_encoding
        self.item_encoding_ = item_encoding
        self.user_features_ = (
            None if user_encoding is None else user_encoding.transform(self.user_features, self.user_ids_)
        )
        self.item_features_ = (
            None if item_encoding is None else item_encoding.transform(self.item_features, self.item_ids_)
        )
        return self

    def transform(self, X: pd.DataFrame) -> Interactions:
        """Encode events ``X`` in the fitted id space.

        Rows whose user or item is outside the fitted id space are dropped
        with one ``UserWarning`` giving their count.

        Parameters
        ----------
        X : pandas.DataFrame
            Events, one row per event.

        Returns
        -------
        Interactions
        """
        check_is_fitted(self, "user_ids_")
        parsed = self._columns().parse(X)
        user_codes = encode_ids(parsed.users, self.user_ids_)
        item_codes = encode_ids(parsed.items, self.item_ids_)
        known = (user_codes >= 0) & (item_codes >= 0)
        n_unknown = int(known.shape[0] - np.count_nonzero(known))
        if n_unknown:
            warnings.warn(
                f"{n_unknown} of {known.shape[0]} event rows have a user or item "
                "unknown at fit time and without features; they were dropped",
                UserWarning,
                stacklevel=2,
            )
        if not np.any(parsed.positive & known):
            raise ValueError(f"X has no positive row with a known user and item ({len(X)} rows, {n_unknown} unknown)")
        return assemble_events(
            parsed,
            user_codes,
            item_codes,
            self.user_ids_,
            self.item_ids_,
            self.user_features_,
            self.item_features_,
            None if self.user_encoding_ is None else self.user_encoding_.feature_names,
            None if self.item_encoding_ is None else self.item_encoding_.feature_names,
            keep=known,
        )
