from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import config_context
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from skbpr.interactions import Interactions
from skbpr.model_selection import (
    LeaveKOut,
    PerUserKFold,
    PerUserShuffleSplit,
    PerUserTimeSplit,
    train_test_split,
)
from skbpr.preprocessing import InteractionsEncoder

# positives per user: u0: 6, u1: 1, u2: 2, u3: 4, u4: 3
COUNTS = np.array([6, 1, 2, 4, 3])


def _container(counts=COUNTS, n_items: int = 8, timestamps: bool = True) -> Interactions:
    users = np.repeat(np.arange(len(counts)), counts)
    items = np.concatenate([np.arange(c) for c in counts])
    rng = np.random.RandomState(0)
    negatives = np.zeros((len(counts), n_items))
    negatives[:, n_items - 1] = 1
    return Interactions(
        users,
        items,
        n_users=len(counts),
        n_items=n_items,
        timestamps=rng.permutation(len(users)) if timestamps else None,
        negatives=negatives,
    )


def _check_partition(n: int, splits: list) -> None:
    for train, test in splits:
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        assert np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(np.union1d(train, test), np.arange(n))


def _per_user(users: np.ndarray, index: np.ndarray, n_users: int) -> np.ndarray:
    return np.bincount(users[index], minlength=n_users)


# ---------------------------------------------------------------- PerUserKFold
def test_kfold_partitions_positives():
    X = _container()
    cv = PerUserKFold(3, random_state=0)
    splits = list(cv.split(X))
    assert cv.get_n_splits() == len(splits) == 3
    _check_partition(len(X), splits)
    tested = np.concatenate([test for _, test in splits])
    # every positive of users with >= 2 positives is tested exactly once
    eligible = np.flatnonzero(np.bincount(X.pos_users)[X.pos_users] >= 2)
    np.testing.assert_array_equal(np.sort(tested), eligible)
    sizes = [len(test) for _, test in splits]
    assert sum(sizes) == 15 and max(sizes) - min(sizes) <= 1
    for train, test in splits:
        n_train = _per_user(X.pos_users, train, 5)
        n_test = _per_user(X.pos_users, test, 5)
        assert n_test[1] == 0 and n_train[1] == 1  # single positive stays in train
        assert np.all(n_train[COUNTS >= 2] >= 1)  # never all positives in test
        assert np.all(n_test[COUNTS >= 3] >= 1)  # users with >= n_splits always tested
        # within a user the fold sizes differ by at most one
        assert np.all(n_test <= np.ceil(COUNTS / 3))
    # the user with 2 positives is tested in exactly 2 of the 3 folds
    assert sum(_per_user(X.pos_users, test, 5)[2] for _, test in splits) == 2


def test_kfold_determinism_and_seeds():
    X = _container()
    first = list(PerUserKFold(3, random_state=1).split(X))
    again = list(PerUserKFold(3, random_state=1).split(X))
    other = list(PerUserKFold(3, random_state=2).split(X))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))
    plain = list(PerUserKFold(3, shuffle=False).split(X))
    _check_partition(len(X), plain)
    # without shuffling the positives are dealt round-robin in order
    np.testing.assert_array_equal(plain[0][1], [0, 3, 7, 10, 13])


def test_kfold_validation():
    X = _container()
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2, got 1"):
        PerUserKFold(1).split(X)
    with pytest.raises(TypeError, match="n_splits must be an integer >= 2, got 2.5"):
        PerUserKFold(2.5).get_n_splits()
    with pytest.raises(ValueError, match="random_state=0 has no effect with shuffle=False"):
        PerUserKFold(shuffle=False, random_state=0).split(X)
    with pytest.raises(ValueError, match=r"n_splits=20 is larger .* \(15\)"):
        PerUserKFold(20).split(X)
    with pytest.raises(ValueError, match="groups is required when X is not an Interactions"):
        PerUserKFold().split(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\).*\(3,\)"):
        PerUserKFold(2).split(np.zeros((4, 2)), groups=[0, 0, 1])
    with pytest.raises(ValueError, match="groups has 1 missing values"):
        PerUserKFold(2).split(np.zeros(4), groups=[0, 0, None, 1])


def test_kfold_groups_with_dataframe():
    events = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 3 + ["c"], "item_id": [1, 2, 3, 4, 1, 2, 3, 9]})
    splits = list(PerUserKFold(2, random_state=0).split(events, groups=events["user_id"]))
    _check_partition(len(events), splits)
    for train, test in splits:
        assert set(events["user_id"].iloc[test]) == {"a", "b"}
        assert set(events["user_id"].iloc[train]) == {"a", "b", "c"}
        assert (events["user_id"].iloc[test] == "a").sum() == 2


