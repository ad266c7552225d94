"""Reliability: every bad input a clear error before any work, numerical safety,
interruption, determinism across processes and memory under load.

``BAD_INPUTS`` is the table of ``docs/reliability.md``: each row is a bad
input, the exception it must raise and a pattern its message must match.
"""

from __future__ import annotations

import pickle
import resource
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import cross_validate

from skbpr import HybridBPR, Interactions
from skbpr.datasets import make_interactions
from skbpr.metrics import evaluate, ndcg_scorer
from skbpr.model_selection import PerUserKFold, train_test_split

FAST = {"n_components": 4, "epochs": 2, "batch_size": 64, "random_state": 0, "n_threads": 1}


def _rpos(n_users: int = 12, n_items: int = 9) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    dense[np.arange(n_users), np.arange(n_users) % n_items] = 1.0
    return sp.csr_matrix(dense)


R = _rpos()
FEAT = sp.csr_matrix(np.eye(9, 3, dtype=np.float32) + np.eye(9, 3, k=-3, dtype=np.float32))


@pytest.fixture(scope="module")
def fitted() -> HybridBPR:
    return HybridBPR(**FAST).fit(R)


def _fit(**params):
    def run(_model):
        HybridBPR(**{**FAST, **params}).fit(R)

    return run


def _fit_data(*args, **kwargs):
    def run(_model):
        HybridBPR(**FAST).fit(*args, **kwargs)

    return run


def _dense_with(value: float) -> np.ndarray:
    dense = R.toarray()
    dense[0, 0] = value
    return dense


