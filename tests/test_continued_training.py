"""Continued training, weights and engine limits: partial_fit's memory, early stopping's optimiser state,
weights at the edges of float32, memory checks before any work, and how closely the two engines agree."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR, Interactions
from skbpr.datasets import make_interactions
from skbpr.distributed.batch import BatchRecommender
from skbpr.evaluation.metrics import evaluate
from skbpr.evaluation.ranking import evaluate_scores
from skbpr.model_selection import train_test_split
from skbpr.training import native
from skbpr.training.devices import available_memory

needs_kernel = pytest.mark.skipif(not native.available(), reason="the compiled kernel is not built")
FAST = {"n_components": 8, "epochs": 2, "batch_size": 64, "random_state": 0, "n_threads": 1}


def _batches(R: sp.csr_matrix, n: int, seed: int = 0) -> list[sp.csr_matrix]:
    """``R``'s positives dealt at random into ``n`` disjoint matrices of R's shape."""
    part = np.random.default_rng(seed).integers(0, n, R.nnz)
    out = []
    for b in range(n):
        M = R.copy()
        M.data = np.where(part == b, M.data, 0).astype(np.float32)
        M.eliminate_zeros()
        out.append(M)
    return out


def _seen_in_top(model: HybridBPR, R: sp.csr_matrix, k: int = 10) -> int:
    ids, _ = model.recommend(np.arange(R.shape[0]), k=k)
    hit = ids >= 0
    return int(np.asarray(R[np.repeat(np.arange(R.shape[0]), k)[hit.ravel()], ids.ravel()[hit.ravel()]]).sum())


# ------------------------------------------------------------------ 1. partial_fit remembers every batch
def test_streamed_batches_are_all_seen_by_recommend_score_evaluate_and_the_batch_recommender():
    R = make_interactions(100, 60, 1000, random_state=0).positives.tocsr()
    R.data[:] = 1.0
    train, test = R.copy(), R.copy()
    held = np.random.default_rng(1).random(R.nnz) < 0.2  # a test set disjoint from every batch
    train.data[held], test.data[~held] = 0, 0
    train.eliminate_zeros(), test.eliminate_zeros()
    batches = _batches(train, 4)
    model = HybridBPR(**FAST).fit(batches[0])
    for batch in batches[1:]:
        model.partial_fit(batch)
    assert (model.train_positives_ != train).nnz == 0  # the union of the four batches
    assert model.confidences_.nnz == train.nnz and np.all(model.confidences_.data == 1.0)
    assert _seen_in_top(model, train) == 0  # 280 of 1000 slots were earlier batches' positives
    frame = BatchRecommender(model, k=10).recommend_indices(np.arange(100))
    assert len(frame) == 1000 and not np.asarray(train[frame["user"].to_numpy(), frame["item"].to_numpy()]).any()
    union_scores = evaluate_scores(model.user_item_scores, test, exclude=train, metrics=["ndcg@10", "recall@10"])
    assert evaluate(model, test, metrics=["ndcg@10", "recall@10"]) == pytest.approx(union_scores, rel=1e-12)
    assert model.score(test) == pytest.approx(union_scores["ndcg@10"], rel=1e-12)
    last_only = evaluate_scores(model.user_item_scores, test, exclude=batches[-1], metrics=["ndcg@10"])
    assert union_scores["ndcg@10"] != pytest.approx(last_only["ndcg@10"])  # the check can tell them apart


def test_partial_fit_on_a_grown_id_space_keeps_the_earlier_positives_and_their_confidences():
    # fit on 40 x 30 with weights, then a batch over 50 x 36 that repeats one pair with another weight
    rng = np.random.default_rng(0)
    A = sp.random(40, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    A.data = rng.choice([1.0, 9.0], A.nnz).astype(np.float32)
    B = sp.random(50, 36, density=0.1, random_state=1, format="lil", dtype=np.float32)
    B[B.nonzero()] = 3.0
    row, col = A.nonzero()[0][0], A.nonzero()[1][0]
    B[row, col] = 99.0
    B = B.tocsr()
    model = HybridBPR(weighting="log", **FAST).fit(A)
    before = model.confidences_.copy()
    model.partial_fit(B)
    assert model.train_positives_.shape == model.confidences_.shape == (50, 36)
    union = (sp.csr_matrix(A, shape=(40, 30)).astype(bool).astype(np.int8)).tolil()
    union.resize(50, 36)
    union = union.tocsr() + B.astype(bool).astype(np.int8)
    assert (model.train_positives_.astype(bool) != union.astype(bool)).nnz == 0
    assert np.array_equal(model.confidences_.indptr, model.train_positives_.indptr)
    assert np.array_equal(model.confidences_.indices, model.train_positives_.indices)
    scale = model.confidence_scale_
    only_a = A - A.multiply(B[:40, :30].astype(bool)).tocsr()
    only_a.eliminate_zeros()
    r, c = only_a.nonzero()
    np.testing.assert_array_equal(model.train_positives_[r, c].A1, A[r, c].A1)  # earlier weights kept
    np.testing.assert_array_equal(model.confidences_[r, c].A1, before[r, c].A1)  # and their confidences
    r, c = B.nonzero()
    np.testing.assert_array_equal(model.train_positives_[r, c].A1, B[r, c].A1)  # the batch's weights
    np.testing.assert_allclose(model.confidences_[r, c].A1, np.log1p(B[r, c].A1) / scale, rtol=1e-6)
    # the repeated pair: the newer weight and confidence replace the earlier ones
    assert model.train_positives_[row, col] == 99.0
    assert model.confidences_[row, col] == pytest.approx(np.log(100.0) / scale, rel=1e-6)


def test_partial_fit_draws_no_negative_among_earlier_batches_positives():
    # user 0 has every item but one in the first batch and one new positive in the second: the second
    # batch's only candidate negative is the last item, so training touches no item of the first batch
    A = sp.lil_matrix((6, 8), dtype=np.float32)
    A[0, :6] = 1
    A[1:, 0] = 1
    B = sp.lil_matrix((6, 8), dtype=np.float32)
    B[0, 6] = 1
    model = HybridBPR(n_components=4, epochs=1, batch_size=1, n_negatives=4, random_state=0, n_threads=1)
    model.fit(A.tocsr())
    items = model.item_embeddings_.copy()
    model.partial_fit(B.tocsr())
    moved = np.flatnonzero(np.any(model.item_embeddings_ != items, axis=1))
    assert moved.tolist() == [6, 7]  # the positive and the one item user 0 has not seen


# ------------------------------------------------------------------ 7. early stopping restores the optimiser too
@pytest.mark.parametrize("optimizer", ["adagrad", "adam"])
@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=needs_kernel)])
def test_early_stopping_restores_the_best_epochs_optimiser_state(optimizer, backend):
    data = make_interactions(80, 50, 700, random_state=3)
    train, valid = train_test_split(data, test_size=0.3, random_state=0)
    params = dict(n_components=8, batch_size=32, random_state=0, n_threads=1, optimizer=optimizer, backend=backend)
    stopped = HybridBPR(epochs=40, patience=2, learning_rate=0.3, **params).fit(train, eval_set=valid)
    best = stopped.best_epoch_
    assert best is not None and len(stopped.history_) > best  # it trained past the best epoch, then stopped
    reference = HybridBPR(epochs=best, learning_rate=0.3, **params).fit(train)  # the best epoch, unstopped
    np.testing.assert_array_equal(stopped.item_embeddings_, reference.item_embeddings_)
    for ours, theirs in zip(stopped._optimizer_state, reference._optimizer_state, strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), key
    # so a later partial_fit continues from the best epoch exactly as the unstopped model does (given the
    # stopped model's epoch count, which seeds the next epoch's sample order)
    reference.history_ = list(stopped.history_)
    stopped.partial_fit(train)
    reference.partial_fit(train)
    np.testing.assert_array_equal(stopped.item_embeddings_, reference.item_embeddings_)
    np.testing.assert_array_equal(stopped.user_embeddings_, reference.user_embeddings_)


# ------------------------------------------------------------------ 11. weights at the edges of float32
def _events(weights: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"u": ["a", "a", "b", "c", "c"], "i": ["x", "x", "y", "x", "z"], "w": weights})


def test_merged_duplicate_weights_that_overflow_float32_name_weight_col():
    message = (
        r"weight_col 'w': the weights of 1 repeated \(user, item\) pairs add up beyond float32's largest "
        r"\(3\.403e\+38\), e\.g\. 6e\+38"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # summed in float64: no numpy overflow on the way
        with pytest.raises(ValueError, match=message):
            Interactions.from_frame(_events([3e38, 3e38, 1, 1, 1]), user_col="u", item_col="i", weight_col="w")
    ok = Interactions.from_frame(_events([1e38, 1e38, 1, 1, 1]), user_col="u", item_col="i", weight_col="w")
    assert ok.pos_values[0] == np.float32(2e38)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e-50, r"weight_col 'w' has 1 positive weights below float32's smallest \(1\.401e-45\), e\.g\. \[1e-50\]"),
        (1e39, r"weight_col 'w' has 1 weights beyond float32's largest \(3\.403e\+38\), e\.g\. \[1e\+39\]"),
    ],
)
def test_weights_outside_float32_name_weight_col_and_the_value_given(value, message):
    with pytest.raises(ValueError, match=message):
        Interactions.from_frame(_events([1, value, 1, 1, 1]), user_col="u", item_col="i", weight_col="w")


def test_tiny_float64_positives_do_not_vanish():
    X = sp.random(50, 40, density=0.2, random_state=0, format="csr")
    X.data[:5] = 1e-300  # positives all the same: float32 would make them 0 and drop them
    message = r"has 5 positive values below float32's smallest \(1\.401e-45\), e\.g\. \[1e-300\]"
    with pytest.raises(ValueError, match="X " + message):
        HybridBPR(**FAST).fit(X)
    with pytest.raises(ValueError, match="positives " + message):
        Interactions.from_matrices(X)
    X.data[:5] = 1e-44  # a float32 subnormal: kept
    assert HybridBPR(**FAST).fit(X).train_positives_.nnz == X.nnz == 400


def test_repeated_matrix_entries_are_summed_in_float64():
    coo = sp.coo_matrix((np.array([3e38, 3e38, 1.0]), (np.array([0, 0, 1]), np.array([0, 0, 1]))), shape=(3, 3))
    with pytest.raises(ValueError, match=r"positives has 1 values beyond float32's largest .* e\.g\. \[6e\+38\]"):
        Interactions.from_matrices(coo)


# ------------------------------------------------------------------ 16. memory checked before any work
def test_n_components_that_is_no_tensor_dimension_is_refused():
    message = r"n_components must be an integer <= 9223372036854775806 \(the item table's n_components \+ 1 columns"
    with pytest.raises(ValueError, match=message):
        HybridBPR(n_components=10**23)._validate_params()


def test_tables_larger_than_memory_are_refused_before_any_work():
    assert available_memory(torch.device("cpu")) > 0
    data = make_interactions(30, 20, 100, random_state=0)
    # 1e12 columns: 1.6e13 bytes for two rows and their Adagrad sums alone, refused by the parameter check
    # before the data
    with pytest.raises(ValueError, match=r"n_components must be small enough .* they need 16000000000008 bytes"):
        HybridBPR(n_components=10**12)._validate_params()
    # a huge id space: the check with the data, naming its size, before anything is fitted
    big = Interactions(np.array([0, 1]), np.array([0, 10**8 - 1]), n_users=2, n_items=10**8)
    model = HybridBPR(n_components=10_000, epochs=1)
    with pytest.raises(
        ValueError,
        match=r"n_components must be small enough .*100000000 item rows x 10000 \+ 1 columns; the data has 2 users "
        r"and 100000000 items\) with the adagrad state \(1 more table copies\) to fit in memory: they need "
        r"8000800160000 bytes",
    ):
        model.fit(big)
    assert not hasattr(model, "model_") and not hasattr(model, "callbacks_")
    # partial_fit checks the grown tables the same way, before touching the fitted model
    R = sp.random(20, 30, density=0.2, random_state=0, format="csr", dtype=np.float32)
    fitted = HybridBPR(**dict(FAST, n_components=1000)).fit(R)
    state = pickle.dumps(fitted)
    grown = Interactions(np.array([0, 1]), np.array([0, 10**8 - 1]), n_users=20, n_items=10**8)
    with pytest.raises(ValueError, match=r"n_components must be small enough .*100000000 item rows x 1000 \+ 1"):
        fitted.partial_fit(grown)
    assert pickle.dumps(fitted) == state
    assert data.n_users == 30  # (the small data fits as usual)
    assert HybridBPR(**FAST).fit(data).n_users_ == 30


# ------------------------------------------------------------------ 18. an empty candidate list
def test_recommend_with_no_candidates_says_the_list_is_empty():
    model = HybridBPR(**FAST).fit(make_interactions(30, 20, 100, random_state=0))
    with pytest.raises(ValueError, match=r"^items must be a non-empty list of candidate item indices, got an empty"):
        model.recommend([0, 1], k=3, items=[])
    with pytest.raises(ValueError, match=r"^item_features must be a matrix with one row per new item.*shape \(0, "):
        model.recommend([0, 1], k=3, item_features=sp.csr_matrix((0, model.n_item_features_in_)))


# ------------------------------------------------------------------ 19. Adam at batch_size=1: the two engines
@needs_kernel
@pytest.mark.slow
def test_adam_at_batch_one_engines_agree_to_rounding_and_large_steps_amplify_any_rounding():
    data = make_interactions(100, 60, 1000, random_state=0)
    params = dict(optimizer="adam", batch_size=1, epochs=3, random_state=0, n_components=16, n_threads=1)
    params["learning_rate"] = 0.1

    def predictions(model: HybridBPR) -> np.ndarray:
        return model.user_embeddings_ @ model.item_embeddings_.T

    # small steps: the same update, so the same predictions up to float rounding (the kernel's
    # (1 - beta) in float32 arithmetic moved them by 2.8e-5 here, 20 times a rounding difference)
    small = {
        b: predictions(HybridBPR(backend=b, **dict(params, learning_rate=0.01)).fit(data)) for b in ("native", "torch")
    }
    assert np.abs(small["native"] - small["torch"]).max() < 5e-6
    # large steps (learning_rate=0.1): Adam's steps of about learning_rate whatever the gradient's size make
    # training chaotic at batch_size=1: initial weights one float32 ulp apart (init_std one ulp larger) end
    # O(1) apart in predictions within three epochs on one engine, so two engines agree no better (the
    # documented limit)
    std = float(np.nextafter(np.float32(0.1), np.float32(1)))
    apart = [predictions(HybridBPR(backend="torch", init_std=s, **params).fit(data)) for s in (0.1, std)]
    assert np.abs(apart[0] - apart[1]).max() > 0.5
