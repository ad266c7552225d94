"""HybridBPR: scikit-learn contract, serving, cold start, training behaviour."""

from __future__ import annotations

import inspect
import io
import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skbpr.callbacks import Callback
from skbpr.estimator import HybridBPR
from skbpr.interactions import Interactions
from skbpr.metrics import precision_at_k

# one intra-op thread: tiny batches gain nothing from more, and it keeps runs stable on busy machines
COMMON = {"n_components": 4, "epochs": 3, "batch_size": 64, "random_state": 0, "device": "cpu", "n_threads": 1}


def _softplus_loss(pos, neg):
    return torch.nn.functional.softplus(neg - pos[:, None]).mean()


def _random_positives(n_users: int = 30, n_items: int = 25, density: float = 0.25, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # every user has a positive
    return sp.csr_matrix(dense.astype(np.float32))


def _planted(n_users=80, n_items=60, rank=3, per_user=12, test_frac=0.3, seed=0):
    """Positives = each user's top items under a random low-rank model plus item effects; split by a mask."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)) + 0.5 * rng.normal(size=n_items)
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    np.put_along_axis(dense, np.argsort(-scores, axis=1)[:, :per_user], 1.0, axis=1)
    test_mask = (rng.random(dense.shape) < test_frac) & (dense > 0)
    return sp.csr_matrix(dense * ~test_mask), sp.csr_matrix(dense * test_mask)


def _precision(ids: np.ndarray, test: sp.csr_matrix) -> float:
    """Mean hits / k over users with a test positive."""
    truth = test.toarray() > 0
    users = np.flatnonzero(truth.any(axis=1))
    k = ids.shape[1]
    return float(np.mean([truth[u, ids[u][ids[u] >= 0]].sum() / k for u in users]))


def _popularity_top_k(train: sp.csr_matrix, k: int) -> np.ndarray:
    counts = np.asarray(train.sum(axis=0)).ravel()
    order = np.lexsort((np.arange(counts.size), -counts))
    seen = train.toarray() > 0
    return np.array([[i for i in order if not seen[u, i]][:k] for u in range(train.shape[0])])


def _features(n_rows: int, n_features: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_features)) < 0.4).astype(np.float32)
    dense[np.arange(n_rows), rng.integers(0, n_features, n_rows)] = 1.0  # no empty row
    return sp.csr_matrix(dense)


def _weights(est: HybridBPR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return est.user_embeddings_, est.item_embeddings_, est.item_biases_


def _assert_same_weights(a: HybridBPR, b: HybridBPR) -> None:
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def small_train() -> sp.csr_matrix:
    return _random_positives()


@pytest.fixture(scope="module")
def fitted(small_train) -> HybridBPR:
    return HybridBPR(**COMMON).fit(small_train)


# ------------------------------------------------------------ sklearn API
def test_get_params_returns_constructor_args_unchanged():
    def cb(est, epoch, logs):
        return None

    kwargs = {
        "n_components": 7,
        "loss": _softplus_loss,
        "negatives": "mixed",
        "implicit_ratio": 0.25,
        "weighting": np.sqrt,
        "n_negatives": 3,
        "max_sampled": 5,
        "shared_negatives": 0,
        "shared_sampling": "uniform",
        "sigma": 2.0,
        "margin": 0.5,
        "user_features_mode": "features",
        "item_features_mode": "identity",
        "optimizer": "adam",
        "learning_rate": 0.03,
        "alpha": 0.0,
        "init_std": 0.2,
        "epochs": 4,
        "batch_size": 16,
        "initial_accumulator": 0.5,
        "unobserved_weight": 0.3,
        "reg_exponent": 0.5,
        "eval_metric": "auc",
        "eval_every": 2,
        "patience": 3,
        "validation_fraction": 0.2,
        "random_state": np.random.RandomState(5),
        "device": "cpu",
        "n_threads": 1,
        "backend": "torch",
        "deterministic": False,
        "callbacks": [cb],
        "verbose": True,
        "warm_start": True,
    }
    params = HybridBPR(**kwargs).get_params()
    assert set(params) == set(kwargs)
    for name, value in kwargs.items():
        assert params[name] is value, name


def test_default_params_match_signature():
    signature = inspect.signature(HybridBPR.__init__)
    defaults = {k: p.default for k, p in signature.parameters.items() if k != "self"}
    assert HybridBPR().get_params() == defaults


def test_set_params_and_clone(fitted):
    est = HybridBPR(n_components=3)
    assert est.set_params(n_components=5, loss="warp") is est
    assert est.n_components == 5 and est.loss == "warp"
    with pytest.raises(ValueError):
        est.set_params(not_a_param=1)
    copy = clone(fitted)
    assert not hasattr(copy, "model_") and not hasattr(copy, "history_")
    assert copy.get_params() == fitted.get_params()
    assert hasattr(fitted, "model_")


def test_fit_returns_self(small_train):
    est = HybridBPR(**COMMON)
    assert est.fit(small_train) is est
    assert (est.n_users_, est.n_items_) == small_train.shape
    assert len(est.history_) == COMMON["epochs"]
    assert [h["epoch"] for h in est.history_] == [1, 2, 3]
    assert est.user_embeddings_.shape == (30, 4)
    assert est.item_embeddings_.shape == (25, 4) and est.item_biases_.shape == (25,)
    assert est.negatives_ == "uniform" and est.device_ == torch.device("cpu")


def test_identity_mode_equals_plain_mf(small_train):
    uf, itf = _features(30, 6, seed=1), _features(25, 5, seed=2)
    plain = HybridBPR(**COMMON, loss="warp").fit(small_train)
    ident = HybridBPR(**COMMON, loss="warp", user_features_mode="identity", item_features_mode="identity").fit(
        small_train, user_features=uf, item_features=itf
    )
    _assert_same_weights(plain, ident)
    both = HybridBPR(**COMMON, loss="warp").fit(small_train, user_features=uf, item_features=itf)
    assert both.user_embeddings_.shape == (30 + 6, 4) and both.item_embeddings_.shape == (25 + 5, 4)


def test_determinism(small_train):
    uf = _features(30, 6, seed=1)
    kw = {**COMMON, "loss": "bpr", "n_negatives": 2}
    a = HybridBPR(**kw).fit(small_train, user_features=uf)
    b = HybridBPR(**kw).fit(small_train, user_features=uf)
    _assert_same_weights(a, b)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    c = HybridBPR(**{**kw, "random_state": 1}).fit(small_train, user_features=uf)
    assert not np.array_equal(a.user_embeddings_, c.user_embeddings_)
    assert not np.array_equal(a.item_embeddings_, c.item_embeddings_)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(fitted, dump):
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(fitted))
    else:
        buffer = io.BytesIO()
        joblib.dump(fitted, buffer)
        buffer.seek(0)
        restored = joblib.load(buffer)
    pairs = np.array([[0, 0], [3, 7], [29, 24], [11, 5]])
    np.testing.assert_array_equal(restored.predict(pairs), fitted.predict(pairs))
    users = np.arange(30)
    for x, y in zip(restored.recommend(users, k=5), fitted.recommend(users, k=5), strict=True):
        np.testing.assert_array_equal(x, y)
    _assert_same_weights(restored, fitted)


# ------------------------------------------------------------------ predict
def test_predict_matches_representations(fitted):
    pairs = np.array([[0, 0], [3, 7], [29, 24], [3, 7]])
    scores = fitted.predict(pairs)
    assert scores.shape == (4,)
    u = fitted.user_representations()
    v, b = fitted.item_representations()
    expected = (u[pairs[:, 0]] * v[pairs[:, 1]]).sum(1) + b[pairs[:, 1]]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert fitted.predict(np.empty((0, 2), dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize(
    "pairs,error",
    [
        (np.array([0, 1]), ValueError),
        (np.array([[0, 1, 2]]), ValueError),
        (np.array([[30, 0]]), ValueError),
        (np.array([[0, 25]]), ValueError),
        (np.array([[-1, 0]]), ValueError),
        (np.array([[0.5, 1.0]]), TypeError),
    ],
)
def test_predict_index_errors(fitted, pairs, error):
    with pytest.raises(error):
        fitted.predict(pairs)


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HybridBPR().predict(np.array([[0, 0]]))
    with pytest.raises(NotFittedError):
        HybridBPR().recommend([0])


# ---------------------------------------------------------------- recommend
def test_recommend_excludes_seen_and_is_sorted(fitted, small_train):
    users = np.arange(30)
    ids, scores = fitted.recommend(users, k=8)
    assert ids.shape == (30, 8) and scores.shape == (30, 8)
    seen = small_train.toarray() > 0
    for u in users:
        assert not seen[u, ids[u]].any()
        assert len(set(ids[u].tolist())) == 8
    assert np.all(np.diff(scores, axis=1) <= 0)
    # the scores are the model's, and nothing unseen scores higher than the k-th
    np.testing.assert_allclose(
        scores, fitted.predict(np.c_[np.repeat(users, 8), ids.ravel()]).reshape(30, 8), rtol=1e-5, atol=1e-6
    )
    full = fitted.predict(np.array([[u, i] for u in users for i in range(25)])).reshape(30, 25)
    full[seen] = -np.inf
    np.testing.assert_allclose(np.sort(full, axis=1)[:, ::-1][:, :8], scores, rtol=1e-5, atol=1e-6)


def test_recommend_without_exclusion_is_full_ranking(fitted):
    ids, scores = fitted.recommend([2, 5], k=25, exclude_seen=False)
    full = fitted.predict(np.array([[u, i] for u in (2, 5) for i in range(25)])).reshape(2, 25)
    for row in range(2):
        assert sorted(ids[row].tolist()) == list(range(25))
        np.testing.assert_allclose(full[row, ids[row]], scores[row], rtol=1e-5, atol=1e-6)


def test_recommend_items_subset(fitted, small_train):
    subset = np.array([20, 3, 7, 11, 0, 24])
    ids, scores = fitted.recommend(np.arange(30), k=3, items=subset)
    seen = small_train.toarray() > 0
    for u in range(30):
        valid = ids[u][ids[u] >= 0]
        assert set(valid.tolist()) <= set(subset.tolist())
        assert not seen[u, valid].any()
        candidates = [i for i in subset if not seen[u, i]]
        assert valid.size == min(3, len(candidates))
        best = sorted(candidates, key=lambda i: -fitted.predict(np.array([[u, i]]))[0])[: valid.size]
        assert set(valid.tolist()) == set(best)


def test_recommend_pads_with_minus_one():
    dense = np.zeros((3, 10), dtype=np.float32)
    dense[0, :8] = 1  # two candidates left
    dense[1, [0, 5]] = 1
    dense[2, 9] = 1
    est = HybridBPR(**COMMON).fit(dense)
    ids, scores = est.recommend([0, 1], k=5)
    assert set(ids[0, :2].tolist()) == {8, 9}
    assert ids[0, 2:].tolist() == [-1, -1, -1]
    assert np.all(np.isneginf(scores[0, 2:])) and np.all(np.isfinite(scores[0, :2]))
    assert np.all(ids[1] >= 0)
    ids, _ = est.recommend([0], k=3, items=[1, 9, 2])
    assert ids.tolist() == [[9, -1, -1]]


@pytest.mark.parametrize("k", [0, -1, 26, 2.0, True])
def test_recommend_k_out_of_range(fitted, k):
    with pytest.raises(ValueError, match="k must be"):
        fitted.recommend([0], k=k)


def test_recommend_argument_errors(fitted):
    with pytest.raises(ValueError, match="k must be"):
        fitted.recommend([0], k=4, items=[1, 2, 3])
    with pytest.raises(ValueError):
        fitted.recommend([30])
    with pytest.raises(ValueError, match="exactly one"):
        fitted.recommend()
    with pytest.raises(ValueError):
        fitted.recommend([0], items=[25])
    # no user features were given to fit: new users cannot be scored
    with pytest.raises(ValueError, match="user_features"):
        fitted.recommend(user_features=np.ones((1, 3)))


# -------------------------------------------------------------- cold start
@pytest.fixture(scope="module")
def featured(small_train):
    uf, itf = _features(30, 6, seed=1), _features(25, 5, seed=2)
    est = HybridBPR(**{**COMMON, "epochs": 5}, item_features_mode="features", user_features_mode="both")
    return est.fit(small_train, user_features=uf, item_features=itf), uf, itf


def test_cold_start_item_equals_known_item_with_same_row(featured):
    est, _, itf = featured
    vecs, biases = est.item_representations()
    assert vecs.shape == (25, 4)
    new_vecs, new_biases = est.item_representations(itf[[3, 17]])
    np.testing.assert_allclose(new_vecs, vecs[[3, 17]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new_biases, biases[[3, 17]], rtol=1e-6, atol=1e-7)
    # and from the feature embeddings directly
    np.testing.assert_allclose(vecs, itf.toarray() @ est.item_embeddings_, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="5 columns"):
        est.item_representations(np.ones((1, 4)))


def test_recommend_for_new_users(featured):
    est, uf, _ = featured
    new = np.zeros((2, 6), dtype=np.float32)
    new[0, [0, 2]] = 1.0
    new[1, 5] = 2.0
    ids, scores = est.recommend(user_features=new, k=25)
    u = est.user_representations(new)
    # "both" mode: a new user's vector comes from the feature embeddings only
    np.testing.assert_allclose(u, new @ est.user_embeddings_[:6], rtol=1e-5, atol=1e-6)
    v, b = est.item_representations()
    expected = u @ v.T + b
    for row in range(2):
        assert sorted(ids[row].tolist()) == list(range(25))  # nothing excluded for new users
        np.testing.assert_allclose(scores[row], expected[row, ids[row]], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores[row]) <= 0)


def test_recommend_new_item_catalogue(featured):
    est, _, itf = featured
    catalogue = itf[[4, 4, 10]]
    ids, scores = est.recommend([0, 1], k=3, item_features=catalogue)
    v, b = est.item_representations()
    u = est.user_representations()[[0, 1]]
    expected = u @ v[[4, 4, 10]].T + b[[4, 4, 10]]
    for row in range(2):
        assert sorted(ids[row].tolist()) == [0, 1, 2]
        np.testing.assert_allclose(scores[row], expected[row, ids[row]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": np.arange(30)},
        {"users": np.arange(30), "exclude_seen": False},
        {"users": np.arange(30), "items": [3, 1, 7, 20, 11, 0]},
    ],
    ids=["seen-excluded", "full", "candidates"],
)
def test_chunked_recommend_equals_one_chunk(featured, kwargs):
    est, uf, _ = featured
    k = 5
    whole = est.recommend(k=k, batch_size=10_000, **kwargs)
    for batch_size in (1, 7, 29):
        ids, scores = est.recommend(k=k, batch_size=batch_size, **kwargs)
        np.testing.assert_array_equal(ids, whole[0])
        # the matrix products of other shapes may round the last bit differently
        np.testing.assert_allclose(scores, whole[1], rtol=1e-6, atol=1e-7)
    cold = est.recommend(user_features=uf[:11], k=k, batch_size=10_000)
    np.testing.assert_array_equal(est.recommend(user_features=uf[:11], k=k, batch_size=4)[0], cold[0])
    # and one chunk is the brute-force ranking of the scores
    if "items" not in kwargs:
        scores_all = est.user_representations() @ est.item_representations()[0].T + est.item_representations()[1]
        if kwargs.get("exclude_seen", True):
            seen = est.train_positives_.toarray() > 0
            scores_all[seen] = -np.inf
        expected = np.take_along_axis(scores_all, whole[0], axis=1)
        np.testing.assert_allclose(whole[1], expected, rtol=1e-5, atol=1e-6)
        assert np.all(np.sort(scores_all, axis=1)[:, ::-1][:, :k] - whole[1] < 1e-5)


def test_similar_items_finds_planted_duplicate(small_train):
    n_items = 25
    itf = np.zeros((n_items, n_items - 1), dtype=np.float32)
    itf[np.arange(n_items - 1), np.arange(n_items - 1)] = 1.0
    itf[n_items - 1] = itf[6]  # items 6 and 24 share one feature row
    est = HybridBPR(**COMMON, item_features_mode="features").fit(small_train, item_features=itf)
    ids, sims = est.similar_items([6, 24], k=3)
    assert ids[:, 0].tolist() == [24, 6]
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert np.all(sims[:, 1] < 0.999)
    all_ids, all_sims = est.similar_items(np.arange(n_items), k=n_items - 1)
    for item in range(n_items):
        assert item not in all_ids[item]
        assert sorted(all_ids[item].tolist()) == [i for i in range(n_items) if i != item]
    assert np.all(np.diff(all_sims, axis=1) <= 0)
    with pytest.raises(ValueError, match="k must be"):
        est.similar_items([0], k=n_items)


# ----------------------------------------------------- warm start, partial_fit
def test_warm_start_continues_training(small_train):
    est = HybridBPR(**{**COMMON, "epochs": 2}, warm_start=True)
    est.fit(small_train)
    before = _weights(est)
    est.fit(small_train)
    assert [h["epoch"] for h in est.history_] == [1, 2, 3, 4]
    assert not np.array_equal(before[0], est.user_embeddings_)
    # two fits of two epochs are four epochs in one go (same seeds, optimiser state kept)
    once = HybridBPR(**{**COMMON, "epochs": 4}).fit(small_train)
    _assert_same_weights(est, once)
    # without warm_start a refit starts over
    cold = HybridBPR(**{**COMMON, "epochs": 2}).fit(small_train)
    cold.fit(small_train)
    assert len(cold.history_) == 2
    np.testing.assert_array_equal(cold.user_embeddings_, before[0])


def test_warm_start_with_other_shape_starts_over(small_train):
    est = HybridBPR(**{**COMMON, "epochs": 2}, warm_start=True).fit(small_train)
    with pytest.warns(UserWarning, match=r"n_items went from 25 to 20 \(fewer items\).*re-initialised"):
        est.fit(_random_positives(n_items=20))
    assert len(est.history_) == 2 and est.n_items_ == 20


def test_partial_fit_runs_one_epoch(small_train):
    est = HybridBPR(**{**COMMON, "epochs": 7})
    assert est.partial_fit(small_train) is est
    assert len(est.history_) == 1
    first = est.user_embeddings_
    est.partial_fit(small_train)
    assert len(est.history_) == 2 and est.history_[-1]["epoch"] == 2
    assert not np.array_equal(first, est.user_embeddings_)
    _assert_same_weights(est, HybridBPR(**{**COMMON, "epochs": 2}).fit(small_train))


# ------------------------------------------------------------------ quality
@pytest.fixture(scope="module")
def planted():
    return _planted()


@pytest.mark.parametrize("loss", ["bpr", "logistic", "hinge", "warp", _softplus_loss], ids=str)
def test_every_loss_beats_popularity(planted, loss):
    train, test = planted
    popularity = _precision(_popularity_top_k(train, 10), test)
    est = HybridBPR(**{**COMMON, "n_components": 8, "epochs": 30, "batch_size": 128}, loss=loss).fit(train)
    ids, _ = est.recommend(np.arange(train.shape[0]), k=10)
    model = _precision(ids, test)
    assert model > popularity + 0.08, (model, popularity)
    assert np.isfinite([h["loss"] for h in est.history_]).all()
    # the library's metric agrees with the hand count (no ties among model scores)
    assert precision_at_k(est, Interactions.from_matrices(test)) == pytest.approx(model)


# ----------------------------------------------------- implicit negatives
def _rneg(train: sp.csr_matrix, items: list[int]) -> sp.csr_matrix:
    dense = np.zeros(train.shape, dtype=np.float32)
    dense[:, items] = 1.0
    dense[train.toarray() > 0] = 0.0
    return sp.csr_matrix(dense)


@pytest.mark.parametrize(
    "mode,with_rneg,resolved",
    [
        ("implicit", True, "implicit"),
        ("mixed", True, "mixed"),
        ("auto", True, "mixed"),
        ("auto", False, "uniform"),
        ("uniform", True, "uniform"),
    ],
)
def test_negative_modes_with_rneg(small_train, mode, with_rneg, resolved):
    rneg = _rneg(small_train, [0, 1, 2]) if with_rneg else None
    est = HybridBPR(**COMMON, negatives=mode).fit(small_train, rneg)
    assert est.negatives_ == resolved
    assert np.isfinite([h["loss"] for h in est.history_]).all()


def test_implicit_negatives_push_items_down(planted):
    train, _ = planted
    pushed = [0, 1, 2, 3]
    rneg = _rneg(train, pushed)
    kw = {**COMMON, "n_components": 8, "epochs": 10}
    implicit = HybridBPR(**kw, negatives="implicit").fit(train, rneg)
    uniform = HybridBPR(**kw, negatives="uniform").fit(train, rneg)
    others = [i for i in range(train.shape[1]) if i not in pushed]

    def gap(est):
        b = est.item_biases_
        return b[pushed].mean() - b[others].mean()

    assert gap(implicit) < gap(uniform) - 0.1


def test_rneg_overlapping_positives_warns(small_train):
    rneg = np.ones(small_train.shape, dtype=np.float32)
    with pytest.warns(UserWarning, match="positives win"):
        HybridBPR(**COMMON, negatives="implicit").fit(small_train, rneg)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "name,value",
    [
        ("n_components", 0),
        ("loss", "nope"),
        ("optimizer", "nope"),
        ("negatives", "nope"),
        ("epochs", 0),
        ("batch_size", 0),
        ("learning_rate", 0),
        ("max_sampled", 0),
        ("device", "tpu"),
        ("user_features_mode", "x"),
        ("item_features_mode", "x"),
        ("implicit_ratio", 1.5),
        ("weighting", "sqrt"),
        ("n_negatives", 0),
        ("n_components", 2.5),
        ("epochs", True),
    ],
)
def test_invalid_params_raise_before_fitting(small_train, name, value):
    with pytest.raises(ValueError, match=name):
        HybridBPR(**{**COMMON, name: value}).fit(small_train)
    unfitted = HybridBPR(**{**COMMON, name: value})
    with pytest.raises(ValueError, match=name):
        unfitted.fit(small_train)
    assert not hasattr(unfitted, "model_")
    est = HybridBPR(**COMMON).fit(small_train)
    before, history = _weights(est), list(est.history_)
    est.set_params(**{name: value})
    with pytest.raises(ValueError, match=name):
        est.fit(small_train)
    for x, y in zip(before, _weights(est), strict=True):
        np.testing.assert_array_equal(x, y)
    assert est.history_ == history


def test_diverging_training_raises_and_keeps_finite_weights(small_train):
    est = HybridBPR(**{**COMMON, "epochs": 5}, optimizer="sgd", learning_rate=1e25, loss="hinge", init_std=1.0)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        est.fit(small_train)
    for w in _weights(est):
        assert np.isfinite(w).all()


def test_users_with_every_item_positive_warn():
    dense = np.zeros((3, 4), dtype=np.float32)
    dense[0] = 1.0
    dense[1, 1] = dense[2, 3] = 1.0
    with pytest.warns(UserWarning, match="every item"):
        HybridBPR(**COMMON).fit(dense)


# ----------------------------------------------------------------- callbacks
class _Recorder(Callback):
    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.begin: dict | None = None
        self.epochs: list[tuple[int, dict]] = []
        self.end: dict | None = None

    def on_fit_begin(self, estimator, logs):
        self.begin = dict(logs)

    def on_epoch_end(self, estimator, epoch, logs):
        self.epochs.append((epoch, dict(logs)))
        return self.stop_at is not None and epoch >= self.stop_at

    def on_fit_end(self, estimator, logs):
        self.end = dict(logs)


def test_callbacks_receive_epoch_logs(small_train):
    seen = []

    def fn(est, epoch, logs):
        seen.append((epoch, logs["loss"], est.history_[-1]["loss"]))

    est = HybridBPR(**COMMON, callbacks=[fn, _Recorder()]).fit(small_train)
    recorder = est.callbacks_[1]  # fit calls copies: the parameter is never modified
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert [loss for _, loss, _ in seen] == [h["loss"] for h in est.history_]
    assert all(a == b for _, a, b in seen)
    assert recorder.begin["epochs"] == 3 and recorder.begin["n_users"] == 30
    assert recorder.begin["n_positives"] == small_train.nnz
    assert [e for e, _ in recorder.epochs] == [1, 2, 3]
    assert recorder.end == {"stopped_early": False, "epochs_run": 3}


def test_callback_returning_true_stops(small_train):
    est = HybridBPR(**{**COMMON, "epochs": 10}, callbacks=[_Recorder(stop_at=2)]).fit(small_train)
    recorder = est.callbacks_[0]
    assert len(est.history_) == 2 and recorder.end["epochs_run"] == 2
    calls = []
    HybridBPR(**{**COMMON, "epochs": 10}, callbacks=[lambda e, ep, logs: calls.append(ep) or ep == 4]).fit(small_train)
    assert calls == [1, 2, 3, 4]


def test_callbacks_see_validation_metrics(small_train):
    test = Interactions.from_matrices(_random_positives(seed=3))
    est = HybridBPR(**{**COMMON, "eval_every": 2, "epochs": 4}, callbacks=[_Recorder()])
    recorder = est.fit(small_train, eval_set=test).callbacks_[0]
    assert "val_ndcg@10" not in recorder.epochs[0][1]
    assert 0.0 <= recorder.epochs[1][1]["val_ndcg@10"] <= 1.0
    assert "val_auc" in recorder.epochs[3][1]


# ------------------------------------------------------------ early stopping
def test_early_stopping_restores_best_epoch(planted):
    train, test = planted
    kw = {**COMMON, "n_components": 32, "alpha": 0.0, "learning_rate": 0.3, "epochs": 40}
    est = HybridBPR(**kw, patience=3).fit(train, eval_set=Interactions.from_matrices(test))
    n_run = len(est.history_)
    assert n_run < 40, "training should have stopped early"
    best = est.best_epoch_
    values = [h["val_ndcg@10"] for h in est.history_]
    assert values[best - 1] == max(values)
    assert n_run == best + 3
    exact = HybridBPR(**{**kw, "epochs": best}).fit(train)
    _assert_same_weights(est, exact)
    pairs = np.array([[u, i] for u in range(0, 80, 7) for i in range(60)])
    np.testing.assert_array_equal(est.predict(pairs), exact.predict(pairs))
    # the weights of the last epoch run are not the ones kept
    last = HybridBPR(**{**kw, "epochs": n_run}).fit(train)
    assert not np.array_equal(last.user_embeddings_, est.user_embeddings_)


def test_validation_fraction_early_stopping(planted):
    train, _ = planted
    est = HybridBPR(**{**COMMON, "epochs": 6}, patience=2, validation_fraction=0.2).fit(train)
    assert 1 <= est.best_epoch_ <= len(est.history_)
    assert "val_ndcg@10" in est.history_[0]
    # training used only part of the positives
    assert est.train_positives_.nnz < train.nnz


# -------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_fit_matches_cpu_and_pickles_to_cpu(small_train, monkeypatch):
    kw = {**COMMON, "epochs": 2, "optimizer": "sgd", "learning_rate": 0.05}
    cpu = HybridBPR(**kw).fit(small_train)
    gpu = HybridBPR(**{**kw, "device": "cuda"}).fit(small_train)
    assert gpu.device_.type == "cuda"
    pairs = np.array([[u, i] for u in range(30) for i in range(25)])
    gpu_scores = gpu.predict(pairs)
    assert np.isfinite(gpu_scores).all()
    # same seed on another device draws other negatives: the scores agree in scale, not bitwise
    assert np.corrcoef(gpu_scores, cpu.predict(pairs))[0, 1] > 0.5
    ids, _ = gpu.recommend(np.arange(30), k=5)
    assert not (small_train.toarray() > 0)[np.arange(30)[:, None], ids].any()
    blob = pickle.dumps(gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(blob)
    assert restored.device_ == torch.device("cpu")
    assert restored.model_.user_weight.device.type == "cpu"
    np.testing.assert_allclose(restored.predict(pairs), gpu_scores, rtol=1e-5, atol=1e-6)


def test_verbose_shows_a_progress_bar_with_the_loss(capsys):
    from skbpr.datasets import make_interactions

    data = make_interactions(60, 40, 400, random_state=0)
    HybridBPR(4, epochs=3, batch_size=128, random_state=0, verbose=True).fit(data)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err
    HybridBPR(4, epochs=2, batch_size=128, random_state=0).fit(data)
    assert capsys.readouterr().err == ""


def test_predict_scores_the_pairs_of_an_interactions_container():
    from skbpr.datasets import make_interactions

    data = make_interactions(40, 40, 300, random_state=1)
    model = HybridBPR(8, epochs=2, random_state=0, n_threads=1, device="cpu").fit(data)
    part = data[10:20]
    expected = model.predict(np.c_[part.pos_users, part.pos_items])
    np.testing.assert_array_equal(model.predict(part), expected)
    other = make_interactions(41, 40, 300, random_state=1)
    with pytest.raises(ValueError, match=r"X has 41 users x 40 items, the fitted model 40 x 40"):
        model.predict(other)
    with pytest.raises(TypeError, match="got a sparse matrix of shape"):
        model.predict(data.positives)
