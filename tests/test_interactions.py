from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_consistent_length

from skbpr.interactions import FeatureEncoding, Interactions
from skbpr.preprocessing import InteractionsEncoder

POS = np.array(
    [
        [1, 0, 2, 0],
        [0, 3, 0, 1],
        [1, 1, 1, 0],
    ]
)
NEG = np.array(
    [
        [0, 1, 0, 1],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
    ]
)


@pytest.fixture
def inter() -> Interactions:
    return Interactions.from_matrices(
        sp.csr_matrix(POS),
        NEG,
        user_features=np.eye(3),
        item_ids=np.array(["a", "b", "c", "d"]),
    )


# --------------------------------------------------------------------- basics
def test_from_matrices_canonical_arrays(inter):
    assert inter.pos_users.tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert inter.pos_items.tolist() == [0, 2, 1, 3, 0, 1, 2]
    assert inter.pos_values.tolist() == [1, 2, 3, 1, 1, 1, 1]
    assert inter.pos_users.dtype == np.int64 and inter.pos_items.dtype == np.int64
    assert inter.pos_values.dtype == np.float32
    assert inter.timestamps is None
    assert (inter.n_users, inter.n_items) == (3, 4)
    assert inter.n_positives == 7 and len(inter) == 7
    assert inter.n_negatives == 4
    assert inter.shape == (7, 2)


def test_positives_csr_is_canonical_and_cached(inter):
    csr = inter.positives
    assert sp.isspmatrix_csr(csr) and csr.dtype == np.float32
    assert csr.shape == (3, 4)
    np.testing.assert_array_equal(csr.toarray(), POS)
    assert csr.has_sorted_indices
    assert inter.positives is csr
    assert sp.isspmatrix_csr(inter.negatives) and inter.negatives.dtype == np.float32


def test_sklearn_indexing_helpers(inter):
    assert _num_samples(inter) == 7
    check_consistent_length(inter, np.zeros(7))
    with pytest.raises(ValueError, match="inconsistent"):
        check_consistent_length(inter, np.zeros(6))
    sub = _safe_indexing(inter, np.array([6, 0, 3]))
    assert isinstance(sub, Interactions)
    assert sub.pos_users.tolist() == [0, 1, 2]
    assert sub.pos_items.tolist() == [0, 3, 2]
    assert _num_samples(sub) == 3
    mask = np.array([True, False, True, False, False, False, True])
    assert _safe_indexing(inter, mask).pos_items.tolist() == [0, 1, 2]
    assert _safe_indexing(inter, slice(2, 4)).pos_items.tolist() == [1, 3]
    assert _safe_indexing(inter, [1, 2]).pos_values.tolist() == [2, 3]
    assert len(_safe_indexing(inter, 5)) == 1


def test_indexing_keeps_side_information(inter):
    sub = inter[[1, 4]]
    assert (sub.n_users, sub.n_items) == (3, 4)
    assert sub.negatives is inter.negatives
    assert sub.user_features is inter.user_features
    assert sub.item_ids is inter.item_ids
    np.testing.assert_array_equal(sub.positives.toarray()[0], [0, 0, 2, 0])
    assert sub.positives.nnz == 2


def test_indexing_forms(inter):
    assert inter[-1].pos_items.tolist() == [2]
    assert inter[np.int64(3)].pos_items.tolist() == [3]
    assert inter[::-2].pos_items.tolist() == [0, 1, 0, 2]
    assert inter[[5, 1, 0]].pos_items.tolist() == [0, 2, 1]
    assert len(inter[[]]) == 0
    assert len(inter[np.zeros(7, dtype=bool)]) == 0
    assert inter[pd.Series([0, 1])].pos_items.tolist() == [0, 2]
    assert inter[np.array([2, 3]), ...].pos_items.tolist() == [1, 3]


