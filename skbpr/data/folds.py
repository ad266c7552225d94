"""Which cross-validation split a training set is: provenance carried by the data itself.

skbpr's splitters (:mod:`skbpr.model_selection`) record on the container
they split a digest of each split's train positions
(:func:`record_fold`, into ``Interactions.cv_folds``). scikit-learn's
searches and ``cross_validate`` select each training set with those
positions, and the selection looks its positions up
(:func:`fold_of`): the container a fold fit receives says which split it
is (``Interactions.fold``), in worker processes too (the record travels with
the pickled container), without anyone reading scikit-learn's internals. A
fit on a container that carries folds is a fit on the whole of what was
split: a search's final refit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["fold_of", "positions_digest", "record_fold"]


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


def record_fold(data: Any, train_positions: np.ndarray, split: int, n_splits: int) -> None:
    """Record on ``data`` that ``train_positions`` are the train part of split ``split`` of ``n_splits``.

    Parameters
    ----------
    data : object
        The container split; only an object with a ``cv_folds`` dict
        (:class:`skbpr.Interactions`) keeps the record.
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
    >>> record_fold(data, np.arange(10, 30), 1, 2)
    >>> fold_of(data, np.arange(10, 30)), fold_of(data, np.arange(5))
    ((1, 2), None)
    """
    folds = getattr(data, "cv_folds", None)
    if isinstance(folds, dict):
        folds[positions_digest(train_positions)] = (int(split), int(n_splits))


def fold_of(data: Any, positions: np.ndarray) -> tuple[int, int] | None:
    """``(split, n_splits)`` when ``positions`` are the train positions of a split recorded on ``data``.

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
    folds = getattr(data, "cv_folds", None)
    if not folds:
        return None
    return folds.get(positions_digest(positions))
