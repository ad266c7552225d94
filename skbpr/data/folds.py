"""Which cross-validation split a training set is: provenance kept beside the data, never written on it.

skbpr's splitters (:mod:`skbpr.model_selection`) note, for the container
they split, a digest of each split's train positions (:func:`record_fold`).
The note is kept by this process beside the container, not in it: ``split``
leaves its input as it was (scikit-learn's contract), and the container's
attributes and its equality to others do not change. scikit-learn's
searches and ``cross_validate`` select each training set with those
positions, and the selection looks its positions up (:func:`fold_of`): the
container a fold fit receives says which split it is
(``Interactions.fold``), without anyone reading scikit-learn's internals.
A pickled or copied container takes the notes with it
(``Interactions.__getstate__``), so that worker processes know the splits
too.

A search's final refit fits the container it split: an estimator a search
made (a clone of a clone) fitting a split container whole is that refit
(:func:`was_split`, :func:`skbpr.models.fitting.search_context`); a plain
fit of the same container is a plain fit.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

import numpy as np

__all__ = ["fold_of", "positions_digest", "record_fold", "split_records", "was_split"]

CARRIED = "_split_records"  # the key under which a pickled or copied container carries the notes

_NOTES: dict[int, dict[str, tuple[int, int]]] = {}  # id of a split container -> its notes
_OWNERS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def positions_digest(positions: np.ndarray) -> str:
    """A digest of sorted positions: equal for the same selection, whatever the integer dtype.

    Parameters
    ----------
    positions : ndarray of int
        Selected positions, sorted.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.data.folds import positions_digest
    >>> positions_digest(np.array([0, 2], dtype=np.int32)) == positions_digest(np.array([0, 2]))
    True
    """
    array = np.ascontiguousarray(positions, dtype=np.int64)
    return hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()


def _forget(key: int) -> None:
    with _LOCK:
        if key not in _OWNERS:
            _NOTES.pop(key, None)


def record_fold(data: Any, train_positions: np.ndarray, split: int, n_splits: int) -> None:
    """Note that ``train_positions`` are the train part of split ``split`` of ``n_splits`` of ``data``.

    ``data`` itself is not modified: the note is kept by this process for as
    long as ``data`` lives (and travels with its pickles and copies).

    Parameters
    ----------
    data : object
        The container split; only an :class:`skbpr.Interactions` (an object
        that can be referenced weakly and has a ``fold`` attribute) is noted.
    train_positions : ndarray of int
        The sorted train positions of the split.
    split, n_splits : int
        Which split of how many.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.data.folds import fold_of, record_fold
    >>> data = make_interactions(20, 10, 30, random_state=0)
    >>> before = dict(vars(data))
    >>> record_fold(data, np.arange(10, 30), 1, 2)
    >>> fold_of(data, np.arange(10, 30)), fold_of(data, np.arange(5)), vars(data) == before
    ((1, 2), None, True)
    """
    if not hasattr(data, "fold"):
        return
    key = id(data)
    with _LOCK:
        try:
            if _OWNERS.get(key) is not data:
                _OWNERS[key] = data
                _NOTES[key] = {}
                weakref.finalize(data, _forget, key)
        except TypeError:  # cannot be referenced weakly: no notes
            return
        _NOTES[key][positions_digest(train_positions)] = (int(split), int(n_splits))


def split_records(data: Any) -> dict[str, tuple[int, int]]:
    """The splits noted for ``data``: digest of the train positions -> ``(split, n_splits)`` (a copy).

    Those noted in this process, and those a pickled or copied container
    brought with it.
    """
    carried = getattr(data, "__dict__", {}).get(CARRIED) or {}
    with _LOCK:
        noted = _NOTES.get(id(data)) if _OWNERS.get(id(data)) is data else None
        return {**carried, **(noted or {})}


def fold_of(data: Any, positions: np.ndarray) -> tuple[int, int] | None:
    """``(split, n_splits)`` when ``positions`` are the train positions of a split noted for ``data``.

    Parameters
    ----------
    data : object
        The container being selected from.
    positions : ndarray of int
        The sorted selected positions.

    Returns
    -------
    tuple of (int, int) or None

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.data.folds import fold_of
    >>> fold_of(np.zeros(3), np.arange(2)) is None
    True
    """
    records = split_records(data)
    if not records:
        return None
    return records.get(positions_digest(positions))


def was_split(data: Any) -> bool:
    """Whether a splitter of skbpr split ``data`` (in this process, or before it was pickled or copied).

    Examples
    --------
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import PerUserKFold
    >>> from skbpr.data.folds import was_split
    >>> data = make_interactions(30, 10, 60, random_state=0)
    >>> _ = list(PerUserKFold(2, random_state=0).split(data))
    >>> was_split(data), was_split(make_interactions(30, 10, 60, random_state=0))
    (True, False)
    """
    return bool(split_records(data))
