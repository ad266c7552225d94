"""Shared negatives and the sampled softmax: gradients, draws, masks, both engines, the estimator's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.losses import SHARED_LOSSES, shared_grad, shared_loss, softmax, softmax_grad
from skbpr.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training import TrainingProblem, make_optimizer, native
from skbpr.training.defaults import LOSS_DEFAULTS
from skbpr.training.native import NativeKernel
from skbpr.training.sampling import SharedSampler, shared_distribution
from skbpr.training.torch_engine import Trainer
from skbpr.utils.validation import InvalidParameterError

CPU = torch.device("cpu")
N_USERS, N_ITEMS, DIM = 13, 17, 5
needs_kernel = pytest.mark.skipif(not native.available(), reason="the compiled kernel is not built")


def _scores(b: int, s: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(b, generator=gen, dtype=torch.float64)
    neg = torch.randn((b, s), generator=gen, dtype=torch.float64) * 2
    mask = torch.rand((b, s), generator=gen) < 0.7
    mask[0] = False  # a row without any valid shared item
    mask[1] = True
    log_q = torch.randn(s, generator=gen, dtype=torch.float64)
    return pos, neg, mask, log_q


# ------------------------------------------------------------------ losses


def test_softmax_value_by_hand():
    pos, neg = torch.tensor([1.0], dtype=torch.float64), torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0) + math.exp(4.0)))
    assert float(softmax(pos, neg, sigma=2.0)) == pytest.approx(expected)
    # log-Q: the second item drawn e times more often than uniform counts e times less
    corrected = -math.log(math.exp(1.0) / (math.exp(1.0) + 1.0 + math.exp(2.0 - 1.0)))
    log_q = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert float(softmax(pos, neg, log_q=log_q)) == pytest.approx(corrected)


def test_masked_columns_take_no_part():
    pos, neg = torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([[1.0, 9.0], [1.0, -3.0]])
    mask = torch.tensor([[True, False], [True, True]])
    neg = neg.double()
    for loss in SHARED_LOSSES:
        value, d_pos, d_neg = shared_grad(loss, pos, neg, mask)
        assert d_neg[0, 1] == 0
        alone = shared_loss(loss, pos[:1], neg[:1, :1], mask[:1, :1])
        # the first row with its masked column dropped is the same loss over its one valid column
        assert float(shared_loss(loss, pos[:1], neg[:1], mask[:1])) == pytest.approx(float(alone))
    value, _, _ = shared_grad("bpr", pos, neg, mask)
    by_hand = (math.log1p(math.exp(0.5)) + (math.log1p(math.exp(0.5)) + math.log1p(math.exp(-3.5))) / 2) / 2
    assert float(value) == pytest.approx(by_hand)


@pytest.mark.parametrize("loss", SHARED_LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_shared_closed_form_matches_autograd(loss, seed, weighted):
    pos, neg, mask, log_q = _scores(9, 6, seed)
    log_q = log_q if loss == "softmax" else None
    weight = torch.rand(9, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    rows = [shared_loss(loss, pos[i : i + 1], neg[i : i + 1], mask[i : i + 1], sigma=1.7, margin=0.8, log_q=log_q)
            for i in range(9)]  # fmt: skip
    ref = sum((w if weighted else 1.0) * r for w, r in zip(weight, rows, strict=True)) / 9
    ref_pos, ref_neg = torch.autograd.grad(ref, (pos, neg))
    value, d_pos, d_neg = shared_grad(
        loss, pos.detach(), neg.detach(), mask, sigma=1.7, margin=0.8, log_q=log_q,
        sample_weight=weight if weighted else None,
    )  # fmt: skip
    torch.testing.assert_close(value, ref.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_pos, ref_pos, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_neg, ref_neg, rtol=1e-12, atol=1e-14)
    assert bool((d_neg[~mask] == 0).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_softmax_closed_form_matches_autograd_per_positive(seed):
    pos, neg, _, _ = _scores(7, 4, seed)
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    ref = softmax(pos, neg, sigma=0.6)
    ref_pos, ref_neg = torch.autograd.grad(ref, (pos, neg))
    value, d_pos, d_neg = softmax_grad(pos.detach(), neg.detach(), sigma=0.6)
    torch.testing.assert_close(value, ref.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_pos, ref_pos, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_neg, ref_neg, rtol=1e-12, atol=1e-14)


def test_softmax_is_stable_for_large_scores():
    pos, neg = torch.tensor([300.0]), torch.tensor([[-300.0, 400.0]])
    value, d_pos, d_neg = softmax_grad(pos, neg)
    assert torch.isfinite(value) and float(value) == pytest.approx(100.0)
    assert torch.isfinite(d_pos).all() and torch.isfinite(d_neg).all()


# ------------------------------------------------------------------ draws


def _positives(seed: int) -> sp.csr_matrix:
    R = sp.random(N_USERS, N_ITEMS, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    R.data[:] = 1.0
    R = R.tolil()
    R[0, :] = 0  # a user without positives
    R[1, : N_ITEMS - 1] = 1  # a user with a single candidate negative
    R[2, 3] = 1
    R = R.tocsr()
    R.sort_indices()
    return R


def test_popularity_distribution_and_log_q():
    R = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 1]], dtype=np.float32))
    cdf, log_q = shared_distribution(R, "popularity")
    q = np.array([4, 2, 1, 2]) / 9  # training positives plus one
    np.testing.assert_allclose(cdf, np.cumsum(q))
    np.testing.assert_allclose(log_q, np.log(4 * q), rtol=1e-6)
    assert shared_distribution(R, "uniform") == (None, None)


@pytest.mark.parametrize("mode", ["uniform", "popularity"])
def test_shared_draws_follow_their_distribution_and_are_seeded(mode):
    R = sp.csr_matrix(np.eye(6, 50, dtype=np.float32) + np.eye(6, 50, k=1, dtype=np.float32) * 0)
    R = sp.csr_matrix(R.toarray() + np.pad(np.ones((6, 5)), ((0, 0), (0, 45))) * (mode == "popularity"))
    R.data[:] = 1
    sampler = SharedSampler(R, 4000, mode, CPU)
    a, b = sampler.draw(seed=3, batch=0), sampler.draw(seed=3, batch=0)
    assert torch.equal(a, b) and not torch.equal(a, sampler.draw(seed=3, batch=1))
    counts = np.bincount(a.numpy(), minlength=50) / 4000
    if mode == "uniform":
        expected = np.full(50, 1 / 50)
    else:
        weight = np.bincount(R.indices, minlength=50) + 1.0
        expected = weight / weight.sum()
    assert np.abs(counts - expected).max() < 0.02
    assert a.min() >= 0 and a.max() < 50


def test_valid_masks_exactly_the_users_positives():
    R = _positives(0)
    sampler = SharedSampler(R, 40, "uniform", CPU)
    shared = sampler.draw(seed=1, batch=2)
    users = torch.arange(N_USERS)
    valid = sampler.valid(users, shared)
    dense = R.toarray() > 0
    np.testing.assert_array_equal(valid.numpy(), ~dense[:, shared.numpy()])


# ------------------------------------------------------------------ engines


def _pair(loss, optimizer, modes, *, sampling="uniform", n_shared=6, weighted=False, batch_size=8, seed=0, dim=DIM):
    """The torch trainer and the kernel over two identical copies of one fit."""
    R = _positives(seed)
    rng = np.random.default_rng(seed)
    uf = sp.csr_matrix(rng.random((N_USERS, 4)) * (rng.random((N_USERS, 4)) < 0.5), dtype=np.float32)
    itf = sp.csr_matrix(rng.random((N_ITEMS, 3)) * (rng.random((N_ITEMS, 3)) < 0.6), dtype=np.float32)
    Fu, Fi = build_feature_matrix(uf, N_USERS, modes[0]), build_feature_matrix(itf, N_ITEMS, modes[1])
    coo = R.tocoo()
    users, items = torch.as_tensor(coo.row, dtype=torch.int64), torch.as_tensor(coo.col, dtype=torch.int64)
    weights = torch.as_tensor(rng.random(coo.nnz) * 2, dtype=torch.float32) if weighted else None
    out = []
    for engine in (Trainer, NativeKernel):
        user_map, item_map = FeatureMap(Fu, N_USERS, CPU), FeatureMap(Fi, N_ITEMS, CPU)
        model = HybridFactorization(
            user_map.n_features, item_map.n_features, dim, init_std=0.5, generator=torch.Generator().manual_seed(seed)
        )
        model.item_weight.data[:, -1] = torch.linspace(-0.5, 0.5, model.item_weight.shape[0])
        opt_u = make_optimizer(optimizer, model.user_weight.data, 0.05)
        opt_i = make_optimizer(optimizer, model.item_weight.data, 0.05)
        problem = TrainingProblem(
            users=users, items=items, positives=R, negatives=None, sampling="uniform", implicit_ratio=0.5,
            user_map=user_map, item_map=item_map, loss=loss, sigma=1.3, margin=0.7, alpha=0.2, draws_per_sample=3,
            batch_size=batch_size, weights=weights, shared_negatives=n_shared, shared_sampling=sampling,
        )  # fmt: skip
        out.append((engine(problem, model, opt_u, opt_i), model, opt_u, opt_i))
    return out


@needs_kernel
@pytest.mark.parametrize("loss", SHARED_LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
@pytest.mark.parametrize("modes", [("identity", "identity"), ("both", "features")], ids=["identity", "features"])
@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_kernel_and_torch_train_the_same_weights(loss, optimizer, modes, sampling):
    (trainer, mt, *opt_t), (kernel, mn, *opt_n) = _pair(loss, optimizer, modes, sampling=sampling, weighted=True)
    start = mt.item_weight.data.clone()
    for epoch in range(3):  # batches of 8 over 50-odd positives: the last one partial
        torch_loss = trainer.epoch(seed=epoch + 11)
        native_loss = kernel.epoch(seed=epoch + 11, n_threads=2)
        assert native_loss == pytest.approx(torch_loss, rel=1e-5)
    torch.testing.assert_close(mn.user_weight.data, mt.user_weight.data, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mn.item_weight.data, mt.item_weight.data, rtol=1e-4, atol=1e-5)
    for a, b in zip(opt_t, opt_n, strict=True):
        for key in a.state:
            torch.testing.assert_close(b.state[key], a.state[key], rtol=1e-4, atol=1e-6)
    assert (mt.item_weight.data - start).abs().max() > 1e-3


@needs_kernel
@pytest.mark.parametrize("loss", ["bpr", "softmax"])
@pytest.mark.parametrize(("dim", "n_shared", "batch_size"), [(16, 16, 8), (21, 37, 13), (40, 5, 64)])
def test_kernel_and_torch_agree_on_full_and_partial_tiles(loss, dim, n_shared, batch_size):
    # embeddings wider than one 16-lane block (and not a multiple of it), shared sets that are not a
    # multiple of the tile, batches split between threads with a partial last tile
    pair = _pair(loss, "adagrad", ("both", "identity"), n_shared=n_shared, batch_size=batch_size, dim=dim)
    (trainer, mt, *_), (kernel, mn, *_) = pair
    for epoch in range(2):
        assert kernel.epoch(seed=epoch, n_threads=3) == pytest.approx(trainer.epoch(seed=epoch), rel=1e-5)
    torch.testing.assert_close(mn.user_weight.data, mt.user_weight.data, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mn.item_weight.data, mt.item_weight.data, rtol=1e-4, atol=1e-5)


@needs_kernel
def test_kernel_weights_do_not_depend_on_the_thread_count():
    # batches large enough (2048 x 128 shared x 17 columns) for the kernel to split them between threads
    data = make_interactions(300, 200, 6000, random_state=0)
    params = dict(n_components=16, epochs=2, random_state=0, batch_size=2048, loss="softmax", shared_negatives=128)
    fits = [HybridBPR(backend="native", n_threads=n, **params).fit(data) for n in (1, 2, 3)]
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.user_embeddings_, fits[0].user_embeddings_)
        np.testing.assert_array_equal(fit.item_embeddings_, fits[0].item_embeddings_)
    torch_fit = HybridBPR(backend="torch", **params).fit(data)
    np.testing.assert_allclose(torch_fit.item_embeddings_, fits[1].item_embeddings_, atol=1e-4)


def test_torch_batch_is_one_product_against_the_drawn_items():
    # the batch gradient of the torch engine is the autograd gradient of the shared loss plus the L2 terms
    (trainer, model, *_), _ = _pair("softmax", "sgd", ("identity", "identity"), sampling="popularity")
    users, items = trainer.users[:8], trainer.items[:8]
    shared = trainer.shared.draw(seed=5, batch=0)
    loss, (u_rows, g_u), (i_rows, g_i) = trainer.shared_gradients(users, items, shared)
    U = model.user_weight.data.clone().double().requires_grad_(True)
    V = model.item_weight.data.clone().double().requires_grad_(True)
    u = U[users]
    pos = (u * V[items, :-1]).sum(1) + V[items, -1]
    neg = u @ V[shared, :-1].T + V[shared, -1]
    mask = trainer.shared.valid(users, shared)
    log_q = trainer.shared.log_q[shared].double()
    value = shared_loss("softmax", pos, neg, mask, sigma=1.3, log_q=log_q)
    l2 = 0.2 / 8 * ((u**2).sum() + (V[items] ** 2).sum()) + 0.2 / shared.numel() * (V[shared] ** 2).sum()
    gU, gV = torch.autograd.grad(value + l2, (U, V))
    dense_u = torch.zeros_like(gU).index_add_(0, u_rows, g_u.double())
    dense_v = torch.zeros_like(gV).index_add_(0, i_rows, g_i.double())
    assert float(loss) == pytest.approx(float(value.detach()), rel=1e-5)
    torch.testing.assert_close(dense_u, gU, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(dense_v, gV, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ estimator


def test_softmax_defaults_to_shared_negatives_and_bpr_does_not():
    assert LOSS_DEFAULTS["bpr"]["shared_negatives"] == 0
    assert LOSS_DEFAULTS["softmax"]["shared_negatives"] > 0
    data = make_interactions(60, 40, 400, random_state=0)
    model = HybridBPR(n_components=8, epochs=2, loss="softmax", random_state=0, n_threads=1).fit(data)
    assert model.shared_negatives_ == LOSS_DEFAULTS["softmax"]["shared_negatives"]
    assert HybridBPR(n_components=8, epochs=1, random_state=0).fit(data).shared_negatives_ == 0


@pytest.mark.parametrize("loss", SHARED_LOSSES)
@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_estimator_engines_agree_and_repeat(loss, sampling):
    from skbpr.model_selection import train_test_split

    data = make_interactions(200, 120, 4000, random_state=0)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    params = dict(n_components=16, epochs=4, random_state=0, batch_size=256, loss=loss, shared_negatives=32,
                  shared_sampling=sampling)  # fmt: skip
    fits = {}
    backends = ("native", "torch") if native.available() else ("torch",)
    for backend in backends:
        fits[backend] = HybridBPR(backend=backend, **params).fit(train)
        again = HybridBPR(backend=backend, **params).fit(train)
        np.testing.assert_array_equal(fits[backend].item_embeddings_, again.item_embeddings_)
    if len(fits) == 2:
        np.testing.assert_allclose(fits["native"].item_embeddings_, fits["torch"].item_embeddings_, atol=1e-3)
    assert np.isfinite(fits[backends[0]].score(test))


@pytest.mark.slow
def test_shared_negatives_train_a_useful_model():
    from skbpr.model_selection import train_test_split

    data = make_interactions(300, 200, 6000, random_state=0)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    common = dict(n_components=16, epochs=15, random_state=0, batch_size=256)
    per_positive = HybridBPR(**common).fit(train).score(test)
    for loss in ("bpr", "softmax"):
        shared = HybridBPR(loss=loss, shared_negatives=64, **common).fit(train).score(test)
        assert shared > 0.8 * per_positive


@pytest.mark.parametrize(
    ("params", "name", "message"),
    [
        ({"shared_negatives": -1}, "shared_negatives", "got -1"),
        ({"shared_negatives": 2.5}, "shared_negatives", "got 2.5"),
        ({"shared_negatives": "many"}, "shared_negatives", "got 'many'"),
        ({"shared_sampling": "zipf", "loss": "softmax"}, "shared_sampling", "got 'zipf'"),
        ({"shared_sampling": "popularity"}, "shared_sampling", "no shared negative"),
        ({"shared_negatives": 8, "loss": "warp"}, "shared_negatives", "loss='warp'"),
        ({"shared_negatives": 8, "loss": lambda p, n: (n - p[:, None]).mean()}, "shared_negatives", "callable"),
        ({"loss": "softmax", "negatives": "implicit"}, "shared_negatives", "negatives='implicit'"),
        ({"loss": "softmaxx"}, "loss", "softmax"),
        ({"loss": "softmax", "deterministic": False}, "deterministic", "no lock-free mode"),
        ({"shared_negatives": 8, "deterministic": False}, "deterministic", "resolves to 8"),
    ],
)
def test_bad_shared_parameters_are_refused_before_any_work(params, name, message):
    data = make_interactions(30, 20, 100, random_state=0)
    model = HybridBPR(n_components=4, epochs=1, **params)
    with pytest.raises(InvalidParameterError, match=name) as info:
        model.fit(data)
    assert message in str(info.value)
    assert not hasattr(model, "model_")
