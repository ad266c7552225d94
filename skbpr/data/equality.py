"""Equality of two ``Interactions`` containers: same positives and side information."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from skbpr.data.interactions import Interactions

__all__ = ["same_contents"]


def same_contents(first: Interactions, second: Interactions) -> bool:
    """Whether two containers hold the same positives and side information.

    Examples
    --------
    >>> from skbpr import Interactions
    >>> from skbpr.data.equality import same_contents
    >>> a = Interactions([0, 1], [1, 0], n_users=2, n_items=2)
    >>> same_contents(a, a[[0, 1]]), same_contents(a, a[[0]])
    (True, False)
    """
    if (first.n_users, first.n_items) != (second.n_users, second.n_items):
        return False
    for name in ("pos_users", "pos_items", "pos_values"):
        if not np.array_equal(getattr(first, name), getattr(second, name)):
            return False
    for name in ("timestamps", "user_ids", "item_ids", "user_feature_names", "item_feature_names"):
        mine, theirs = getattr(first, name), getattr(second, name)
        if (mine is None) != (theirs is None):
            return False
        if mine is not None and not np.array_equal(mine, theirs):
            return False
    for name in ("negatives", "user_features", "item_features"):
        mine, theirs = getattr(first, name), getattr(second, name)
        if (mine is None) != (theirs is None):
            return False
        if mine is not None and (mine.shape != theirs.shape or (mine != theirs).nnz):
            return False
    return True