def test_indexing_errors(inter):
    with pytest.raises(IndexError, match=r"out of range for 7 positives: \[7\]"):
        inter[[0, 7]]
    with pytest.raises(ValueError, match=r"out of range.*-8"):
        inter[-8]
    with pytest.raises(ValueError, match="boolean index must have length n_positives = 7"):
        inter[np.ones(6, dtype=bool)]
    with pytest.raises(ValueError, match=r"more than once: \[2\]"):
        inter[[2, 1, 2]]
    with pytest.raises(TypeError, match="dtype float64"):
        inter[np.array([0.5])]
    with pytest.raises(ValueError, match=r"1-D, got shape \(1, 2\)"):
        inter[np.array([[0, 1]])]
    with pytest.raises(TypeError, match="tuple index of length 2"):
        inter[0, 1]
    with pytest.raises(TypeError, match="scalar boolean"):
        inter[True]


def _random_container(seed: int) -> Interactions:
    rng = np.random.RandomState(seed)
    dense = (rng.random_sample((6, 7)) < 0.5) * rng.randint(1, 4, (6, 7))
    dense[0, 0] = 1
    c = Interactions.from_matrices(dense, user_features=rng.random_sample((6, 2)))
    return c.with_positives(c.pos_users, c.pos_items, c.pos_values, timestamps=rng.randint(0, 100, len(c)))


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.integers(0, 10**6), st.data())
def test_indexing_composes(seed, data):
    c = _random_container(seed % 97)
    n = len(c)
    a = np.array(data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)))
    a = a.astype(np.int64)
    b = np.array(
        data.draw(st.lists(st.integers(0, max(len(a) - 1, 0)), unique=True, max_size=len(a))) if len(a) else [],
        dtype=np.int64,
    )
    twice = c[a][b]
    once = c[np.sort(a)[b]]
    assert twice.equals(once)
    increasing = np.sort(a)
    assert c[increasing][b].equals(c[increasing[b]])
    # selection order is irrelevant: the content is the chosen set of positives
    assert c[a].equals(c[increasing])
    assert len(twice) == len(b)
    assert np.all(np.diff(twice.pos_users * c.n_items + twice.pos_items) > 0)
    mask = np.zeros(n, dtype=bool)
    mask[a] = True
    assert c[mask].equals(c[increasing])


# -------------------------------------------------------------- constructors
def test_constructor_merges_duplicates_and_sorts():
    c = Interactions(
        [2, 0, 2, 0],
        [1, 3, 1, 0],
        n_users=3,
        n_items=4,
        pos_values=[1.0, 2.0, 0.5, 1.0],
        timestamps=[10, 5, 30, 7],
    )
    assert c.pos_users.tolist() == [0, 0, 2]
    assert c.pos_items.tolist() == [0, 3, 1]
    assert c.pos_values.tolist() == [1.0, 2.0, 1.5]
    assert c.timestamps.tolist() == [7, 5, 30]
    assert c.timestamps.dtype == np.int64


def test_overlap_positives_win_with_warning():
    pos = np.array([[1, 1], [0, 1]])
    neg = np.array([[1, 0], [1, 1]])
    with pytest.warns(UserWarning, match="^2 \\(user, item\\) pairs are both positive"):
        c = Interactions.from_matrices(pos, neg)
    np.testing.assert_array_equal(c.negatives.toarray(), [[0, 0], [1, 0]])
    assert c.n_negatives == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions.from_matrices(pos, np.array([[0, 0], [1, 0]]))


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.integers(0, 10**6))
def test_overlap_rule_property(seed):
    rng = np.random.RandomState(seed)
    pos = (rng.random_sample((5, 6)) < 0.4) * 1.0
    pos[rng.randint(5), rng.randint(6)] = 1.0
    neg = (rng.random_sample((5, 6)) < 0.5) * 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = Interactions.from_matrices(pos, neg)
    expected = neg * (pos == 0)
    np.testing.assert_array_equal(c.negatives.toarray(), expected)
    n_overlap = int(np.sum((pos > 0) & (neg > 0)))
    messages = [str(w.message) for w in caught]
    assert messages == (
        [
            f"{n_overlap} (user, item) pairs are both positive and negative; "
            "positives win and these pairs were dropped from the negatives"
        ]
        if n_overlap
        else []
    )


