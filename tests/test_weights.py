"""Interaction weights as confidences: the weighted loss in both engines, the transform, the option to ignore them."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from torch.nn.functional import softplus

from skbpr import HybridBPR, Interactions
from skbpr.datasets import make_interactions
from skbpr.losses import PAIRWISE_LOSSES, warp_weights
from skbpr.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training import TrainingProblem, make_optimizer, native
from skbpr.training.native import NativeKernel
from skbpr.training.torch_engine import Trainer
from skbpr.training.weighting import WEIGHTINGS, confidences

CPU = torch.device("cpu")
N_USERS, N_ITEMS, DIM = 11, 19, 4
SIGMA, MARGIN = 1.3, 0.7
needs_kernel = pytest.mark.skipif(not native.available(), reason="the compiled kernel is not built")


def _data(seed: int = 0):
    """Positives (canonical CSR), their samples and weights spanning 0 to 40 with ties."""
    rng = np.random.default_rng(seed)
    R = sp.random(N_USERS, N_ITEMS, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    R.data[:] = 1.0
    R.sort_indices()
    coo = R.tocoo()
    users, items = torch.as_tensor(coo.row, dtype=torch.int64), torch.as_tensor(coo.col, dtype=torch.int64)
    weights = rng.choice([0.0, 0.25, 1.0, 3.5, 40.0], size=coo.nnz).astype(np.float32)
    return R, users, items, torch.as_tensor(weights)


def _features(seed: int, modes=("both", "features")):
    rng = np.random.default_rng(seed)
    uf = sp.csr_matrix(rng.random((N_USERS, 3)) * (rng.random((N_USERS, 3)) < 0.6) + 0.05, dtype=np.float32)
    itf = sp.csr_matrix(rng.random((N_ITEMS, 2)) * (rng.random((N_ITEMS, 2)) < 0.6) + 0.05, dtype=np.float32)
    return build_feature_matrix(uf, N_USERS, modes[0]), build_feature_matrix(itf, N_ITEMS, modes[1])


def _engine(
    kind, R, users, items, weights, *, loss="bpr", m=3, alpha=0.2, lr=1.0, optimizer="sgd", batch_size=1024,
    features=(None, None), dtype=torch.float32, deterministic=True, seed=0, isa="",
):  # fmt: skip
    """A torch Trainer or a compiled kernel over one fresh model (same initial weights for a seed)."""
    Fu, Fi = features
    user_map, item_map = FeatureMap(Fu, N_USERS, CPU), FeatureMap(Fi, N_ITEMS, CPU)
    model = HybridFactorization(
        user_map.n_features, item_map.n_features, DIM, init_std=0.5, generator=torch.Generator().manual_seed(seed)
    )
    model.item_weight.data[:, -1] = torch.linspace(-0.5, 0.5, model.item_weight.shape[0])
    if dtype == torch.float64:
        for fmap in (user_map, item_map):
            if not fmap.identity:
                fmap.data = fmap.data.double()
        model.user_weight = torch.nn.Parameter(model.user_weight.data.double(), requires_grad=False)
        model.item_weight = torch.nn.Parameter(model.item_weight.data.double(), requires_grad=False)
    problem = TrainingProblem(
        users=users, items=items, positives=R, negatives=None, sampling="uniform", implicit_ratio=0.5,
        user_map=user_map, item_map=item_map, loss=loss, sigma=SIGMA, margin=MARGIN, alpha=alpha,
        draws_per_sample=m, batch_size=batch_size, weights=weights,
    )  # fmt: skip
    opt_u = make_optimizer(optimizer, model.user_weight.data, lr)
    opt_i = make_optimizer(optimizer, model.item_weight.data, lr)
    if kind == "torch":
        return Trainer(problem, model, opt_u, opt_i)
    return NativeKernel(problem, model, opt_u, opt_i, deterministic=deterministic, isa=isa)


def _dense(fmap_matrix, n):
    return (
        torch.eye(n, dtype=torch.float64)
        if fmap_matrix is None
        else torch.as_tensor(fmap_matrix.toarray(), dtype=torch.float64)
    )


def _weighted_reference(loss, Fu, Fi, U0, V0, users, items, negatives, weights, alpha):
    """Gradient of ``sum_i c_i L_i / B + L2`` by autograd, with each loss written out per positive."""
    U = U0.double().clone().requires_grad_(True)
    V = V0.double().clone().requires_grad_(True)
    Fu_t, Fi_t = _dense(Fu, N_USERS), _dense(Fi, N_ITEMS)
    b, m = negatives.shape
    u = Fu_t[users] @ U
    i = Fi_t[items] @ V
    j = (Fi_t[negatives.reshape(-1)] @ V).view(b, m, -1)
    pos = (u * i[:, :DIM]).sum(1) + i[:, DIM]
    neg = torch.einsum("bd,bmd->bm", u, j[:, :, :DIM]) + j[:, :, DIM]
    if loss == "bpr":
        per_positive = softplus(-SIGMA * (pos[:, None] - neg)).mean(1)
    elif loss == "logistic":
        per_positive = softplus(-pos) + softplus(neg).mean(1)
    elif loss == "hinge":
        per_positive = torch.relu(MARGIN - (pos[:, None] - neg)).mean(1)
    elif loss == "softmax":
        per_positive = torch.logsumexp(SIGMA * torch.cat([pos[:, None], neg], 1), 1) - SIGMA * pos
    else:
        first, rank_weight = warp_weights(pos.detach(), neg.detach(), n_items=N_ITEMS, margin=MARGIN)
        chosen = neg.gather(1, first[:, None])[:, 0]
        per_positive = rank_weight * torch.relu(MARGIN - pos + chosen)
    value = (weights.double() * per_positive).sum() / b
    scored = torch.ones(b, m, dtype=torch.float64)
    if loss == "warp":  # candidates after the first violation are neither scored nor regularised
        violates = neg.detach() > pos.detach()[:, None] - MARGIN
        used = torch.where(violates.any(dim=1), violates.to(torch.uint8).argmax(dim=1) + 1, m)
        scored = (torch.arange(m)[None, :] < used[:, None]).double()
    l2 = alpha / b * (u.pow(2).sum() + i.pow(2).sum() + (j.pow(2).sum(2) * scored).sum() / m)
    g_u, g_v = torch.autograd.grad(value + l2, (U, V))
    return float(value.detach()), g_u, g_v


def _negatives(users, m, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, N_ITEMS, (users.numel(), m), generator=gen)


# ------------------------------------------------------------------ the weighted loss, against autograd
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_torch_engine_takes_the_gradient_of_the_weighted_loss(loss, alpha):
    R, users, items, weights = _data()
    m = 4 if loss == "warp" else 3
    Fu, Fi = _features(1)
    trainer = _engine("torch", R, users, items, weights, loss=loss, m=m, alpha=alpha, features=(Fu, Fi),
                      dtype=torch.float64)  # fmt: skip
    negatives = _negatives(users, m)
    U0, V0 = trainer.model.user_weight.data.clone(), trainer.model.item_weight.data.clone()
    value, (ur, ug), (ir, ig) = trainer.gradients(users, items, negatives, weights.double())
    ref_value, ref_u, ref_v = _weighted_reference(loss, Fu, Fi, U0, V0, users, items, negatives, weights, alpha)
    assert float(value) == pytest.approx(ref_value, rel=1e-10)
    torch.testing.assert_close(torch.zeros_like(U0).index_add_(0, ur, ug), ref_u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.zeros_like(V0).index_add_(0, ir, ig), ref_v, rtol=1e-10, atol=1e-12)
    # and the weights matter: the unweighted gradient is another one
    _, (_, ug1), _ = trainer.gradients(users, items, negatives)
    assert not torch.allclose(torch.zeros_like(U0).index_add_(0, ur, ug1), ref_u, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "lock-free"])
@pytest.mark.parametrize("features", ["identity", "features"])
def test_kernel_step_is_the_gradient_of_the_weighted_loss(loss, deterministic, features):
    # deterministic: one SGD step (learning rate 1) over one batch of every positive, negatives fixed,
    # moves the tables by minus the gradient of the weighted loss; lock-free (one thread): the weighted
    # per-positive steps of torch, one positive at a time
    R, users, items, weights = _data(seed=2)
    m = 4 if loss == "warp" else 3
    Fu, Fi = _features(2) if features == "features" else (None, None)
    alpha = 0.3 if deterministic else 0.0
    kernel = _engine("native", R, users, items, weights, loss=loss, m=m, alpha=alpha, features=(Fu, Fi),
                     deterministic=deterministic, batch_size=users.numel())  # fmt: skip
    negatives = _negatives(users, m)
    U0, V0 = kernel.model.user_weight.data.clone(), kernel.model.item_weight.data.clone()
    total = kernel.train(0, users.numel(), seed=0, n_threads=2 if deterministic else 1, shuffle=False,
                         negatives=negatives)  # fmt: skip
    ref_value, ref_u, ref_v = _weighted_reference(loss, Fu, Fi, U0, V0, users, items, negatives, weights, alpha)
    if deterministic:
        assert total / users.numel() == pytest.approx(ref_value, rel=1e-5)
        torch.testing.assert_close((U0 - kernel.model.user_weight.data).double(), ref_u, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close((V0 - kernel.model.item_weight.data).double(), ref_v, rtol=1e-4, atol=1e-5)
    else:
        # lock-free, one thread: the same weighted per-positive steps, each seeing the previous ones
        trainer = _engine("torch", R, users, items, weights, loss=loss, m=m, alpha=alpha, features=(Fu, Fi))
        b = users.numel()
        for q in range(b):
            sl = slice(q, q + 1)
            _, (ur, ug), (ir, ig) = trainer.gradients(users[sl], items[sl], negatives[sl], weights[sl])
            trainer.item_optimizer.step(ir, ig / b)
            trainer.user_optimizer.step(ur, ug / b)
        torch.testing.assert_close(kernel.model.user_weight.data, trainer.model.user_weight.data, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(kernel.model.item_weight.data, trainer.model.item_weight.data, rtol=1e-4, atol=1e-5)


ISAS = native._extension()[0].SUPPORTED_ISAS if native.available() else []


@needs_kernel
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("loss", ["bpr", "warp"])
def test_every_build_of_the_kernel_weighs_alike(isa, loss):
    # the AVX2 build and the portable one compile the same source: both take the weighted step
    R, users, items, weights = _data(seed=5)
    m = 4 if loss == "warp" else 3
    Fu, Fi = _features(5)
    kernel = _engine("native", R, users, items, weights, loss=loss, m=m, features=(Fu, Fi), isa=isa,
                     batch_size=users.numel())  # fmt: skip
    assert kernel.isa == isa
    negatives = _negatives(users, m)
    U0, V0 = kernel.model.user_weight.data.clone(), kernel.model.item_weight.data.clone()
    kernel.train(0, users.numel(), seed=0, n_threads=2, shuffle=False, negatives=negatives)
    _, ref_u, ref_v = _weighted_reference(loss, Fu, Fi, U0, V0, users, items, negatives, weights, 0.2)
    torch.testing.assert_close((U0 - kernel.model.user_weight.data).double(), ref_u, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close((V0 - kernel.model.item_weight.data).double(), ref_v, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ exact equivalences
def _train(kind, weights, epochs=2, n_threads=2, **kwargs):
    R, users, items, _ = _data(seed=4)
    runner = _engine(kind, R, users, items, weights, batch_size=16, **kwargs)
    losses = [runner.epoch(s) if kind == "torch" else runner.epoch(s, n_threads=n_threads) for s in range(epochs)]
    return torch.cat([runner.model.user_weight.data.flatten(), runner.model.item_weight.data.flatten()]), losses


KINDS = ["torch", pytest.param("native", marks=needs_kernel)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
def test_all_ones_weights_train_bit_for_bit_as_no_weights(kind, loss, optimizer):
    n = _data(seed=4)[1].numel()
    ones, ones_loss = _train(kind, torch.ones(n), loss=loss, optimizer=optimizer, lr=0.05)
    none, none_loss = _train(kind, None, loss=loss, optimizer=optimizer, lr=0.05)
    assert torch.equal(ones, none)
    assert ones_loss == pytest.approx(none_loss, rel=1e-6)


@needs_kernel
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
def test_all_ones_weights_are_bit_identical_in_the_lock_free_kernel(loss):
    n = _data(seed=4)[1].numel()
    # one thread: the lock-free mode is reproducible there
    kwargs = dict(loss=loss, lr=0.05, optimizer="adagrad", deterministic=False, n_threads=1)
    ones, ones_loss = _train("native", torch.ones(n), **kwargs)
    none, none_loss = _train("native", None, **kwargs)
    assert torch.equal(ones, none) and ones_loss == none_loss


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
def test_weight_two_everywhere_is_twice_the_sgd_learning_rate_exactly(kind, loss):
    # without L2 every gradient doubles exactly (a power of two), and so does an SGD step
    n = _data(seed=4)[1].numel()
    doubled, doubled_loss = _train(kind, torch.full((n,), 2.0), loss=loss, optimizer="sgd", lr=0.05, alpha=0.0)
    fast, fast_loss = _train(kind, None, loss=loss, optimizer="sgd", lr=0.1, alpha=0.0)
    assert torch.equal(doubled, fast)
    assert doubled_loss[0] == pytest.approx(2 * fast_loss[0], rel=1e-6)  # the first epoch starts from one model


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
def test_a_zero_weight_positive_moves_nothing_without_l2(kind, optimizer):
    R, users, items, _ = _data(seed=4)
    weights = torch.ones(users.numel())
    weights[users == users[0]] = 0.0  # every positive of the first user
    runner = _engine(kind, R, users, items, weights, optimizer=optimizer, lr=0.1, alpha=0.0, batch_size=16)
    others = torch.unique(users[users != users[0]])
    table = runner.model.user_weight.data
    user_row, other_rows = table[users[0]].clone(), table[others].clone()
    if kind == "torch":
        runner.epoch(0)
    else:
        runner.epoch(0, n_threads=2)
    assert torch.equal(table[users[0]], user_row)
    assert (table[others] != other_rows).any(dim=1).all()  # every other user moved


@needs_kernel
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
def test_native_and_torch_train_the_same_weights_with_weights(loss, optimizer):
    data = make_interactions(100, 60, 1100, n_item_features=5, random_state=1)
    plays = np.random.default_rng(0).pareto(1.0, data.n_positives) * 20 + 1
    weighted = Interactions(data.pos_users, data.pos_items, pos_values=plays, n_users=data.n_users,
                            n_items=data.n_items, item_features=data.item_features)  # fmt: skip
    params = dict(n_components=8, loss=loss, optimizer=optimizer, weighting="log", n_negatives=2, learning_rate=0.05,
                  epochs=3, batch_size=256, random_state=7, n_threads=1)  # fmt: skip
    fits = [HybridBPR(backend=backend, **params).fit(weighted) for backend in ("native", "torch")]
    assert [f.backend_ for f in fits] == ["native", "torch"]
    for name in ("user_embeddings_", "item_embeddings_", "item_biases_"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name), atol=2e-4, rtol=0)
    np.testing.assert_allclose([h["loss"] for h in fits[0].history_], [h["loss"] for h in fits[1].history_], rtol=1e-4)
    unweighted = HybridBPR(backend="native", **{**params, "weighting": "none"})
    with pytest.warns(UserWarning, match="treated as binary"):
        unweighted.fit(weighted)
    engines = np.abs(fits[0].item_embeddings_ - fits[1].item_embeddings_).max()
    assert np.abs(unweighted.item_embeddings_ - fits[0].item_embeddings_).max() > 10 * engines


# ------------------------------------------------------------------ the estimator
def _weighted_matrix(seed=0):
    data = make_interactions(80, 60, 900, random_state=seed)
    R = data.positives.copy()
    R.data = np.random.default_rng(seed).integers(1, 500, R.nnz).astype(np.float32)
    return R


FAST = dict(n_components=8, epochs=3, batch_size=128, random_state=0, n_threads=1, device="cpu")


@pytest.mark.parametrize("weighting", ["log", "linear", np.sqrt])
def test_binary_data_trains_bit_for_bit_as_without_weighting(weighting):
    R = _weighted_matrix()
    R.data[:] = 1.0
    plain = HybridBPR(weighting="none", **FAST).fit(R)
    weighted = HybridBPR(weighting=weighting, **FAST).fit(R)
    assert np.array_equal(plain.item_embeddings_, weighted.item_embeddings_)
    assert np.array_equal(plain.user_embeddings_, weighted.user_embeddings_)
    assert plain.history_ == weighted.history_
    np.testing.assert_array_equal(weighted.confidences_.toarray(), R.toarray())  # every confidence is 1
    # constant values other than 1 too: they carry no information to weigh by
    R.data[:] = 7.0
    assert np.array_equal(HybridBPR(weighting=weighting, **FAST).fit(R).item_embeddings_, plain.item_embeddings_)


def test_weighting_none_ignores_the_values_and_says_so():
    R = _weighted_matrix()
    binary = R.copy()
    binary.data[:] = 1.0
    with pytest.warns(UserWarning, match=r"treated as binary.*weighting='log'"):
        ignored = HybridBPR(weighting="none", **FAST).fit(R)
    assert np.array_equal(ignored.item_embeddings_, HybridBPR(weighting="none", **FAST).fit(binary).item_embeddings_)
    np.testing.assert_array_equal(ignored.confidences_.data, np.ones(R.nnz, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # values in use: no warning about them
        used = HybridBPR(weighting="log", **FAST).fit(R)
    assert not np.allclose(used.item_embeddings_, ignored.item_embeddings_, atol=1e-3)


@pytest.mark.parametrize("weighting", ["log", "linear", np.sqrt])
def test_confidences_are_the_transform_scaled_to_mean_one(weighting):
    R = _weighted_matrix(seed=1)
    model = HybridBPR(weighting=weighting, **FAST).fit(R)
    fitted = model.confidences_
    assert (fitted.indptr == R.indptr).all() and (fitted.indices == R.indices).all()
    transform = {"log": np.log1p, "linear": lambda w: w}.get(weighting, weighting)
    t = transform(R.data.astype(np.float64))
    np.testing.assert_allclose(fitted.data, t / t.mean(), rtol=1e-6)
    assert fitted.data.dtype == np.float32 and fitted.data.mean() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(confidences(R.data, weighting), fitted.data, rtol=0)


def test_confidence_functions():
    np.testing.assert_array_equal(confidences([5, 5, 5], "linear"), [1, 1, 1])
    np.testing.assert_array_equal(confidences([1, 2, 350000], "none"), [1, 1, 1])
    np.testing.assert_allclose(confidences([1, 3], "linear"), [0.5, 1.5])
    log = confidences([1, 350000], "log")
    np.testing.assert_allclose(log, np.log1p([1, 350000]) / np.log1p([1, 350000]).mean(), rtol=1e-6)
    assert log[1] / log[0] == pytest.approx(np.log1p(350000) / np.log(2), rel=1e-6)  # 18x, not 350000x
    assert confidences([], "log").shape == (0,)
    np.testing.assert_allclose(confidences([1.0, 3.0], lambda w: w * 1e307), [0.5, 1.5])  # no overflow to inf
    assert WEIGHTINGS == ("none", "log", "linear")


def test_users_that_cannot_train_get_confidence_zero():
    R = sp.csr_matrix(np.array([[2, 3, 4], [1, 0, 0], [0, 5, 0]], dtype=np.float32))
    with pytest.warns(UserWarning, match="every item as a positive"):
        model = HybridBPR(weighting="linear", **FAST).fit(R)
    np.testing.assert_allclose(model.confidences_.toarray(), [[0, 0, 0], [1 / 3, 0, 0], [0, 5 / 3, 0]], rtol=1e-6)


def test_weights_steer_training_towards_heavy_positives():
    # every user has 8 random positives; those among items 0-19 weigh 50, those among 20-39 weigh 1.
    # With weights the heavy items' biases climb above the light ones'; without, they stay level.
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 40
    rows = np.repeat(np.arange(n_users), 8)
    cols = np.concatenate([rng.choice(n_items, 8, replace=False) for _ in range(n_users)])
    values = np.where(cols < 20, 50.0, 1.0).astype(np.float32)
    R = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items))
    params = dict(FAST, epochs=20, user_features_mode="identity", item_features_mode="identity")
    gaps = {}
    for weighting in ("none", "linear"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            bias = HybridBPR(weighting=weighting, **params).fit(R).item_biases_
        gaps[weighting] = bias[:20].mean() - bias[20:].mean()
    assert abs(gaps["none"]) < 0.1
    assert gaps["linear"] > 0.3


# ------------------------------------------------------------------ bad values
@pytest.mark.parametrize("weighting", ["sqrt", "", None, 1, ["log"]])
def test_bad_weighting_raises_before_any_work(weighting):
    model = HybridBPR(weighting=weighting, **FAST)
    with pytest.raises(ValueError, match=r"weighting must be one of \('none', 'log', 'linear'\) or a callable, got"):
        model.fit(_weighted_matrix())
    assert not hasattr(model, "model_")


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (lambda w: w[:-1], r"must return one value per positive, shape \(\d+,\), got shape"),
        (lambda w: -w, r"must return finite values >= 0, got \[-"),
        (lambda w: w * np.nan, r"must return finite values >= 0, got \[nan"),
        (lambda w: w * 0, r"returned 0 for every positive"),
        (lambda w: "heavy", r"must return numbers, one per positive, got str"),
    ],
)
def test_a_weighting_callable_with_bad_output_raises_naming_it(transform, message):
    model = HybridBPR(weighting=transform, **FAST)
    with pytest.raises(ValueError, match=r"weighting callable <lambda> " + message):
        model.fit(_weighted_matrix())
    assert not hasattr(model, "model_")
    # a fitted model is left as it was
    fitted = HybridBPR(**FAST).fit(_weighted_matrix())
    before, history = fitted.item_embeddings_, list(fitted.history_)
    with pytest.raises(ValueError, match=r"weighting callable <lambda> " + message):
        fitted.set_params(weighting=transform, warm_start=True).fit(_weighted_matrix())
    np.testing.assert_array_equal(fitted.item_embeddings_, before)
    assert fitted.history_ == history


@needs_kernel
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("short", r"weights has shape \(3,\), expected \d+ along axis 0"),
        ("negative", r"weights must be finite and >= 0, got -1\.0+ at sample 2"),
        ("nan", r"weights must be finite and >= 0, got nan at sample 2"),
        ("inf", r"weights must be finite and >= 0, got inf at sample 2"),
    ],
)
def test_the_kernel_refuses_bad_weights_naming_them(bad, message):
    R, users, items, weights = _data()
    weights = weights[:3].clone() if bad == "short" else weights.clone()
    if bad != "short":
        weights[2] = {"negative": -1.0, "nan": float("nan"), "inf": float("inf")}[bad]
    with pytest.raises(ValueError, match=message):
        _engine("native", R, users, items, weights)


# ------------------------------------------------------------------ partial_fit keeps the fit's normaliser
def _two_valued(low: float, high: float, seed: int = 0) -> sp.csr_matrix:
    """The positives of ``_weighted_matrix``, half of them (every other one) weighing ``low``, the others ``high``."""
    R = _weighted_matrix(seed)
    R.data = np.where(np.arange(R.nnz) % 2 == 0, low, high).astype(np.float32)
    return R


def _constant(R: sp.csr_matrix, value: float) -> sp.csr_matrix:
    out = R.copy()
    out.data[:] = value
    return out


def test_partial_fit_keeps_the_confidence_scale_of_the_fit():
    R = _two_valued(1.0, 100.0)
    model = HybridBPR(weighting="log", **FAST).fit(R)
    first_mean = np.log1p(R.data.astype(np.float64)).mean()  # (log 2 + log 101) / 2, by hand
    assert first_mean == pytest.approx((np.log(2) + np.log(101)) / 2, rel=1e-12)
    assert model.confidence_scale_ == pytest.approx(first_mean, rel=1e-12)
    model.partial_fit(_constant(R, 100.0))
    expected = np.float32(np.log(101) / first_mean)  # about 1.74: those positives' confidence in the fit
    assert expected > 1.7
    np.testing.assert_allclose(model.confidences_.data, np.full(R.nnz, expected), rtol=1e-7)
    assert model.confidence_scale_ == pytest.approx(first_mean, rel=1e-12)  # kept, not re-measured
    assert len(model.history_) == FAST["epochs"] + 1
    # a fit on the same batch measures its own mean again: every confidence 1
    np.testing.assert_array_equal(HybridBPR(weighting="log", **FAST).fit(_constant(R, 100.0)).confidences_.data, 1)


@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=needs_kernel)])
def test_partial_fit_trains_with_the_kept_confidences(backend):
    # linear weights 25 and 75 in the fit: mean 50. A batch of weights 100 has confidence 2, one of weights 50
    # confidence 1; without L2, SGD takes exactly twice the step at confidence 2, i.e. the step of twice the
    # learning rate at confidence 1. Renormalising per batch would train both batches alike.
    params = dict(FAST, weighting="linear", optimizer="sgd", alpha=0.0, learning_rate=0.05, backend=backend)
    R = _two_valued(25.0, 75.0)
    fitted = HybridBPR(**params).fit(R)
    assert fitted.confidence_scale_ == pytest.approx(50.0, rel=1e-12)
    heavy, light = pickle.loads(pickle.dumps(fitted)), pickle.loads(pickle.dumps(fitted))
    heavy.partial_fit(_constant(R, 100.0))
    light.set_params(learning_rate=0.1).partial_fit(_constant(R, 50.0))
    np.testing.assert_array_equal(heavy.confidences_.data, 2.0)
    np.testing.assert_array_equal(light.confidences_.data, 1.0)
    assert np.array_equal(heavy.user_embeddings_, light.user_embeddings_)
    assert np.array_equal(heavy.item_embeddings_, light.item_embeddings_)
    assert not np.array_equal(heavy.item_embeddings_, fitted.item_embeddings_)  # and the epoch moved them
    same_lr = pickle.loads(pickle.dumps(fitted)).partial_fit(_constant(R, 50.0))
    assert not np.allclose(same_lr.item_embeddings_, heavy.item_embeddings_, atol=1e-6)


def test_partial_fit_on_an_unfitted_model_measures_the_scale_on_its_batch():
    R = _two_valued(1.0, 100.0)
    first = HybridBPR(weighting="log", **FAST).partial_fit(R)
    np.testing.assert_array_equal(first.confidences_.data, confidences(R.data, "log"))
    assert first.confidences_.data.mean() == pytest.approx(1.0, rel=1e-6)
    assert first.confidence_scale_ == pytest.approx(np.log1p(R.data.astype(np.float64)).mean(), rel=1e-12)
    np.testing.assert_array_equal(first.confidences_.data, HybridBPR(weighting="log", **FAST).fit(R).confidences_.data)
    # and the next batch keeps it
    first.partial_fit(_constant(R, 100.0))
    np.testing.assert_allclose(first.confidences_.data, np.log(101) / first.confidence_scale_, rtol=1e-7)


@pytest.mark.parametrize("weighting", ["log", "linear", np.sqrt])
def test_binary_data_under_partial_fit_trains_bit_for_bit_as_without_weighting(weighting):
    R = _constant(_weighted_matrix(), 1.0)
    plain = HybridBPR(weighting="none", **FAST).fit(R).partial_fit(R)
    weighted = HybridBPR(weighting=weighting, **FAST).fit(R).partial_fit(R)
    np.testing.assert_array_equal(weighted.confidences_.data, 1.0)
    assert np.array_equal(plain.item_embeddings_, weighted.item_embeddings_)
    assert np.array_equal(plain.user_embeddings_, weighted.user_embeddings_)
    assert plain.history_ == weighted.history_
    assert plain.confidence_scale_ == 1.0
    transform = {"log": np.log1p, "linear": lambda w: w}.get(weighting, weighting)
    assert weighted.confidence_scale_ == transform(1.0)  # t(1): the unit binary data sets
    # constant values other than 1 in the fit, the same values in the batch: still every confidence exactly 1
    seven = HybridBPR(weighting=weighting, **FAST).fit(_constant(R, 7.0)).partial_fit(_constant(R, 7.0))
    np.testing.assert_array_equal(seven.confidences_.data, 1.0)
    assert np.array_equal(seven.item_embeddings_, plain.item_embeddings_)


def test_partial_fit_with_weighting_none_ignores_the_values():
    R = _two_valued(1.0, 100.0)
    with pytest.warns(UserWarning, match="treated as binary"):
        model = HybridBPR(weighting="none", **FAST).fit(R)
    with pytest.warns(UserWarning, match="treated as binary"):
        model.partial_fit(_constant(R, 100.0) * 3)
    np.testing.assert_array_equal(model.confidences_.data, 1.0)
    assert model.confidence_scale_ == 1.0


@pytest.mark.parametrize("new", ["linear", "none", np.sqrt])
def test_partial_fit_with_another_weighting_raises_and_leaves_the_model(new):
    R = _two_valued(1.0, 100.0)
    model = HybridBPR(weighting="log", **FAST).fit(R)
    before, scale, history = model.item_embeddings_, model.confidence_scale_, list(model.history_)
    model.set_params(weighting=new)
    with pytest.raises(ValueError, match=r"partial_fit cannot continue the fitted model: weighting went from 'log' to"):
        model.partial_fit(R)
    np.testing.assert_array_equal(model.item_embeddings_, before)
    assert model.confidence_scale_ == scale and model.history_ == history
    model.set_params(weighting="log").partial_fit(R)  # back to the fit's weighting: it continues
    assert len(model.history_) == len(history) + 1


def test_partial_fit_refuses_weights_whose_confidence_overflows_float32():
    R = _two_valued(1.0, 2.0)
    model = HybridBPR(weighting=lambda w: w**8, **FAST).fit(R)
    before = model.item_embeddings_
    with pytest.raises(ValueError, match=r"weights \[1000000\.0.*divided by the confidence scale .* overflow float32"):
        model.partial_fit(_constant(R, 1e6))  # 1e48 / ~130: beyond float32
    np.testing.assert_array_equal(model.item_embeddings_, before)
    with pytest.raises(ValueError, match=r"scale must be a finite number > 0 or None, got 0"):
        confidences([1.0], "log", 0)


def test_the_confidence_scale_survives_pickling_and_clone_drops_it():
    R = _two_valued(1.0, 100.0)
    model = HybridBPR(weighting="log", **FAST).fit(R)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.confidence_scale_ == model.confidence_scale_
    restored.partial_fit(_constant(R, 100.0))
    model.partial_fit(_constant(R, 100.0))
    np.testing.assert_array_equal(restored.confidences_.data, model.confidences_.data)
    assert np.array_equal(restored.item_embeddings_, model.item_embeddings_)
    fresh = clone(model)
    assert not hasattr(fresh, "confidence_scale_")
    assert fresh.partial_fit(_constant(R, 100.0)).confidence_scale_ == pytest.approx(np.log(101), rel=1e-12)


def test_partial_fit_on_a_model_without_a_recorded_scale_warns_and_records_one():
    # a model pickled before skbpr recorded the scale: the batch normalises on its own mean, loudly
    R = _two_valued(1.0, 100.0)
    model = HybridBPR(weighting="log", **FAST).fit(R)
    del model.confidence_scale_
    with pytest.warns(UserWarning, match=r"fitted without recording confidence_scale_.*its own mean"):
        model.partial_fit(_constant(R, 100.0))
    np.testing.assert_array_equal(model.confidences_.data, 1.0)
    assert model.confidence_scale_ == pytest.approx(np.log(101), rel=1e-12)