@settings(max_examples=50, derandomize=True, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=60),
    st.integers(2, 5),
    st.integers(0, 2**31 - 1),
)
def test_kfold_partition_property(users, n_splits, seed):
    users = np.array(users)
    counts = np.bincount(users)
    eligible = counts[users] >= 2
    cv = PerUserKFold(n_splits, random_state=seed)
    if eligible.sum() < n_splits:
        with pytest.raises(ValueError, match="is larger than"):
            cv.split(np.zeros(len(users)), groups=users)
        return
    splits = list(cv.split(np.zeros(len(users)), groups=users))
    _check_partition(len(users), splits)
    times_tested = np.zeros(len(users), dtype=int)
    for train, test in splits:
        times_tested[test] += 1
        n_train = np.bincount(users[train], minlength=len(counts))
        assert np.all(n_train[counts >= 1] >= 1)
    np.testing.assert_array_equal(times_tested, eligible.astype(int))


# ------------------------------------------------------------ shuffle / leave-k
def test_shuffle_split_counts():
    X = _container()
    cv = PerUserShuffleSplit(4, test_size=0.5, random_state=0)
    splits = list(cv.split(X))
    assert len(splits) == cv.get_n_splits() == 4
    _check_partition(len(X), splits)
    for _, test in splits:
        # round(0.5 * n) clipped to [1, n - 1]: 6 -> 3, 1 -> 0, 2 -> 1, 4 -> 2, 3 -> 2
        np.testing.assert_array_equal(_per_user(X.pos_users, test, 5), [3, 0, 1, 2, 2])
    assert len({tuple(test) for _, test in splits}) > 1
    small = list(PerUserShuffleSplit(test_size=0.01, random_state=0).split(X))[0][1]
    np.testing.assert_array_equal(_per_user(X.pos_users, small, 5), [1, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"test_size must be a finite number in \(0, 1\), got 1.5"):
        PerUserShuffleSplit(test_size=1.5).split(X)
    with pytest.raises(ValueError, match="no user has at least 2 positives"):
        PerUserShuffleSplit().split(_container(np.array([1, 1])))


@settings(max_examples=50, derandomize=True, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=2, max_size=50),
    st.floats(0.05, 0.95),
    st.integers(0, 2**31 - 1),
)
def test_shuffle_split_property(users, test_size, seed):
    users = np.array(users)
    counts = np.bincount(users)
    if counts.max() < 2:
        return
    ((train, test),) = PerUserShuffleSplit(test_size=test_size, random_state=seed).split(users, groups=users)
    _check_partition(len(users), [(train, test)])
    n_test = np.bincount(users[test], minlength=len(counts))
    expected = np.where(counts >= 2, np.clip(np.floor(test_size * counts + 0.5), 1, counts - 1), 0)
    np.testing.assert_array_equal(n_test, expected)


def test_leave_k_out_counts():
    X = _container()
    cv = LeaveKOut(2, n_splits=3, random_state=0)
    splits = list(cv.split(X))
    assert len(splits) == cv.get_n_splits() == 3
    _check_partition(len(X), splits)
    for _, test in splits:
        # only users with more than 2 positives lose exactly 2
        np.testing.assert_array_equal(_per_user(X.pos_users, test, 5), [2, 0, 0, 2, 2])
    assert (
        list(LeaveKOut(2, random_state=5).split(X))[0][1].tolist()
        == list(LeaveKOut(2, random_state=5).split(X))[0][1].tolist()
    )
    with pytest.raises(ValueError, match="no user has more than k=6 positives"):
        LeaveKOut(6).split(X)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        LeaveKOut(0).split(X)


# -------------------------------------------------------------------- temporal
def test_time_split_latest_in_test():
    X = _container()
    ((train, test),) = PerUserTimeSplit(test_size=0.5).split(X)
    _check_partition(len(X), [(train, test)])
    for user in range(5):
        mine = X.pos_users == user
        test_times = X.timestamps[np.intersect1d(test, np.flatnonzero(mine))]
        train_times = X.timestamps[np.intersect1d(train, np.flatnonzero(mine))]
        if test_times.size:
            assert test_times.min() > train_times.max()
    np.testing.assert_array_equal(_per_user(X.pos_users, test, 5), [3, 0, 1, 2, 2])
    ((_, test_k),) = PerUserTimeSplit(k=3).split(X)
    np.testing.assert_array_equal(_per_user(X.pos_users, test_k, 5), [3, 0, 0, 3, 0])
    assert PerUserTimeSplit().get_n_splits() == 1