# (label, call on the fitted model, exception, message pattern)
BAD_INPUTS = [
    ("negative user index in predict", lambda m: m.predict([[-1, 0]]), ValueError, r"X\[:, 0\] \(users\).*\[-1\]"),
    ("user index >= n_users in predict", lambda m: m.predict([[12, 0]]), ValueError, r"users.*\[0, 12\).*\[12\]"),
    ("item index >= n_items in recommend", lambda m: m.recommend([0], items=[9]), ValueError, r"items.*\[0, 9\)"),
    ("non-integer ids", lambda m: m.recommend([0.5]), TypeError, r"users must be integer indices"),
    ("pairs of the wrong shape", lambda m: m.predict([0, 1, 2]), ValueError, r"X must be of shape \(n_pairs, 2\)"),
    ("NaN in Rpos", _fit_data(_dense_with(np.nan)), ValueError, r"positives.*NaN"),
    ("inf in Rneg", _fit_data(R, sp.csr_matrix(_dense_with(np.inf))), ValueError, r"negatives.*NaN or infinite"),
    ("NaN in features", _fit_data(R, item_features=np.full((9, 2), np.nan)), ValueError, r"item_features.*NaN"),
    ("negative feature weight", _fit_data(R, item_features=-FEAT), ValueError, r"item_features has negative"),
    (
        "Rneg shape differs from Rpos",
        _fit_data(R, sp.csr_matrix((12, 8))),
        ValueError,
        r"negatives must have the shape of positives \(12, 9\)",
    ),  # fmt: skip
    ("feature rows differ from Rpos", _fit_data(R, user_features=np.ones((5, 2))), ValueError, r"user_features.*12"),
    ("empty Rpos", _fit_data(sp.csr_matrix((12, 9))), ValueError, r"positives has no nonzero entry"),
    (
        "item with no feature and no identity column",
        lambda m: HybridBPR(**FAST, item_features_mode="features").fit(R, item_features=sp.csr_matrix((9, 3))),
        ValueError,
        r"item_features has 9 rows with no feature.*item_features_mode='both'",
    ),
    ("k <= 0", lambda m: m.recommend([0], k=0), ValueError, r"k must be an integer in \[1, 9\].*got 0"),
    ("k > number of candidates", lambda m: m.recommend([0], k=3, items=[1, 2]), ValueError, r"k must.*\[1, 2\]"),
    ("unknown user without features", lambda m: m.recommend([40]), ValueError, r"users must be indices in \[0, 12\)"),
    (
        "cold start without fitted features",
        lambda m: m.recommend(user_features=np.ones((1, 2)), k=3),
        ValueError,
        r"user_features cannot score new users",
    ),  # fmt: skip
    ("unknown loss", _fit(loss="hingee"), ValueError, r"loss must be one of .*'hingee'"),
    ("unknown optimiser", _fit(optimizer="rmsprop"), ValueError, r"optimizer must be one of .*'rmsprop'"),
    ("unknown sampler", _fit(negatives="hard"), ValueError, r"negatives must be one of .*'hard'"),
    ("unknown device", _fit(device="tpu"), ValueError, r"device must be one of .*'tpu'"),
    ("non-positive batch_size", _fit(batch_size=0), ValueError, r"batch_size must be an integer > 0 or .auto.*got 0"),
    ("non-positive n_components", _fit(n_components=-2), ValueError, r"n_components must be an integer > 0, got -2"),
    ("non-positive epochs", _fit(epochs=0), ValueError, r"epochs must be an integer > 0, got 0"),
    (
        "n_threads beyond 8 per CPU",
        _fit(n_threads=100_000),
        ValueError,
        r"n_threads must be at most \d+ \(8 x the \d+ CPUs",
    ),
    ("non-positive learning rate", _fit(learning_rate=0.0), ValueError, r"learning_rate must be a finite number > 0"),
    ("WARP max_sampled < 1", _fit(loss="warp", max_sampled=0), ValueError, r"max_sampled must be an integer > 0"),
    ("unknown eval_metric", _fit(eval_metric="ndgc@10"), ValueError, r"eval_metric.*'ndgc@10'"),
    ("a callback that is not one", _fit(callbacks=[3]), TypeError, r"callbacks must be Callback objects"),
    (
        "unknown metric name",
        lambda m: evaluate(m, Interactions.from_matrices(R), metrics=["ndcg"]),
        ValueError,
        r"metric 'ndcg' needs a cutoff",
    ),  # fmt: skip
    ("sigma that overflows float32", _fit(sigma=1e300), ValueError, r"sigma must be <= 1\.\d+e\+38.*got 1e\+300"),
    ("init_std that overflows float32", _fit(init_std=1e30), ValueError, r"init_std must be <= .*got 1e\+30"),
    ("alpha that overflows float32", _fit(alpha=1e300), ValueError, r"alpha must be <= .*got 1e\+300"),
    (
        "eval_metric cutoff beyond the catalogue",
        _fit(eval_metric="precision@1000", validation_fraction=0.2),
        ValueError,
        r"eval_metric='precision@1000' cuts the ranking at k=1000 but the data has 9 items",
    ),  # fmt: skip
    (
        "uint64 user id 2**64 - 1",
        lambda m: m.recommend(np.array([2**64 - 1], dtype=np.uint64)),
        ValueError,
        r"users must be indices in \[0, 12\), got \[18446744073709551615\]",
    ),  # fmt: skip
    (
        "pair keys beyond int64",
        lambda m: Interactions([0, 1], [2**62 - 1, 5], n_users=3, n_items=2**62),
        ValueError,
        r"n_users \* n_items must be <= 2\*\*63 - 1.*n_users=3, n_items=4611686018427387904",
    ),  # fmt: skip
    (
        "partial_fit on fewer users",
        lambda m: m.partial_fit(R[:10]),
        ValueError,
        r"partial_fit cannot continue the fitted model: n_users went from 12 to 10 \(fewer users\)",
    ),  # fmt: skip
    (
        "partial_fit with other item feature columns",
        lambda m: m.partial_fit(R, item_features=FEAT),
        ValueError,
        r"item feature columns went from None to 3",
    ),  # fmt: skip
    (
        "score on a matrix split by rows",
        lambda m: m.score(R[:4]),
        ValueError,
        r"X has 4 rows \(users\) but HybridBPR was fitted on 12.*PerUserKFold",
    ),  # fmt: skip
    (
        "splitter with one fold",
        lambda m: list(PerUserKFold(1).split(Interactions.from_matrices(R))),
        ValueError,
        r"n_splits",
    ),  # fmt: skip
]
if not torch.cuda.is_available():
    BAD_INPUTS.append(("device='cuda' without CUDA", _fit(device="cuda"), ValueError, r"CUDA is not available"))