def test_with_positives_and_to_frame(inter):
    with pytest.warns(UserWarning, match="^1 \\(user, item\\)"):
        other = inter.with_positives([2, 1, 2], [3, 0, 3], values=[1, 1, 2])
    assert other.pos_users.tolist() == [1, 2]
    assert other.pos_values.tolist() == [1, 3]
    assert other.n_negatives == inter.n_negatives - 1
    assert other.user_features is inter.user_features
    frame = inter[[0, 3]].to_frame()
    assert frame.columns.tolist() == ["user_id", "item_id", "weight"]
    assert frame["item_id"].tolist() == ["a", "d"]
    assert frame["user_id"].tolist() == [0, 1]
    assert "n_positives=7" in repr(inter)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"positives": np.ones(3)}, ValueError, r"positives must be 2-D, got shape \(3,\)"),
        ({"positives": np.zeros((2, 3))}, ValueError, "positives has no nonzero entry"),
        ({"positives": np.array([[1, np.nan]])}, ValueError, "positives has NaN or infinite"),
        ({"positives": np.array([[1, np.inf]])}, ValueError, "positives has NaN or infinite"),
        ({"positives": np.array([[1, -1]])}, ValueError, r"positives has negative values.*-1"),
        ({"positives": np.array([["a"]])}, TypeError, "positives must be numeric"),
        (
            {"negatives": np.zeros((3, 3))},
            ValueError,
            r"negatives must have the shape of positives \(3, 4\), got \(3, 3\)",
        ),
        ({"negatives": -np.ones((3, 4))}, ValueError, "negatives has negative values"),
        (
            {"user_features": np.ones((2, 2))},
            ValueError,
            r"user_features must have n_users = 3 rows, got shape \(2, 2\)",
        ),
        (
            {"item_features": sp.csr_matrix(np.ones((3, 2)))},
            ValueError,
            r"item_features must have n_items = 4 rows, got shape \(3, 2\)",
        ),
        (
            {"item_features": -np.ones((4, 1))},
            ValueError,
            "item_features has negative values",
        ),
        (
            {"user_features": np.full((3, 1), np.nan)},
            ValueError,
            "user_features has NaN",
        ),
        ({"user_ids": [1, 2]}, ValueError, r"user_ids must have length 3, got shape \(2,\)"),
        ({"item_ids": [1, 2, 2, 3]}, ValueError, r"item_ids must be unique.*\[2\]"),
        (
            {"user_features": np.ones((3, 2)), "user_feature_names": ["a"]},
            ValueError,
            r"user_feature_names must have one name per feature column \(2\)",
        ),
        (
            {"item_feature_names": ["a"]},
            ValueError,
            "item_feature_names is given but the matching feature matrix is None",
        ),
    ],
)
def test_from_matrices_validation(kwargs, error, match):
    kwargs = {"positives": POS, **kwargs}
    with pytest.raises(error, match=match):
        Interactions.from_matrices(kwargs.pop("positives"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pos_users": [0, 3]}, ValueError, r"pos_users must be indices in \[0, 3\).*\[3\]"),
        ({"pos_items": [0]}, ValueError, r"pos_items must be of length 2.*\(1,\)"),
        ({"pos_items": [0.0, 1.0]}, TypeError, "pos_items must be integer indices"),
        ({"pos_values": [1.0, 0.0]}, ValueError, r"pos_values must be strictly positive.*0\.0"),
        ({"timestamps": ["x", "y"]}, TypeError, "timestamps must be numeric or datetime64"),
        ({"timestamps": [1.0, np.nan]}, ValueError, "timestamps has NaN"),
        ({"n_users": 0}, ValueError, "n_users must be an integer >= 1, got 0"),
        ({"n_items": 2.0}, TypeError, "n_items must be an integer >= 1, got 2.0"),
        ({"pos_users": [], "pos_items": []}, ValueError, "pos_users is empty"),
    ],
)
def test_constructor_validation(kwargs, error, match):
    params = {"pos_users": [0, 1], "pos_items": [1, 2], "n_users": 3, "n_items": 4, **kwargs}
    with pytest.raises(error, match=match):
        Interactions(params.pop("pos_users"), params.pop("pos_items"), **params)


