"""The compiled CPU kernel: same updates as the torch path, exact samplers, determinism, fallback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR, native
from skbpr.datasets import make_interactions
from skbpr.losses import LOSSES, resolve_loss
from skbpr.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.native import NativeKernel, permutation
from skbpr.sampling import NegativeSampler
from skbpr.training import Trainer, make_optimizer

CPU = torch.device("cpu")
N_USERS, N_ITEMS, DIM = 13, 17, 5


def test_kernel_builds_here():
    # the machines this project supports have a C++ compiler: the fast path must not silently vanish
    assert native.available(), native.unavailable_reason()


def _positives(seed: int) -> sp.csr_matrix:
    R = sp.random(N_USERS, N_ITEMS, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    R.data[:] = 1.0
    R = R.tolil()
    R[0, :] = 0  # a user without positives
    R[1, : N_ITEMS - 1] = 1  # a user with a single candidate negative
    R = R.tocsr()
    R.sort_indices()
    return R


def _setup(loss, optimizer, user_mode, item_mode, m, seed=0):
    """Two identical copies of model + optimisers, and the data of one fit."""
    R = _positives(seed)
    rng = np.random.default_rng(seed)
    uf = sp.csr_matrix(rng.random((N_USERS, 4)) * (rng.random((N_USERS, 4)) < 0.5), dtype=np.float32)
    itf = sp.csr_matrix(rng.random((N_ITEMS, 3)) * (rng.random((N_ITEMS, 3)) < 0.6), dtype=np.float32)
    Fu = build_feature_matrix(uf, N_USERS, user_mode)
    Fi = build_feature_matrix(itf, N_ITEMS, item_mode)
    copies = []
    for _ in range(2):
        user_map, item_map = FeatureMap(Fu, N_USERS, CPU), FeatureMap(Fi, N_ITEMS, CPU)
        model = HybridFactorization(
            user_map.n_features, item_map.n_features, DIM, init_std=0.5, generator=torch.Generator().manual_seed(seed)
        )
        model.item_weight.data[:, -1] = torch.linspace(-0.5, 0.5, model.item_weight.shape[0])
        opt_u = make_optimizer(optimizer, model.user_weight.data, 0.05)
        opt_i = make_optimizer(optimizer, model.item_weight.data, 0.05)
        copies.append((model, user_map, item_map, opt_u, opt_i))
    coo = R.tocoo()
    users, items = torch.as_tensor(coo.row, dtype=torch.int64), torch.as_tensor(coo.col, dtype=torch.int64)
    _, grad_fn = resolve_loss(loss, sigma=1.3, margin=0.7, n_items=N_ITEMS)
    model, user_map, item_map, opt_u, opt_i = copies[0]
    trainer = Trainer(
        model=model,
        user_map=user_map,
        item_map=item_map,
        sampler=NegativeSampler(R),
        users=users,
        items=items,
        grad_fn=grad_fn,
        user_optimizer=opt_u,
        item_optimizer=opt_i,
        alpha=0.2,
        batch_size=8,
        n_negatives=m,
    )
    model, user_map, item_map, opt_u, opt_i = copies[1]
    kernel = NativeKernel(
        model=model,
        user_map=user_map,
        item_map=item_map,
        users=users,
        items=items,
        positives=R,
        negatives=None,
        mode="uniform",
        implicit_ratio=0.5,
        user_optimizer=opt_u,
        item_optimizer=opt_i,
        loss=loss,
        sigma=1.3,
        margin=0.7,
        alpha=0.2,
        n_negatives=m,
        batch_size=8,
    )
    return trainer, kernel, copies


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
@pytest.mark.parametrize("modes", [("identity", "identity"), ("both", "features")], ids=["identity", "features"])
def test_kernel_applies_the_torch_update(loss, optimizer, modes):
    m = 4 if loss == "warp" else 2
    trainer, kernel, copies = _setup(loss, optimizer, *modes, m=m)
    n = trainer.users.numel()
    start_weights = trainer.model.item_weight.data.clone()
    for epoch in range(3):  # several epochs of 8-sample batches, the last one partial
        negatives = kernel.sample(trainer.users, seed=epoch)
        torch_total = 0.0
        for start in range(0, n, 8):
            sl = slice(start, start + 8)
            loss_value, (ur, ug), (ir, ig) = trainer.gradients(trainer.users[sl], trainer.items[sl], negatives[sl])
            trainer.user_optimizer.step(ur, ug)
            trainer.item_optimizer.step(ir, ig)
            torch_total += float(loss_value) * trainer.users[sl].numel()
        native_total = kernel.train(0, n, seed=epoch, n_threads=2, shuffle=False, negatives=negatives)
        assert native_total == pytest.approx(torch_total, rel=1e-5)
    (mt, *_, ut, it), (mn, *_, un, in_) = copies
    torch.testing.assert_close(mn.user_weight.data, mt.user_weight.data, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mn.item_weight.data, mt.item_weight.data, rtol=1e-4, atol=1e-5)
    for a, b in ((ut, un), (it, in_)):
        for key in a.state:
            torch.testing.assert_close(b.state[key], a.state[key], rtol=1e-4, atol=1e-6)
    assert (mt.item_weight.data - start_weights).abs().max() > 1e-3  # training moved the weights


def test_weights_do_not_depend_on_the_thread_count_or_chunking():
    results = []
    for threads, chunk in ((1, 1 << 20), (2, 1 << 20), (2, 16)):
        trainer, kernel, _ = _setup("bpr", "adagrad", "both", "both", m=3)
        for epoch in range(2):
            kernel.epoch(epoch, n_threads=threads, chunk=chunk)
        results.append(torch.cat([kernel.model.user_weight.data.flatten(), kernel.model.item_weight.data.flatten()]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


def test_uniform_draws_are_exact_and_never_positives():
    R = _positives(3)
    _, kernel, _ = _setup("bpr", "sgd", "identity", "identity", m=1, seed=3)
    user = 2
    n = 40_000
    draws = kernel.sample(np.full(n, user), seed=9).numpy().ravel()
    allowed = np.setdiff1d(np.arange(N_ITEMS), R[user].indices)
    assert set(draws) == set(allowed)  # every non-positive, nothing else
    counts = np.bincount(draws, minlength=N_ITEMS)[allowed]
    expected = n / allowed.size
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < allowed.size + 6 * np.sqrt(2 * allowed.size)  # far inside the chi-square bulk
    # the user with one candidate always gets it
    assert set(kernel.sample(np.full(50, 1), seed=1).numpy().ravel()) == {N_ITEMS - 1}
    # every user: no positive drawn
    users = np.repeat(np.arange(N_USERS), 200)
    drawn = kernel.sample(users, seed=4).numpy().ravel()
    assert not np.asarray(R[users, drawn]).any()


@pytest.mark.parametrize("mode,ratio", [("implicit", 1.0), ("mixed", 0.3)])
def test_implicit_draws_come_from_rneg(mode, ratio):
    R = _positives(0)
    Rneg = sp.csr_matrix((N_USERS, N_ITEMS), dtype=np.float32).tolil()
    Rneg[2, [i for i in range(N_ITEMS) if R[2, i] == 0][:3]] = 1
    Rneg = Rneg.tocsr()
    trainer, _, copies = _setup("bpr", "sgd", "identity", "identity", m=2)
    model, user_map, item_map, opt_u, opt_i = copies[1]
    kernel = NativeKernel(
        model=model, user_map=user_map, item_map=item_map, users=trainer.users, items=trainer.items,
        positives=R, negatives=Rneg, mode=mode, implicit_ratio=ratio, user_optimizer=opt_u,
        item_optimizer=opt_i, loss="bpr", sigma=1.0, margin=1.0, alpha=0.0, n_negatives=2, batch_size=8,
    )  # fmt: skip
    draws = kernel.sample(np.full(20_000, 2), seed=5).numpy().ravel()
    in_rneg = np.isin(draws, Rneg[2].indices)
    assert in_rneg.mean() == pytest.approx(ratio + (1 - ratio) * 3 / (N_ITEMS - R[2].nnz), abs=0.02)
    assert not np.isin(draws, R[2].indices).any()
    # a user without implicit negatives falls back to uniform non-positives
    other = kernel.sample(np.full(2_000, 3), seed=5).numpy().ravel()
    assert not np.isin(other, R[3].indices).any() and len(set(other)) == N_ITEMS - R[3].nnz


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_epoch_order_is_a_permutation(n):
    order = permutation(n, seed=11)
    assert np.array_equal(np.sort(order), np.arange(n))
    if n >= 64:
        assert not np.array_equal(order, permutation(n, seed=12))
        assert not np.array_equal(order, np.arange(n))


def test_estimator_native_matches_torch_quality_and_is_deterministic():
    data = make_interactions(300, 200, 6000, random_state=0)
    from skbpr.model_selection import train_test_split

    train, test = train_test_split(data, test_size=0.2, random_state=0)
    params = dict(n_components=16, epochs=15, random_state=0, batch_size=256)
    scores = {}
    for backend in ("native", "torch"):
        model = HybridBPR(backend=backend, **params).fit(train)
        assert model.backend_ == backend
        scores[backend] = model.score(test)
    assert scores["native"] == pytest.approx(scores["torch"], abs=0.03)
    a = HybridBPR(backend="native", n_threads=1, **params).fit(train)
    b = HybridBPR(backend="native", n_threads=2, **params).fit(train)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)


def test_auto_picks_native_on_cpu_and_torch_for_callables():
    data = make_interactions(60, 40, 400, random_state=1)
    assert HybridBPR(8, epochs=1, device="cpu").fit(data).backend_ == "native"
    assert HybridBPR(8, epochs=1, backend="torch").fit(data).backend_ == "torch"

    def custom(pos, neg):
        return torch.nn.functional.softplus(neg - pos[:, None]).mean()

    assert HybridBPR(8, epochs=1, loss=custom).fit(data).backend_ == "torch"
    model = HybridBPR(8, epochs=1, loss=custom, backend="native")
    with pytest.raises(ValueError, match="backend='native'.*loss callable"):
        model.fit(data)
    assert not hasattr(model, "model_")
    with pytest.raises(ValueError, match="backend must be one of .*got 'fast'"):
        HybridBPR(backend="fast").fit(data)


def test_without_a_compiler_auto_falls_back_and_native_says_why(tmp_path):
    code = (
        "from skbpr import HybridBPR\n"
        "from skbpr.datasets import make_interactions\n"
        "d = make_interactions(60, 40, 400, random_state=1)\n"
        "print(HybridBPR(8, epochs=1).fit(d).backend_)\n"
        "try:\n"
        "    HybridBPR(8, epochs=1, backend='native').fit(d)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CXX": "/bin/false", "SKBPR_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "torch"
    assert "backend='native' cannot be used: building bpr_kernel.cpp failed" in lines[1]
    assert not list(tmp_path.glob("kernels/*.so"))  # nothing half-written