@pytest.mark.parametrize("label, call, exc, pattern", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_raises_clear_error_and_leaves_the_model_unchanged(fitted, label, call, exc, pattern):
    before = pickle.dumps(fitted)
    with pytest.raises(exc, match=pattern):
        call(fitted)
    assert pickle.dumps(fitted) == before


def test_failed_refit_keeps_the_previous_model():
    model = HybridBPR(**FAST).fit(R)
    weights = model.item_embeddings_.copy()
    model.set_params(batch_size=-1)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(R)
    with pytest.raises(ValueError, match="no nonzero entry"):
        model.set_params(batch_size=64).fit(sp.csr_matrix((12, 9)))
    np.testing.assert_array_equal(model.item_embeddings_, weights)
    assert model.predict([[0, 1]]).shape == (1,)


def test_positive_and_negative_overlap_warns_with_the_count():
    neg = R.copy()
    with pytest.warns(UserWarning, match=rf"{R.nnz}"):
        model = HybridBPR(**FAST, negatives="mixed").fit(R, neg)
    assert model.negatives_ == "mixed"


def test_non_finite_loss_stops_with_the_epoch_and_keeps_finite_weights():
    calls = []

    def explode(pos, neg):  # one batch per epoch: finite in epoch 1, infinite from epoch 2
        calls.append(1)
        return (neg.mean(dim=1) - pos).mean() * (torch.inf if len(calls) > 1 else 1.0)

    model = HybridBPR(**{**FAST, "batch_size": 1000}, loss=explode)
    with pytest.raises(FloatingPointError, match=r"epoch 2.*smaller learning_rate"):
        model.fit(R)
    assert [h["epoch"] for h in model.history_] == [1]
    assert np.all(np.isfinite(model.item_embeddings_))
    assert np.all(np.isfinite(model.predict([[0, 1], [3, 4]])))


def test_keyboard_interrupt_keeps_the_last_completed_epoch_and_resumes(monkeypatch):
    from skbpr.training.engine import Engine

    reference = HybridBPR(**FAST).fit(R)
    original = Engine.epoch
    epochs_started = []

    def epoch_then_interrupt(self, seed):
        epochs_started.append(1)
        if len(epochs_started) == 3:
            original(self, seed)  # a whole epoch of work that must be undone
            raise KeyboardInterrupt
        return original(self, seed)

    monkeypatch.setattr(Engine, "epoch", epoch_then_interrupt)
    model = HybridBPR(**{**FAST, "epochs": 5})
    with pytest.raises(KeyboardInterrupt):
        model.fit(R)
    monkeypatch.setattr(Engine, "epoch", original)
    assert model.history_[-1] == {"epoch": 3, "interrupted": True}
    np.testing.assert_array_equal(model.item_embeddings_, reference.item_embeddings_)
    assert np.all(np.isfinite(model.predict([[0, 1]])))
    # warm start continues from the interrupted state
    model.set_params(warm_start=True, epochs=1)
    model.fit(R)
    assert model.history_[-1]["epoch"] == 4
    assert not np.array_equal(model.item_embeddings_, reference.item_embeddings_)


def test_same_seed_identical_weights_in_another_process(tmp_path):
    data = make_interactions(200, 80, 3000, random_state=0)
    local = HybridBPR(**{**FAST, "n_threads": 2}).fit(data)
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(data))
    code = textwrap.dedent(
        f"""
        import pickle, sys, numpy as np
        from skbpr import HybridBPR
        data = pickle.loads(open({str(path)!r}, "rb").read())
        model = HybridBPR(**{FAST!r} | {{"n_threads": 2}}).fit(data)
        np.save(sys.argv[1], model.item_embeddings_)
        """
    )
    out = tmp_path / "weights.npy"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(out), local.item_embeddings_)
    other = HybridBPR(**{**FAST, "random_state": 1, "n_threads": 2}).fit(data)
    assert not np.array_equal(other.item_embeddings_, local.item_embeddings_)