def test_with_positives_validation(inter):
    with pytest.raises(ValueError, match=r"items must be indices in \[0, 4\).*\[9\]"):
        inter.with_positives([0], [9])
    assert len(inter.with_positives([], [])) == 0


def test_equals(inter):
    assert inter.equals(inter[np.arange(7)])
    assert not inter.equals(inter[:6])
    assert not inter.equals("x")
    other = Interactions.from_matrices(POS, NEG, user_features=np.eye(3))
    assert not inter.equals(other)  # no item ids


# ------------------------------------------------------------------ from_frame
@pytest.fixture
def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u1", "u3"],
            "item_id": [10, 20, 10, 30, 20, 30, 30],
            "rating": [5.0, 2.0, 4.0, 3.5, 1.0, 4.5, 4.0],
            "clicked": [1, 0, 1, 1, 0, 1, 1],
            "ts": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-02",
                    "2024-01-03",
                    "2024-01-04",
                    "2024-01-05",
                    "2024-01-06",
                    "2024-01-07",
                ]
            ),
        }
    )


@pytest.fixture
def user_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30.0, 40.0, 50.0, 60.0],
            "country": pd.Categorical(["fr", "de", "fr", "it"]),
            "premium": [True, False, False, True],
        },
        index=["u1", "u2", "u3", "u4"],
    )


def test_from_frame_threshold_rule(events):
    c = Interactions.from_frame(events, rating_col="rating", threshold=4.0, timestamp_col="ts")
    # ratings >= 4: rows 0, 2, 5, 6 positive; rows 1, 3, 4 implicit negatives
    assert c.n_positives == 4 and c.n_negatives == 3
    assert c.user_ids.tolist() == ["u1", "u2", "u3"]
    assert c.item_ids.tolist() == [10, 20, 30]
    assert c.pos_users.tolist() == [0, 0, 1, 2]
    assert c.pos_items.tolist() == [0, 2, 0, 2]
    np.testing.assert_array_equal(c.negatives.toarray(), [[0, 1, 0], [0, 0, 1], [0, 1, 0]])
    expected = pd.to_datetime(["2024-01-01", "2024-01-06", "2024-01-03", "2024-01-07"])
    assert c.timestamps.tolist() == expected.as_unit("ns").asi8.tolist()


def test_from_frame_labels_and_all_positive(events):
    c = Interactions.from_frame(events, label_col="clicked")
    assert (c.n_positives, c.n_negatives) == (5, 2)
    everything = Interactions.from_frame(events)
    assert (everything.n_positives, everything.n_negatives) == (7, 0)
    assert everything.negatives is None


def test_from_frame_duplicates_summed_and_weights():
    frame = pd.DataFrame({"u": [1, 1, 2], "i": [5, 5, 5], "w": [1.0, 2.5, 3.0]})
    c = Interactions.from_frame(frame, user_col="u", item_col="i", weight_col="w")
    assert c.pos_values.tolist() == [3.5, 3.0]
    assert c.n_items == 1


