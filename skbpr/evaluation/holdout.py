"""Single per-user train/test split of positive interactions."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state

from skbpr.data.interactions import Interactions
from skbpr.evaluation.user_samples import n_test_per_user, rank_within_user, require_test, user_codes
from skbpr.utils.validation import check_bool, check_number

__all__ = ["train_test_split"]


def train_test_split(
    X: Any,
    *,
    test_size: float = 0.2,
    random_state: Any = None,
    shuffle: bool = True,
    groups: Any = None,
) -> tuple[Any, Any]:
    """Split positives into train and test per user.

    Every user with ``n >= 2`` positives has ``round(test_size * n)`` of
    them, clipped to ``[1, n - 1]``, in test: drawn at random when
    ``shuffle``, else its last ones in the order of ``X``. Users with one
    positive stay in train.

    Parameters
    ----------
    X : Interactions, array-like or DataFrame
        Samples are positives.
    test_size : float, default=0.2
        Fraction of each user's positives in test, in (0, 1).
    random_state : int, RandomState or None, default=None
        Seed of the draws; only with ``shuffle=True``.
    shuffle : bool, default=True
        Draw the test positives at random.
    groups : array-like of shape (n_samples,), optional
        User of each row; required unless ``X`` is an ``Interactions``.

    Returns
    -------
    train, test
        ``X`` indexed by the train and test positions (``Interactions``
        carry their whole ``negatives`` in both parts).

    Examples
    --------
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import train_test_split
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> train, test = train_test_split(data, test_size=0.2, random_state=0)
    >>> train.n_positives + test.n_positives == data.n_positives
    True
    >>> train.n_users == test.n_users == data.n_users
    True
    """
    check_number(test_size, "test_size", low=0, high=1, low_open=True, high_open=True)
    check_bool(shuffle, "shuffle")
    if not shuffle and random_state is not None:
        raise ValueError(
            f"random_state={random_state!r} has no effect with shuffle=False; leave it None or set shuffle=True"
        )
    users = user_codes(X, None, groups)
    count = np.bincount(users)[users]
    require_test(count >= 2, "no user has at least 2 positives; nothing can be tested")
    n = users.shape[0]
    key = check_random_state(random_state).random_sample(n) if shuffle else np.arange(n)
    rank, _, _ = rank_within_user(users, key)
    test_mask = (count - 1 - rank) < n_test_per_user(count, test_size)
    train_index = np.flatnonzero(~test_mask)
    test_index = np.flatnonzero(test_mask)
    if isinstance(X, Interactions):
        return X[train_index], X[test_index]
    return _safe_indexing(X, train_index), _safe_indexing(X, test_index)