def test_time_split_ties_and_dataframe():
    events = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b"],
            "when": pd.to_datetime(["2024-03-01", "2024-01-01", "2024-03-01", "2024-01-02", "2024-01-01"]),
        }
    )
    cv = PerUserTimeSplit(k=1, timestamp_col="when")
    ((train, test),) = cv.split(events, groups=events["user"])
    # a: rows 0 and 2 tie; the later position wins. b: row 3 is the latest
    assert test.tolist() == [2, 3] and train.tolist() == [0, 1, 4]
    with pytest.raises(ValueError, match="timestamp_col is None"):
        PerUserTimeSplit().split(events, groups=events["user"])
    with pytest.raises(ValueError, match=r"X has no column 'ts' \(timestamp_col\)"):
        PerUserTimeSplit(timestamp_col="ts").split(events, groups=events["user"])
    with pytest.raises(ValueError, match="X.timestamps is None"):
        PerUserTimeSplit().split(_container(timestamps=False))
    with pytest.raises(ValueError, match="timestamps are required"):
        PerUserTimeSplit().split(np.zeros(5), groups=[0, 0, 1, 1, 1])


# ------------------------------------------------------------ train_test_split
def test_train_test_split_interactions():
    X = _container()
    train, test = train_test_split(X, test_size=0.5, random_state=0)
    assert isinstance(train, Interactions) and isinstance(test, Interactions)
    assert len(train) + len(test) == len(X)
    np.testing.assert_array_equal(np.bincount(test.pos_users, minlength=5), [3, 0, 1, 2, 2])
    # both parts carry the whole implicit negatives
    assert train.negatives is X.negatives and test.negatives is X.negatives
    merged = (train.positives + test.positives).toarray()
    np.testing.assert_array_equal(merged, X.positives.toarray())
    again, _ = train_test_split(X, test_size=0.5, random_state=0)
    assert again.equals(train)
    _, ordered = train_test_split(X, test_size=0.5, shuffle=False)
    # without shuffling each user's last positives (in X's order) are held out
    assert ordered.pos_items[ordered.pos_users == 0].tolist() == [3, 4, 5]


def test_train_test_split_dataframe():
    events = pd.DataFrame({"u": [1, 1, 1, 2, 2, 3], "i": range(6)})
    train, test = train_test_split(events, test_size=0.4, random_state=3, groups=events["u"])
    assert isinstance(train, pd.DataFrame)
    assert sorted(train.index.tolist() + test.index.tolist()) == list(range(6))
    assert test["u"].value_counts().to_dict() == {1: 1, 2: 1}
    with pytest.raises(ValueError, match="groups is required"):
        train_test_split(events)
    with pytest.raises(TypeError, match="test_size must be a finite number"):
        train_test_split(events, test_size="big", groups=events["u"])


# ------------------------------------------------------- scikit-learn tooling
class _Popularity(BaseEstimator):
    """Tiny estimator: scores a test set by the train popularity of its items."""

    def __init__(self, smoothing: float = 1.0):
        self.smoothing = smoothing

    def fit(self, X, y=None):
        assert isinstance(X, Interactions)
        self.counts_ = np.bincount(X.pos_items, minlength=X.n_items) + self.smoothing
        self.n_train_ = len(X)
        return self

    def score(self, X, y=None, sample_weight=None):
        return float(np.mean(self.counts_[X.pos_items]))


def test_cross_validate_with_interactions():
    X = _container()
    cv = PerUserKFold(3, random_state=0)
    result = cross_validate(_Popularity(), X, cv=cv, return_estimator=True)
    assert len(result["test_score"]) == 3
    splits = list(cv.split(X))
    for estimator, (train, _) in zip(result["estimator"], splits, strict=True):
        assert estimator.n_train_ == len(train)
    search = GridSearchCV(_Popularity(), {"smoothing": [0.0, 5.0]}, cv=LeaveKOut(1))
    search.fit(X)
    assert search.best_params_ == {"smoothing": 5.0}


def test_grid_search_pipeline_with_groups():
    events = pd.DataFrame({"user_id": np.repeat(["a", "b", "c", "d"], 5), "item_id": np.tile(np.arange(5), 4)})
    pipe = make_pipeline(InteractionsEncoder(), _Popularity())
    search = GridSearchCV(
        pipe,
        {"_popularity__smoothing": [0.0, 1.0]},
        cv=PerUserKFold(2, random_state=0),
        error_score="raise",
    )
    search.fit(events, groups=events["user_id"])
    assert set(search.cv_results_["params"][0]) == {"_popularity__smoothing"}
    with config_context(enable_metadata_routing=True):
        result = cross_validate(
            pipe,
            events,
            cv=PerUserKFold(2, random_state=0),
            params={"groups": events["user_id"]},
            error_score="raise",
        )
    assert len(result["test_score"]) == 2


def test_repr_and_get_n_splits():
    assert repr(PerUserKFold(4, random_state=1)) == ("PerUserKFold(n_splits=4, random_state=1, shuffle=True)")
    assert LeaveKOut(n_splits=3).get_n_splits() == 3
    assert PerUserShuffleSplit(2).get_n_splits(None, None, None) == 2
