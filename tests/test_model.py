"""Feature maps, the hybrid model, the hand-written chain rule and the row optimisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr.losses import PAIRWISE_LOSSES, resolve_loss
from skbpr.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training import RowAdagrad, RowAdam, RowSGD, TrainingProblem, make_optimizer
from skbpr.training.torch_engine import Trainer

CPU = torch.device("cpu")


def _features(n_rows: int, n_features: int, seed: int, density: float = 0.4) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_features)) < density) * rng.uniform(0.5, 2.0, (n_rows, n_features))
    dense[1] = 0.0  # a row without any feature
    return sp.csr_matrix(dense.astype(np.float32))


def _double(fmap: FeatureMap) -> FeatureMap:
    if not fmap.identity:
        fmap.data = fmap.data.double()
    return fmap


# ------------------------------------------------------------- FeatureMap
def test_gather_equals_dense_product():
    F = _features(7, 5, seed=0)
    table = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    fmap = FeatureMap(F, 7, CPU)
    assert fmap.n_features == 5 and not fmap.identity
    rows = torch.tensor([3, 1, 0, 3, 6, 6, 2])
    expected = torch.as_tensor(F.toarray())[rows] @ table
    torch.testing.assert_close(fmap.gather(table, rows), expected)
    assert torch.all(fmap.gather(table, torch.tensor([1])) == 0)


def test_gather_sums_duplicate_entries():
    # row 0 stores column 2 twice (1.0 + 0.5), row 1 is column 0
    F = sp.csr_matrix((np.array([1.0, 0.5, 2.0], np.float32), np.array([2, 2, 0]), np.array([0, 2, 3])), shape=(2, 3))
    table = torch.arange(6, dtype=torch.float32).view(3, 2)
    out = FeatureMap(F, 2, CPU).gather(table, torch.tensor([0, 1]))
    torch.testing.assert_close(out, torch.tensor([[1.5 * 4, 1.5 * 5], [0.0, 2.0]]))


def test_expand_scatter_equals_autograd_of_gather():
    F = _features(8, 6, seed=1)
    fmap = _double(FeatureMap(F, 8, CPU))
    gen = torch.Generator().manual_seed(1)
    table = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([0, 5, 5, 2, 7, 1, 3])
    upstream = torch.randn(rows.numel(), 4, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((fmap.gather(table, rows) * upstream).sum(), table)
    cols, vals = fmap.table_gradients(rows, upstream)
    dense = torch.zeros(6, 4, dtype=torch.float64).index_add_(0, cols, vals)
    torch.testing.assert_close(dense, grad, rtol=1e-12, atol=1e-12)
    # and against the dense transpose product
    ref = torch.as_tensor(F.toarray(), dtype=torch.float64)[rows].T @ upstream
    torch.testing.assert_close(dense, ref, rtol=1e-6, atol=1e-6)


def test_identity_feature_map():
    fmap = FeatureMap(None, 5, CPU)
    assert fmap.identity and fmap.n_features == 5
    table = torch.randn(5, 3)
    rows = torch.tensor([4, 0, 4])
    assert torch.equal(fmap.gather(table, rows), table.index_select(0, rows))
    grads = torch.randn(3, 3)
    out_rows, out_grads = fmap.table_gradients(rows, grads)
    assert torch.equal(out_rows, rows) and torch.equal(out_grads, grads)


def test_build_feature_matrix_modes():
    F = _features(4, 3, seed=2)
    assert build_feature_matrix(F, 4, "identity") is None
    assert build_feature_matrix(None, 4, "features") is None
    assert build_feature_matrix(None, 4, "both") is None
    only = build_feature_matrix(F, 4, "features")
    assert sp.isspmatrix_csr(only) and only.dtype == np.float32
    np.testing.assert_array_equal(only.toarray(), F.toarray())
    both = build_feature_matrix(F, 4, "both")
    assert sp.isspmatrix_csr(both) and both.dtype == np.float32 and both.shape == (4, 7)
    np.testing.assert_array_equal(both.toarray()[:, :3], F.toarray())
    np.testing.assert_array_equal(both.toarray()[:, 3:], np.eye(4))


# ------------------------------------------------------------------ model
def test_hybrid_model_scores():
    model = HybridFactorization(6, 5, 3, init_std=0.5, generator=torch.Generator().manual_seed(0))
    assert model.user_weight.shape == (6, 3) and model.item_weight.shape == (5, 4)
    assert torch.all(model.item_weight[:, -1] == 0)
    assert not model.user_weight.requires_grad
    model.item_weight.data[:, -1] = torch.arange(5, dtype=torch.float32)
    users, items = FeatureMap(_features(4, 6, seed=3), 4, CPU), FeatureMap(None, 5, CPU)
    u_rows, i_rows = torch.tensor([0, 2, 3]), torch.tensor([4, 0, 1])
    Fu = torch.as_tensor(_features(4, 6, seed=3).toarray())
    u = Fu[u_rows] @ model.user_weight
    v = model.item_weight[i_rows]
    torch.testing.assert_close(model(users, items, u_rows, i_rows), (u * v[:, :3]).sum(1) + v[:, 3])
    all_u = model.user_vectors(users, torch.arange(4))
    all_v = model.item_vectors(items, torch.arange(5))
    full = HybridFactorization.scores(all_u, all_v)
    torch.testing.assert_close(full, Fu @ model.user_weight @ model.item_weight[:, :3].T + torch.arange(5.0))


def test_init_is_seeded():
    a = HybridFactorization(4, 4, 2, generator=torch.Generator().manual_seed(9))
    b = HybridFactorization(4, 4, 2, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.user_weight, b.user_weight) and torch.equal(a.item_weight, b.item_weight)
    assert a.user_weight.std().item() == pytest.approx(0.1, rel=0.6)


# ------------------------------------------- hand-written chain rule == autograd
N_USERS, N_ITEMS, N_UF, N_IF, DIM = 6, 9, 4, 5, 3


def _custom_loss(pos, neg):
    return torch.nn.functional.softplus(neg - pos[:, None]).pow(1.5).mean() + 0.05 * pos.pow(2).mean()


def _trainer(loss, m: int, alpha: float, seed: int) -> tuple[Trainer, sp.csr_matrix, sp.csr_matrix]:
    Fu = build_feature_matrix(_features(N_USERS, N_UF, seed=seed), N_USERS, "both")
    Fi = build_feature_matrix(_features(N_ITEMS, N_IF, seed=seed + 1), N_ITEMS, "both")
    user_map = _double(FeatureMap(Fu, N_USERS, CPU))
    item_map = _double(FeatureMap(Fi, N_ITEMS, CPU))
    model = HybridFactorization(
        Fu.shape[1], Fi.shape[1], DIM, init_std=0.7, generator=torch.Generator().manual_seed(seed)
    )
    model.user_weight = torch.nn.Parameter(model.user_weight.data.double(), requires_grad=False)
    item = model.item_weight.data.double()
    item[:, -1] = torch.randn(item.shape[0], generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)
    model.item_weight = torch.nn.Parameter(item, requires_grad=False)
    positives = sp.csr_matrix(np.eye(N_USERS, N_ITEMS, dtype=np.float32))
    problem = TrainingProblem(
        users=torch.arange(N_USERS),
        items=torch.arange(N_USERS),
        positives=positives,
        negatives=None,
        sampling="uniform",
        implicit_ratio=0.5,
        user_map=user_map,
        item_map=item_map,
        loss=loss,
        sigma=1.3,
        margin=0.9,
        alpha=alpha,
        draws_per_sample=m,
        batch_size=4,
    )
    trainer = Trainer(problem, model, RowSGD(model.user_weight.data, 0.1), RowSGD(model.item_weight.data, 0.1))
    return trainer, Fu, Fi


def _reference(loss, Fu, Fi, U0, V0, users, items, negatives, alpha):
    """Loss and dense table gradients by autograd through dense feature products."""
    loss_fn, _ = resolve_loss(loss, sigma=1.3, margin=0.9, n_items=N_ITEMS)
    U = U0.clone().requires_grad_(True)
    V = V0.clone().requires_grad_(True)
    Fu_t = torch.as_tensor(Fu.toarray(), dtype=torch.float64)
    Fi_t = torch.as_tensor(Fi.toarray(), dtype=torch.float64)
    b, m = negatives.shape
    u = Fu_t[users] @ U
    i = Fi_t[items] @ V
    j = (Fi_t[negatives.reshape(-1)] @ V).view(b, m, -1)
    pos = (u * i[:, :DIM]).sum(1) + i[:, DIM]
    neg = torch.einsum("bd,bmd->bm", u, j[:, :, :DIM]) + j[:, :, DIM]
    value = loss_fn(pos, neg)
    used = torch.ones((b, m), dtype=j.dtype)  # the negatives that take an L2 term
    if loss == "warp":  # those up to the first violation (all when none violates)
        violates = neg.detach() > pos.detach()[:, None] - 0.9
        last = torch.where(violates.any(1), violates.to(torch.uint8).argmax(1) + 1, m)
        used = (torch.arange(1, m + 1)[None, :] <= last[:, None]).to(j.dtype)
    l2 = alpha / b * (u.pow(2).sum() + i.pow(2).sum() + (j.pow(2).sum(2) * used).sum() / m)
    g_u, g_v = torch.autograd.grad(value + l2, (U, V))
    return value.detach(), g_u, g_v


@pytest.mark.parametrize("loss", [*PAIRWISE_LOSSES, _custom_loss], ids=[*PAIRWISE_LOSSES, "callable"])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_fast_path_equals_autograd(loss, m, alpha):
    trainer, Fu, Fi = _trainer(loss, m, alpha, seed=m)
    gen = torch.Generator().manual_seed(11)
    users = torch.tensor([0, 3, 3, 5, 1, 2, 4])
    items = torch.randint(0, N_ITEMS, (users.numel(),), generator=gen)
    negatives = torch.randint(0, N_ITEMS, (users.numel(), m), generator=gen)
    negatives[0, 0] = items[1]  # an item both positive and negative in one batch
    U0 = trainer.model.user_weight.data.clone()
    V0 = trainer.model.item_weight.data.clone()
    loss_value, (u_rows, u_grads), (i_rows, i_grads) = trainer.gradients(users, items, negatives)
    dense_u = torch.zeros_like(U0).index_add_(0, u_rows, u_grads)
    dense_v = torch.zeros_like(V0).index_add_(0, i_rows, i_grads)
    ref_loss, ref_u, ref_v = _reference(loss, Fu, Fi, U0, V0, users, items, negatives, alpha)
    torch.testing.assert_close(loss_value, ref_loss, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense_u, ref_u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense_v, ref_v, rtol=1e-10, atol=1e-12)
    assert dense_v.abs().sum() > 0 and dense_u.abs().sum() > 0
    # gradients leave the weights alone
    assert torch.equal(trainer.model.user_weight.data, U0) and torch.equal(trainer.model.item_weight.data, V0)


def test_fast_path_identity_maps_equal_autograd():
    trainer, _, _ = _trainer("bpr", 2, 0.2, seed=5)
    n_uf, n_if = trainer.model.user_weight.shape[0], trainer.model.item_weight.shape[0]
    trainer.user_map, trainer.item_map = FeatureMap(None, n_uf, CPU), FeatureMap(None, n_if, CPU)
    users = torch.tensor([0, 1, 1, 6])
    items = torch.tensor([2, 8, 8, 12])
    negatives = torch.tensor([[3, 3], [0, 12], [1, 2], [8, 5]])
    _, (u_rows, u_grads), (i_rows, i_grads) = trainer.gradients(users, items, negatives)
    U0, V0 = trainer.model.user_weight.data, trainer.model.item_weight.data
    dense_u = torch.zeros_like(U0).index_add_(0, u_rows, u_grads)
    dense_v = torch.zeros_like(V0).index_add_(0, i_rows, i_grads)
    eye_u = sp.identity(n_uf, format="csr")
    eye_i = sp.identity(n_if, format="csr")
    _, ref_u, ref_v = _reference("bpr", eye_u, eye_i, U0, V0, users, items, negatives, 0.2)
    torch.testing.assert_close(dense_u, ref_u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense_v, ref_v, rtol=1e-10, atol=1e-12)


def test_trainer_step_updates_touched_rows_only():
    trainer, _, _ = _trainer("bpr", 2, 0.1, seed=7)
    trainer.user_map = FeatureMap(None, trainer.model.user_weight.shape[0], CPU)
    trainer.item_map = FeatureMap(None, trainer.model.item_weight.shape[0], CPU)
    U0 = trainer.model.user_weight.data.clone()
    loss = trainer.step(torch.tensor([0, 2]), torch.tensor([0, 2]), torch.arange(2), 0)
    assert math.isfinite(float(loss))
    changed = (trainer.model.user_weight.data != U0).any(1).nonzero().flatten().tolist()
    assert changed == [0, 2]


# -------------------------------------------------------------- optimisers
STEPS = [
    (torch.tensor([0, 2, 2, 5]), 0),
    (torch.tensor([2, 3, 3, 3]), 1),
    (torch.tensor([5, 0, 2]), 2),
]


def _grads(rows: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randn(rows.numel(), 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _dense(rows: torch.Tensor, grads: torch.Tensor, n: int = 7) -> torch.Tensor:
    return torch.zeros(n, grads.shape[1], dtype=grads.dtype).index_add_(0, rows, grads)


def _start() -> torch.Tensor:
    return torch.randn(7, 3, generator=torch.Generator().manual_seed(42), dtype=torch.float64)


@pytest.mark.parametrize(
    "row_cls,torch_opt",
    [
        (RowSGD, lambda p: torch.optim.SGD([p], lr=0.3)),
        (RowAdagrad, lambda p: torch.optim.Adagrad([p], lr=0.3, initial_accumulator_value=0.0, eps=1e-10)),
    ],
)
def test_row_optimizer_matches_torch(row_cls, torch_opt):
    table = _start()
    ref = torch.nn.Parameter(table.clone())
    opt = row_cls(table, 0.3)
    ref_opt = torch_opt(ref)
    for rows, seed in STEPS:
        grads = _grads(rows, seed)
        opt.step(rows, grads.clone())
        ref_opt.zero_grad()
        ref.grad = _dense(rows, grads)
        ref_opt.step()
        torch.testing.assert_close(table, ref.data, rtol=1e-12, atol=1e-12)
    untouched = [1, 4, 6]
    assert torch.equal(table[untouched], _start()[untouched])
    assert not torch.equal(table, _start())


def test_row_adam_is_lazy_adam():
    table = _start()
    lr, (b1, b2), eps = 0.05, (0.9, 0.999), 1e-8
    opt = RowAdam(table, lr)
    expected = _start().numpy().copy()
    m = np.zeros_like(expected)
    v = np.zeros_like(expected)
    sparse_ref = torch.nn.Parameter(_start().float())
    sparse_opt = torch.optim.SparseAdam([sparse_ref], lr=lr, betas=(b1, b2), eps=eps)
    for t, (rows, seed) in enumerate(STEPS, start=1):
        grads = _grads(rows, seed)
        opt.step(rows, grads.clone())
        touched = np.unique(rows.numpy())
        g = _dense(rows, grads).numpy()[touched]
        m[touched] = b1 * m[touched] + (1 - b1) * g
        v[touched] = b2 * v[touched] + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        expected[touched] -= step * m[touched] / (np.sqrt(v[touched]) + eps)
        np.testing.assert_allclose(table.numpy(), expected, rtol=1e-12, atol=1e-12)
        sparse_opt.zero_grad()
        sparse_ref.grad = torch.sparse_coo_tensor(rows[None, :], grads.float(), (7, 3), check_invariants=True)
        sparse_opt.step()
        np.testing.assert_allclose(table.numpy(), sparse_ref.data.double().numpy(), rtol=1e-5, atol=1e-6)
    assert int(opt.state["t"]) == 3
    untouched = [1, 4, 6]
    assert torch.equal(table[untouched], _start()[untouched])
    assert torch.all(opt.state["m"][untouched] == 0) and torch.all(opt.state["v"][untouched] == 0)


def test_row_adagrad_untouched_rows_keep_zero_accumulator():
    table = _start()
    opt = RowAdagrad(table, 0.1)
    opt.step(torch.tensor([3, 3]), torch.ones(2, 3, dtype=torch.float64))
    acc = opt.state["sum_sq"]
    torch.testing.assert_close(acc[3], torch.full((3,), 4.0, dtype=torch.float64))
    assert torch.all(acc[[0, 1, 2, 4, 5, 6]] == 0)
    # first Adagrad step on a row moves each coordinate by lr (sign of the gradient)
    torch.testing.assert_close(table[3], _start()[3] - 0.1, rtol=1e-9, atol=1e-9)


def test_optimizer_state_round_trip():
    table = _start()
    opt = RowAdam(table, 0.1)
    opt.step(torch.tensor([1]), torch.ones(1, 3, dtype=torch.float64))
    fresh = RowAdam(table.clone(), 0.1)
    fresh.load_state(opt.state)
    assert int(fresh.state["t"]) == 1
    torch.testing.assert_close(fresh.state["m"], opt.state["m"])
    # a state of another shape is ignored
    other = RowAdam(torch.zeros(2, 3, dtype=torch.float64), 0.1)
    other.load_state(opt.state)
    assert int(other.state["t"]) == 0


def test_make_optimizer():
    table = torch.zeros(2, 2)
    assert type(make_optimizer("sgd", table, 0.1)) is RowSGD
    assert type(make_optimizer("adagrad", table, 0.1)) is RowAdagrad
    assert type(make_optimizer("adam", table, 0.1)) is RowAdam
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer("rmsprop", table, 0.1)
