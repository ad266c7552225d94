"""Building an ``Interactions`` from encoded ids and side information.

:func:`build_interactions` is the one place that spells out the container's
constructor for an id space given by raw ids (events of ``from_frame`` and of
the preprocessing steps, the data set readers); :class:`IdAxis` groups what
each side of that id space brings along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.conversion import check_merged_weights
from skbpr.data.events import EventColumns, FeatureEncoding, ParsedEvents, encode_ids, fixed_space, id_space
from skbpr.utils.validation import examples

if TYPE_CHECKING:
    from skbpr.data.interactions import Interactions

__all__ = ["IdAxis", "assemble_events", "build_interactions", "interactions_from_frame"]


@dataclass(frozen=True)
class IdAxis:
    """One side (users or items) of an id space: its raw ids, with optional features and their names.

    Parameters
    ----------
    ids : ndarray
        Raw id of each index; their number is the size of this side.
    features : sparse matrix or array, optional
        One row per id.
    feature_names : ndarray of str, optional
        One name per column of ``features``.
    """

    ids: np.ndarray
    features: Any = None
    feature_names: Any = None


def build_interactions(
    users: IdAxis,
    items: IdAxis,
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    *,
    pos_values: Any = None,
    timestamps: Any = None,
    negatives: Any = None,
) -> Interactions:
    """The container of the positives ``(user_codes, item_codes)`` over the id space of ``users`` and ``items``.

    Parameters
    ----------
    users, items : IdAxis
        Raw ids, features and feature names of each side.
    user_codes, item_codes : ndarray of int
        Index of each positive's user and item.
    pos_values, timestamps, negatives : optional
        As in :class:`~skbpr.data.interactions.Interactions`.

    Returns
    -------
    Interactions
    """
    from skbpr.data.interactions import Interactions

    return Interactions(
        user_codes,
        item_codes,
        n_users=len(users.ids),
        n_items=len(items.ids),
        pos_values=pos_values,
        timestamps=timestamps,
        negatives=negatives,
        user_features=users.features,
        item_features=items.features,
        user_ids=users.ids,
        item_ids=items.ids,
        user_feature_names=users.feature_names,
        item_feature_names=items.feature_names,
    )


def interactions_from_frame(
    events: pd.DataFrame,
    *,
    columns: EventColumns,
    user_features: pd.DataFrame | None = None,
    item_features: pd.DataFrame | None = None,
    users: Any = None,
    items: Any = None,
) -> Interactions:
    """Validate, parse and encode an events DataFrame (see ``Interactions.from_frame``)."""
    user_col, item_col = columns.user_col, columns.item_col
    columns.validate(events)
    user_encoding = None if user_features is None else FeatureEncoding.fit(user_features, name="user_features")
    item_encoding = None if item_features is None else FeatureEncoding.fit(item_features, name="item_features")
    user_space = None if users is None else fixed_space(users, "users")
    item_space = None if items is None else fixed_space(items, "items")
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
    if columns.weight_col is not None:  # the merged sums, named as the user wrote the column
        positive = parsed.positive
        check_merged_weights(
            user_codes[positive],
            item_codes[positive],
            parsed.weights[positive],
            len(item_space),
            f"weight_col {columns.weight_col!r}",
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


def assemble_events(
    parsed: ParsedEvents,
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
    negatives = None
    if negative.any():
        negatives = sp.csr_matrix(
            (parsed.weights[negative], (user_codes[negative], item_codes[negative])),
            shape=(len(user_ids), len(item_ids)),
            dtype=np.float32,
        )
    return build_interactions(
        IdAxis(user_ids, user_features, user_feature_names),
        IdAxis(item_ids, item_features, item_feature_names),
        user_codes[positive],
        item_codes[positive],
        pos_values=parsed.weights[positive],
        timestamps=None if parsed.timestamps is None else parsed.timestamps[positive],
        negatives=negatives,
    )
