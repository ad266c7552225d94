"""Per-user cross-validation splitters over positive interactions.

The splitters follow scikit-learn's splitter API (``split`` yields
``(train_index, test_index)`` integer arrays, ``get_n_splits``) and can be
given as ``cv=`` to ``GridSearchCV`` or ``cross_validate``. The samples are
the positive interactions:

* ``X`` an :class:`~skbpr.interactions.Interactions`: the user of each
  positive is read from ``X.pos_users`` (``groups`` is ignored);
* any other array-like or DataFrame (for instance the events DataFrame fed
  to a Pipeline starting with :class:`~skbpr.preprocessing.InteractionsEncoder`):
  ``groups`` gives the user of each row, e.g.
  ``search.fit(events, groups=events["user_id"])``.

With a DataFrame every row is a sample: rows that are implicit negatives are
dealt like positives (in the test part they become held-out negatives), so
give only positive rows, or an ``Interactions``, to split strictly over
positives.

Each user's positives are split separately, so every user that is tested
also keeps positives in train. Users with too few positives stay in train.

Implicit negatives: indexing an ``Interactions`` keeps its ``negatives``
matrix whole, so the train part keeps every user's implicit negatives and
the test part carries the same negatives matrix; metrics that use held-out
implicit negatives read ``test.negatives``.

All randomness comes from ``random_state`` (None, an int or a
``numpy.random.RandomState``): with an int, ``split`` yields the same splits
on every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from skbpr.data.folds import record_fold
from skbpr.evaluation.holdout import train_test_split
from skbpr.evaluation.user_samples import (
    n_test_per_user,
    rank_within_user,
    require_test,
    sample_timestamps,
    user_codes,
)
from skbpr.utils.validation import check_bool, check_number

__all__ = [
    "LeaveKOut",
    "PerUserKFold",
    "PerUserShuffleSplit",
    "PerUserTimeSplit",
    "train_test_split",
]


class _PerUserSplitter(BaseCrossValidator):
    """Common ``split``: validate, then yield sorted train / test positions."""

    # request ``groups`` under metadata routing: it carries the users
    __metadata_request__split = {"groups": True}

    def _check_params(self) -> None:
        raise NotImplementedError

    def _test_masks(self, X: Any, users: np.ndarray) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate ``(train_index, test_index)`` over the positives of ``X``.

        Parameters
        ----------
        X : Interactions, array-like or DataFrame
            Samples are positives (rows of ``X``).
        y : None
            Ignored; checked for length only.
        groups : array-like of shape (n_samples,), optional
            User of each row; required unless ``X`` is an ``Interactions``.

        Yields
        ------
        train_index, test_index : ndarray of int64
            Sorted positions of the train and test positives. An
            ``Interactions`` records each split's train positions
            (``X.cv_folds``), so that the container they select knows its
            split (``Interactions.fold``, see :mod:`skbpr.data.folds`).
        """
        self._check_params()
        users = user_codes(X, y, groups)
        masks = self._test_masks(X, users)
        return self._iterate(X, users.shape[0], masks, self.get_n_splits())

    @staticmethod
    def _iterate(X: Any, n: int, masks: Iterator[np.ndarray], n_splits: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        positions = np.arange(n, dtype=np.int64)
        for split, mask in enumerate(masks):
            train = positions[~mask]
            record_fold(X, train, split, n_splits)  # so that X[train] knows its split
            yield train, positions[mask]

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits (``X``, ``y`` and ``groups`` are ignored)."""
        self._check_params()
        return int(getattr(self, "n_splits", 1))


# --------------------------------------------------------------------------
# splitters
# --------------------------------------------------------------------------
class PerUserKFold(_PerUserSplitter):
    """K-fold over each user's positives.

    Each user's positives are dealt round-robin to the ``n_splits`` folds
    (after a random permutation within the user when ``shuffle``), continuing
    the deal from one user to the next so that fold sizes differ by at most
    one. Every positive of a user with at least 2 positives is in exactly one
    test fold; users with fewer than 2 positives stay in train in every fold.

    A user with at least 2 positives never has all of them in one test fold,
    so it is in train in every fold. A user with 2..n_splits-1 positives
    cannot be in the test part of every fold: it is tested in as many folds
    as it has positives (one positive each).

    Indexing an ``Interactions`` keeps its ``negatives`` whole: both parts
    carry every user's implicit negatives.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    shuffle : bool, default=True
        Permute each user's positives before dealing them.
    random_state : int, RandomState or None, default=None
        Seed of the permutation; only with ``shuffle=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import PerUserKFold
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> for train, test in PerUserKFold(n_splits=3, random_state=0).split(data):
    ...     tested = np.unique(data.pos_users[test])
    ...     print(len(train), len(test), np.isin(tested, data.pos_users[train]).all())
    527 264 True
    528 263 True
    528 263 True
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, random_state: Any = None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def _check_params(self) -> None:
        check_number(self.n_splits, "n_splits", integer=True, low=2)
        check_bool(self.shuffle, "shuffle")
        if not self.shuffle and self.random_state is not None:
            raise ValueError(
                f"random_state={self.random_state!r} has no effect with shuffle=False; "
                "leave it None or set shuffle=True"
            )

    def _test_masks(self, X: Any, users: np.ndarray) -> Iterator[np.ndarray]:
        n = users.shape[0]
        if self.shuffle:
            key = check_random_state(self.random_state).random_sample(n)
            _, count, order = rank_within_user(users, key)
        else:
            _, count, order = rank_within_user(users)
        eligible = count >= 2
        n_eligible = int(eligible.sum())
        if n_eligible < self.n_splits:
            raise ValueError(
                f"n_splits={self.n_splits} is larger than the number of positives of "
                f"users with at least 2 positives ({n_eligible})"
            )
        eligible_sorted = eligible[order]
        fold = np.full(n, -1, dtype=np.int64)
        fold[order] = np.where(eligible_sorted, (np.cumsum(eligible_sorted) - 1) % self.n_splits, -1)
        return (fold == k for k in range(self.n_splits))


class PerUserShuffleSplit(_PerUserSplitter):
    """Random per-user train/test splits.

    In each split, every user with ``n >= 2`` positives has
    ``round(test_size * n)`` of them, clipped to ``[1, n - 1]``, drawn at
    random into the test part; users with one positive stay in train.
    Indexing an ``Interactions`` keeps its ``negatives`` whole in both parts.

    Parameters
    ----------
    n_splits : int, default=1
        Number of independent splits.
    test_size : float, default=0.2
        Fraction of each user's positives in test, in (0, 1).
    random_state : int, RandomState or None, default=None
        Seed of the draws.

    Examples
    --------
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import PerUserShuffleSplit
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> cv = PerUserShuffleSplit(n_splits=2, test_size=0.25, random_state=0)
    >>> [(len(train), len(test)) for train, test in cv.split(data)]
    [(578, 213), (578, 213)]
    """

    def __init__(self, n_splits: int = 1, *, test_size: float = 0.2, random_state: Any = None):
        self.n_splits = n_splits
        self.test_size = test_size
        self.random_state = random_state

    def _check_params(self) -> None:
        check_number(self.n_splits, "n_splits", integer=True, low=1)
        check_number(self.test_size, "test_size", low=0, high=1, low_open=True, high_open=True)

    def _test_masks(self, X: Any, users: np.ndarray) -> Iterator[np.ndarray]:
        count = np.bincount(users)[users]
        require_test(count >= 2, "no user has at least 2 positives; nothing can be tested")
        rng = check_random_state(self.random_state)
        n_test = n_test_per_user(count, self.test_size)

        def masks() -> Iterator[np.ndarray]:
            for _ in range(self.n_splits):
                rank, _, _ = rank_within_user(users, rng.random_sample(users.shape[0]))
                yield rank < n_test

        return masks()


class LeaveKOut(_PerUserSplitter):
    """Leave ``k`` random positives out per user.

    In each split, every user with more than ``k`` positives has ``k`` of
    them drawn at random into the test part; the other users stay in train.
    Indexing an ``Interactions`` keeps its ``negatives`` whole in both parts.

    Parameters
    ----------
    k : int, default=1
        Number of test positives per eligible user.
    n_splits : int, default=1
        Number of independent splits.
    random_state : int, RandomState or None, default=None
        Seed of the draws.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import LeaveKOut
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> train, test = next(LeaveKOut(k=1, random_state=0).split(data))
    >>> len(train), len(test)
    (693, 98)
    >>> int(np.bincount(data.pos_users[test]).max())  # one test positive per user
    1
    """

    def __init__(self, k: int = 1, *, n_splits: int = 1, random_state: Any = None):
        self.k = k
        self.n_splits = n_splits
        self.random_state = random_state

    def _check_params(self) -> None:
        check_number(self.k, "k", integer=True, low=1)
        check_number(self.n_splits, "n_splits", integer=True, low=1)

    def _test_masks(self, X: Any, users: np.ndarray) -> Iterator[np.ndarray]:
        count = np.bincount(users)[users]
        eligible = count > self.k
        require_test(eligible, f"no user has more than k={self.k} positives")
        rng = check_random_state(self.random_state)

        def masks() -> Iterator[np.ndarray]:
            for _ in range(self.n_splits):
                rank, _, _ = rank_within_user(users, rng.random_sample(users.shape[0]))
                yield eligible & (rank < self.k)

        return masks()


class PerUserTimeSplit(_PerUserSplitter):
    """Hold out each user's latest positives.

    The positives of each user are ordered by timestamp (ties broken by
    position: a later position counts as later) and the last ones go to test:
    ``k`` of them for users with more than ``k`` positives when ``k`` is
    given (``test_size`` is then ignored), otherwise ``round(test_size * n)``
    clipped to ``[1, n - 1]`` for users with ``n >= 2`` positives. The other
    users stay in train. One split.

    Timestamps come from ``X.timestamps`` for an ``Interactions``, or from
    the column ``timestamp_col`` of a DataFrame ``X``.
    Indexing an ``Interactions`` keeps its ``negatives`` whole in both parts.

    Parameters
    ----------
    test_size : float, default=0.2
        Fraction of each user's positives in test, in (0, 1).
    k : int, optional
        Number of latest positives per user in test; overrides ``test_size``.
    timestamp_col : str, optional
        Timestamp column when ``X`` is a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr.model_selection import PerUserTimeSplit
    >>> events = pd.DataFrame(
    ...     {
    ...         "user_id": ["a", "a", "a", "b", "b", "c"],
    ...         "item_id": ["x", "y", "z", "x", "z", "y"],
    ...         "time": [3, 1, 2, 5, 4, 1],
    ...     }
    ... )
    >>> splitter = PerUserTimeSplit(k=1, timestamp_col="time")
    >>> train, test = next(splitter.split(events, groups=events["user_id"]))
    >>> train.tolist(), test.tolist()
    ([1, 2, 4, 5], [0, 3])
    >>> events.iloc[test]
      user_id item_id  time
    0       a       x     3
    3       b       x     5
    """

    n_splits = 1

    def __init__(self, test_size: float = 0.2, *, k: int | None = None, timestamp_col: Any = None):
        self.test_size = test_size
        self.k = k
        self.timestamp_col = timestamp_col

    def _check_params(self) -> None:
        if self.k is None:
            check_number(self.test_size, "test_size", low=0, high=1, low_open=True, high_open=True)
        else:
            check_number(self.k, "k", integer=True, low=1)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate the one ``(train_index, test_index)`` split of ``X``.

        See :meth:`PerUserKFold.split`; ``X`` must carry timestamps.
        """
        self._check_params()
        users = user_codes(X, y, groups)
        timestamps = sample_timestamps(X, self.timestamp_col)
        masks = iter([self._latest(users, timestamps)])
        return self._iterate(X, users.shape[0], masks, 1)

    def _latest(self, users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        n = users.shape[0]
        rank, count, _ = rank_within_user(users, np.arange(n), timestamps)
        from_end = count - 1 - rank
        if self.k is not None:
            eligible = count > self.k
            require_test(eligible, f"no user has more than k={self.k} positives")
            return eligible & (from_end < self.k)
        require_test(count >= 2, "no user has at least 2 positives; nothing can be tested")
        return from_end < n_test_per_user(count, self.test_size)