def test_from_frame_features_and_id_space(events, user_table):
    items = pd.DataFrame({"genre": ["a", "b", "a", "c"]}, index=[10, 20, 30, 40])
    c = Interactions.from_frame(events, label_col="clicked", user_features=user_table, item_features=items)
    # u4 and item 40 only appear in the feature tables but are in the id space
    assert c.user_ids.tolist() == ["u1", "u2", "u3", "u4"]
    assert c.item_ids.tolist() == [10, 20, 30, 40]
    assert c.user_feature_names.tolist() == [
        "age",
        "country=de",
        "country=fr",
        "country=it",
        "premium=False",
        "premium=True",
    ]
    np.testing.assert_array_equal(
        c.user_features.toarray(),
        [
            [30, 0, 1, 0, 0, 1],
            [40, 1, 0, 0, 1, 0],
            [50, 0, 1, 0, 1, 0],
            [60, 0, 0, 1, 0, 1],
        ],
    )
    assert c.item_feature_names.tolist() == ["genre=a", "genre=b", "genre=c"]
    np.testing.assert_array_equal(c.item_features.toarray().argmax(1), [0, 1, 0, 2])


def test_from_frame_explicit_id_space(events):
    c = Interactions.from_frame(events, users=["u3", "u2", "u1", "u9"], items=[30, 20, 10])
    assert c.n_users == 4
    assert c.user_ids.tolist() == ["u3", "u2", "u1", "u9"]
    assert c.pos_users.tolist().count(2) == 3  # u1 has index 2
    with pytest.raises(ValueError, match=r"user_col 'user_id' has 2 rows.*\['u3'\]"):
        Interactions.from_frame(events, users=["u1", "u2"])
    with pytest.raises(ValueError, match=r"item_col 'item_id' has 3 rows.*\[30\]"):
        Interactions.from_frame(events, items=[10, 20])
    with pytest.raises(ValueError, match=r"users must be unique.*u1"):
        Interactions.from_frame(events, users=["u1", "u1", "u2", "u3"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"user_col": "user"}, ValueError, r"no column 'user' \(user_col\)"),
        ({"timestamp_col": "when"}, ValueError, r"no column 'when' \(timestamp_col\)"),
        (
            {"rating_col": "rating", "label_col": "clicked", "threshold": 1},
            ValueError,
            "give rating_col .* or label_col",
        ),
        ({"rating_col": "rating"}, ValueError, "threshold must be a finite number"),
        ({"threshold": 3}, ValueError, "threshold=3 is given but rating_col is None"),
        ({"rating_col": "user_id", "threshold": 3}, TypeError, "rating_col 'user_id' must be"),
        ({"label_col": "user_id"}, TypeError, "label_col 'user_id' must be boolean"),
        ({"weight_col": "rating", "label_col": "nan_col"}, ValueError, "'nan_col' has missing"),
        ({"weight_col": "neg"}, ValueError, r"weight_col 'neg' must be strictly positive"),
        ({"timestamp_col": "user_id"}, TypeError, "timestamp_col 'user_id' must be numeric"),
        ({"user_features": np.eye(3)}, TypeError, "user_features must be a pandas DataFrame"),
        ({"label_col": "none_positive"}, ValueError, "events has no positive row"),
    ],
)
def test_from_frame_validation(events, kwargs, error, match):
    events = events.assign(nan_col=[1, 0, np.nan, 1, 1, 1, 1], neg=-1.0, none_positive=0)
    with pytest.raises(error, match=match):
        Interactions.from_frame(events, **kwargs)


