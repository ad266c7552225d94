"""Positions of the positives that an index key selects (the sample axis of ``Interactions``)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from skbpr.utils.validation import examples

__all__ = ["PositionError", "positions_of"]


class PositionError(IndexError, ValueError):
    """An index outside the positives (both an IndexError and a ValueError)."""


def positions_of(key: Any, n_positives: int) -> np.ndarray:
    """Sorted, distinct positions among ``n_positives`` that ``key`` selects.

    Examples
    --------
    >>> from skbpr.data.positions import positions_of
    >>> positions_of([3, -1, 0], 5)
    array([0, 3, 4])
    >>> positions_of(slice(None, None, 2), 5)
    array([0, 2, 4])
    """
    n = n_positives
    if isinstance(key, tuple):
        if len(key) == 2 and key[1] is Ellipsis:
            key = key[0]
        elif len(key) == 1:
            key = key[0]
        else:
            raise TypeError(f"Interactions is indexed along its positives only; got a tuple index of length {len(key)}")
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
        raise PositionError(f"index out of range for {n} positives: {examples(array[bad])}")
    positions = np.sort(np.where(array < 0, array + n, array).astype(np.int64))
    repeated = positions[1:] == positions[:-1]
    if repeated.any():
        raise ValueError(f"index selects some positives more than once: {examples(positions[1:][repeated])}")
    return positions