@pytest.mark.slow
def test_two_million_interactions_fit_and_recommend_within_memory_bound():
    """Fit one epoch on 2M generated positives and recommend for every user under 3 GB peak RSS."""
    data = make_interactions(30_000, 5_000, 2_000_000, random_state=0)
    train, _ = train_test_split(data, test_size=0.1, random_state=0)
    model = HybridBPR(32, epochs=1, batch_size=16384, random_state=0).fit(train)
    ids, scores = model.recommend(np.arange(train.n_users), k=10, batch_size=2048)
    assert ids.shape == (30_000, 10)
    assert np.all(np.isfinite(scores[ids >= 0]))
    seen = train.positives[:1000].toarray()
    assert not seen[np.arange(1000)[:, None], np.maximum(ids[:1000], 0)][ids[:1000] >= 0].any()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    assert peak_gb < 3.0, f"peak resident memory {peak_gb:.2f} GB"


# ------------------------------------------------ results that must not be silently wrong
def _grow(matrix: sp.csr_matrix, n_users: int, n_items: int) -> sp.csr_matrix:
    """``matrix`` in a larger id space, with one positive for each new user and item."""
    grown = sp.lil_matrix((n_users, n_items), dtype=np.float32)
    grown[: matrix.shape[0], : matrix.shape[1]] = matrix
    for u in range(matrix.shape[0], n_users):
        grown[u, u % n_items] = 1.0
    for i in range(matrix.shape[1], n_items):
        grown[i % n_users, i] = 1.0
    return grown.tocsr()


GROWN_FEAT = sp.vstack([FEAT, sp.csr_matrix(np.array([[0.0, 1.0, 1.0]], dtype=np.float32))]).tocsr()


@pytest.mark.parametrize("optimizer, state_key", [("adagrad", "sum_sq"), ("adam", "v")])
def test_partial_fit_on_a_grown_id_space_keeps_the_training(optimizer, state_key):
    params = {**FAST, "optimizer": optimizer}
    model = HybridBPR(**params).fit(R, item_features=FEAT)
    old_items = model.model_.item_weight.data.clone()  # rows: 3 feature rows, then 9 identity rows
    old_state = model._optimizer_state[1][state_key].clone()
    old_t = model._optimizer_state[1].get("t", 0)
    grown = _grow(R, 13, 10)
    model.set_params(learning_rate=1e-7).partial_fit(grown, item_features=GROWN_FEAT)
    assert (model.n_users_, model.n_items_) == (13, 10)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]  # history continues
    table = model.model_.item_weight.data
    assert table.shape == (3 + 10, FAST["n_components"] + 1)
    # old feature and identity rows keep their place and (at a tiny step) their values
    np.testing.assert_allclose(table[:12].numpy(), old_items.numpy(), atol=1e-5)
    assert torch.all(table[12, :-1].abs() > 1e-4) and abs(float(table[12, -1])) < 1e-5  # drawn; bias from 0
    state = model._optimizer_state[1]
    assert state[state_key].shape[0] == 13  # padded for the new row
    if optimizer == "adagrad":  # accumulators kept: they only grow
        assert torch.all(state["sum_sq"][:12] >= old_state)
    else:  # Adam's step count continues
        assert int(state["t"]) > int(old_t)
    again = HybridBPR(**params).fit(R, item_features=FEAT)
    again.set_params(learning_rate=1e-7).partial_fit(grown, item_features=GROWN_FEAT)
    np.testing.assert_array_equal(again.item_embeddings_, model.item_embeddings_)  # deterministic growth


def test_warm_start_on_a_grown_id_space_continues_and_otherwise_warns():
    model = HybridBPR(**FAST, warm_start=True).fit(R)
    model.fit(_grow(R, 14, 9))
    assert len(model.history_) == 4 and model.user_embeddings_.shape[0] == 14
    with pytest.warns(UserWarning, match=r"n_users went from 14 to 12 \(fewer users\).*re-initialised"):
        model.fit(R)
    assert len(model.history_) == 2
    with pytest.warns(UserWarning, match=r"n_components went from 4 to 3"):
        model.set_params(n_components=3).fit(R)