def test_from_frame_bad_inputs(events, user_table):
    with pytest.raises(TypeError, match="events must be a pandas DataFrame"):
        Interactions.from_frame(events.to_numpy())
    with pytest.raises(ValueError, match="user_col 'user_id' has 1 missing ids"):
        Interactions.from_frame(events.assign(user_id=[None, "a", "b", "c", "d", "e", "f"]))
    bad = user_table.assign(age=[1.0, -2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"user_features column 'age' has negative.*-2\.0"):
        Interactions.from_frame(events, user_features=bad)
    bad = user_table.assign(age=[1.0, np.nan, 3.0, 4.0])
    with pytest.raises(ValueError, match="user_features column 'age' has NaN"):
        Interactions.from_frame(events, user_features=bad)
    bad = user_table.assign(when=pd.Timestamp("2020-01-01"))
    with pytest.raises(TypeError, match="user_features column 'when' has unsupported dtype"):
        Interactions.from_frame(events, user_features=bad)
    dup = pd.concat([user_table, user_table.iloc[:1]])
    with pytest.raises(ValueError, match=r"user_features index must be unique.*u1"):
        Interactions.from_frame(events, user_features=dup)
    mixed = user_table.set_axis([1, 2, 3, 4])
    with pytest.raises(TypeError, match="raw ids of user_col 'user_id' cannot be sorted"):
        Interactions.from_frame(events, user_features=mixed)


def test_feature_encoding_reuse(user_table):
    encoding = FeatureEncoding.fit(user_table, name="user_features")
    assert encoding.n_features == 6
    new = pd.DataFrame(
        {"age": [1.0], "country": ["es"], "premium": [True]},
        index=["u7"],
    )
    matrix = encoding.transform(new, ["u0", "u7"])
    # unknown id -> zero row; unseen category -> no one-hot entry
    np.testing.assert_array_equal(matrix.toarray(), [[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1]])
    with pytest.raises(ValueError, match=r"lacks the fitted columns \['premium'\]"):
        encoding.transform(new.drop(columns="premium"), ["u7"])


# ---------------------------------------------------------- InteractionsEncoder
def test_encoder_fit_transform_and_unknown_rows(events, user_table):
    encoder = InteractionsEncoder(rating_col="rating", threshold=4.0, timestamp_col="ts", user_features=user_table)
    train = encoder.fit_transform(events.iloc[:5])
    assert encoder.user_ids_.tolist() == ["u1", "u2", "u3", "u4"]
    assert encoder.item_ids_.tolist() == [10, 20, 30]
    assert (encoder.n_users_, encoder.n_items_) == (4, 3)
    assert train.equals(clone(encoder).fit(events.iloc[:5]).transform(events.iloc[:5]))
    assert train.n_positives == 2 and train.n_negatives == 3
    later = pd.DataFrame(
        {
            "user_id": ["u4", "u5", "u1", "u2"],
            "item_id": [10, 10, 40, 20],
            "rating": [5.0, 5.0, 5.0, 1.0],
            "ts": pd.to_datetime(["2024-02-01"] * 4),
        }
    )
    with pytest.warns(UserWarning, match="^2 of 4 event rows have a user or item unknown"):
        test = encoder.transform(later)
    # u4 is known from the feature table; u5 and item 40 are unknown
    assert test.n_users == 4 and test.n_items == 3
    assert test.pos_users.tolist() == [3] and test.pos_items.tolist() == [0]
    assert test.n_negatives == 1
    assert test.user_features is not None and test.user_features.shape == (4, 6)
    np.testing.assert_array_equal(test.user_features.toarray(), train.user_features.toarray())


def test_encoder_clone_and_errors(events, user_table):
    encoder = InteractionsEncoder(label_col="clicked", user_features=user_table)
    copy = clone(encoder)
    assert copy.get_params()["label_col"] == "clicked"
    pd.testing.assert_frame_equal(copy.user_features, user_table)
    with pytest.raises(NotFittedError):
        copy.transform(events)
    encoder.fit(events)
    with pytest.raises(ValueError, match="no positive row with a known user and item"):
        encoder.transform(events.assign(clicked=0))
    with pytest.raises(ValueError, match=r"no column 'clicked' \(label_col\)"):
        encoder.transform(events.drop(columns="clicked"))
    with pytest.raises(ValueError, match="threshold=2 is given but rating_col is None"):
        InteractionsEncoder(threshold=2).fit(events)