def test_recommend_deduplicates_candidates_and_never_returns_seen_items(fitted):
    seen = R[0].indices
    unseen = np.setdiff1d(np.arange(9), seen)
    ids, scores = fitted.recommend([0], k=2, items=[seen[0], seen[0], unseen[0]])
    assert ids.tolist() == [[unseen[0], -1]] and np.isneginf(scores[0, 1])
    ids, _ = fitted.recommend([0], k=2, items=[unseen[1], unseen[0], unseen[1]])
    assert sorted(ids[0].tolist()) == sorted(unseen[:2].tolist())
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 2\]"):
        fitted.recommend([0], k=3, items=[unseen[1], unseen[0], unseen[1]])


def test_interaction_weights_are_used_or_never_silently_binarised():
    counts = R.copy()
    counts.data[:3] = [3.0, 2.0, 7.0]
    binary = HybridBPR(**FAST).fit(R)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        used = HybridBPR(**FAST).fit(counts)  # the default weighting uses them: nothing to warn about
    assert not np.array_equal(used.item_embeddings_, binary.item_embeddings_)
    assert sorted(used.confidences_.data[:3]) == sorted(used.confidences_.data)[-3:]  # the counts weigh most
    with pytest.warns(UserWarning, match=r"positives \(e\.g\. \[2\.0, 3\.0, 7\.0\]\).*treated as binary") as record:
        ignored = HybridBPR(weighting="none", **FAST).fit(counts)
    assert len([w for w in record if "treated as binary" in str(w.message)]) == 1  # once per fit
    np.testing.assert_array_equal(ignored.item_embeddings_, binary.item_embeddings_)
    events = pd.DataFrame({"user_id": [0, 1, 1, 2], "item_id": [0, 1, 2, 0], "plays": [1, 5, 1, 2]})
    data = Interactions.from_frame(events, weight_col="plays")
    with pytest.warns(UserWarning, match=r"positives .*HybridBPR does not use interaction weights.*weighting='log'"):
        HybridBPR(weighting="none", **FAST).fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        HybridBPR(weighting="none", **FAST).fit(R)  # binary data: no warning


def test_cross_validate_with_the_default_kfold_warns_that_whole_users_were_held_out():
    data = make_interactions(60, 40, 400, random_state=0)
    with pytest.warns(UserWarning, match=r"test users have no training positive.*PerUserKFold"):
        default = cross_validate(HybridBPR(**FAST), data, cv=3)
    assert np.all(np.isfinite(default["test_score"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        per_user = cross_validate(HybridBPR(**FAST), data, cv=PerUserKFold(3, random_state=0))
    assert np.all(np.isfinite(per_user["test_score"]))


def test_score_takes_a_matrix_in_the_fitted_id_space_and_cross_validate_names_row_splits():
    data = make_interactions(60, 40, 400, random_state=0)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    model = HybridBPR(**FAST).fit(train.positives)
    assert model.score(test.positives) == model.score(test) > 0
    assert model.score(test.positives.toarray()) == model.score(test)
    assert ndcg_scorer(5)(model, test.positives) == ndcg_scorer(5)(model, test)
    matrix = data.positives
    with pytest.raises(ValueError, match=r"rows \(users\) but HybridBPR was fitted on 40.*PerUserKFold"):
        cross_validate(HybridBPR(**FAST), matrix, cv=3, error_score="raise")
    with pytest.warns(UserWarning, match=r"split each user's positives|Split each user's positives"):
        scores = cross_validate(HybridBPR(**FAST), matrix, cv=3)["test_score"]
    assert np.all(np.isnan(scores))  # reported, not a number measuring the wrong thing


def test_float16_input_is_read_exactly():
    half = HybridBPR(**FAST).fit(R.toarray().astype(np.float16))
    np.testing.assert_array_equal(half.item_embeddings_, HybridBPR(**FAST).fit(R).item_embeddings_)
