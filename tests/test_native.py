"""The compiled CPU kernel: same updates as the torch path, exact samplers, determinism, strict binding, fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.losses import PAIRWISE_LOSSES
from skbpr.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training import TrainingProblem, make_optimizer, native
from skbpr.training.native import NativeKernel, permutation
from skbpr.training.torch_engine import Trainer

CPU = torch.device("cpu")
N_USERS, N_ITEMS, DIM = 13, 17, 5


ISAS = native._extension()[0].SUPPORTED_ISAS if native.available() else []


def test_kernel_is_installed():
    # the package is installed with its extension here: the fast path must not silently vanish
    assert native.available(), native.unavailable_reason()
    from skbpr import _kernel

    assert _kernel.ISA == ISAS[0] and "baseline" in ISAS


def _positives(seed: int) -> sp.csr_matrix:
    R = sp.random(N_USERS, N_ITEMS, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    R.data[:] = 1.0
    R = R.tolil()
    R[0, :] = 0  # a user without positives
    R[1, : N_ITEMS - 1] = 1  # a user with a single candidate negative
    R = R.tocsr()
    R.sort_indices()
    return R


def _problem(
    R,
    users,
    items,
    *,
    loss="bpr",
    m=2,
    batch_size=8,
    user_map=None,
    item_map=None,
    negatives=None,
    mode="uniform",
    ratio=0.5,
    sigma=1.3,
    margin=0.7,
    alpha=0.2,
):
    """The training problem of one fit over positives ``R``."""
    return TrainingProblem(
        users=users, items=items, positives=R, negatives=negatives, sampling=mode, implicit_ratio=ratio,
        user_map=user_map or FeatureMap(None, N_USERS, CPU), item_map=item_map or FeatureMap(None, N_ITEMS, CPU),
        loss=loss, sigma=sigma, margin=margin, alpha=alpha, draws_per_sample=m, batch_size=batch_size,
    )  # fmt: skip


def _setup(loss, optimizer, user_mode, item_mode, m, seed=0, batch_size=8, isa=""):
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
    model, user_map, item_map, opt_u, opt_i = copies[0]
    problem = _problem(R, users, items, loss=loss, m=m, batch_size=batch_size, user_map=user_map, item_map=item_map)
    trainer = Trainer(problem, model, opt_u, opt_i)
    model, user_map, item_map, opt_u, opt_i = copies[1]
    problem = _problem(R, users, items, loss=loss, m=m, batch_size=batch_size, user_map=user_map, item_map=item_map)
    kernel = NativeKernel(problem, model, opt_u, opt_i, isa=isa)
    return trainer, kernel, copies


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
@pytest.mark.parametrize("modes", [("identity", "identity"), ("both", "features")], ids=["identity", "features"])
def test_kernel_applies_the_torch_update(loss, optimizer, modes, isa):
    # every build of the kernel the CPU can run (AVX2 and the portable baseline) against torch
    m = 4 if loss == "warp" else 2
    trainer, kernel, copies = _setup(loss, optimizer, *modes, m=m, isa=isa)
    assert kernel.isa == isa
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
    problem = _problem(R, trainer.users, trainer.items, negatives=Rneg, mode=mode, ratio=ratio, sigma=1.0, margin=1.0,
                       alpha=0.0, user_map=user_map, item_map=item_map)  # fmt: skip
    kernel = NativeKernel(problem, model, opt_u, opt_i)
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


FALLBACK = (
    "import warnings\n"
    "from skbpr import HybridBPR\n"
    "from skbpr.datasets import make_interactions\n"
    "d = make_interactions(60, 40, 400, random_state=1)\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    print(HybridBPR(8, epochs=1).fit(d).backend_)\n"
    "    HybridBPR(8, epochs=1).fit(d)  # a second fit: the warning is given once per process\n"
    "print([str(w.message) for w in caught if 'compiled kernel' in str(w.message)])\n"
    "try:\n"
    "    HybridBPR(8, epochs=1, backend='native').fit(d)\n"
    "except ValueError as e:\n"
    "    print(e)\n"
)


@pytest.mark.parametrize(
    "prelude,env,reason",
    [
        # an install without the extension (what a source install without a compiler leaves)
        ("import sys; sys.modules['skbpr._kernel'] = None\n", {}, "skbpr was installed without its compiled extension"),
        ("", {"SKBPR_NATIVE": "0"}, "disabled by SKBPR_NATIVE=0"),
    ],
    ids=["no-extension", "disabled"],
)
def test_without_the_extension_auto_falls_back_with_a_warning_and_native_says_why(prelude, env, reason):
    import os

    run_env = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", prelude + FALLBACK], env=run_env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "torch"
    assert reason in lines[1] and "training with torch" in lines[1] and "reinstall skbpr" in lines[1]
    assert lines[1].count("training with torch") == 1  # once, not once per fit
    assert lines[2].startswith("backend='native' cannot be used: ") and reason in lines[2]


def _kernel_args(**overrides):
    """Arguments of a valid skbpr._kernel.Kernel (Adagrad, identity rows, 3 users x 4 items)."""
    args = dict(
        users=np.array([0, 1, 2], np.int32),
        items=np.array([1, 2, 3], np.int32),
        pos_indptr=np.array([0, 1, 2, 3], np.int64),
        pos_indices=np.array([1, 2, 3], np.int32),
        neg_indptr=None,
        neg_indices=None,
        n_items=4,
        negatives=0,
        implicit_ratio=0.5,
        user_rows=None,
        item_rows=None,
        n_users=3,
        n_item_entities=4,
        user_weight=np.zeros((3, 2), np.float32),
        user_state1=np.zeros((3, 2), np.float32),
        user_state2=None,
        user_step=None,
        item_weight=np.zeros((4, 3), np.float32),
        item_state1=np.zeros((4, 3), np.float32),
        item_state2=None,
        item_step=None,
        optimizer=1,
        learning_rate=0.1,
        eps=1e-10,
        beta1=0.9,
        beta2=0.999,
        loss=0,
        sigma=1.0,
        margin=1.0,
        alpha=0.0,
        n_negatives=1,
        batch_size=2,
    )
    return {**args, **overrides}


@pytest.mark.skipif(not native.available(), reason="needs the compiled extension")
def test_the_binding_takes_written_arrays_as_they_are_or_refuses_them():
    from skbpr import _kernel

    k = _kernel.Kernel(**_kernel_args())
    assert k.n_samples == 3 and k.batch_size == 2
    weight = np.full((4, 3), 0.5, np.float32)
    k = _kernel.Kernel(**_kernel_args(item_weight=weight))
    k.train(start=0, count=3, seed=1, n_threads=1)
    assert not np.all(weight == 0.5)  # trained in place: the very array passed, not a copy
    bad = {
        "item_weight": (np.zeros((4, 3), np.float64), TypeError, "item_weight must have dtype float32, got float64"),
        "user_weight": (np.zeros((2, 3), np.float32).T, ValueError, "user_weight must be C-contiguous"),
        "user_state1": (np.zeros((3, 3), np.float32), ValueError, r"user_state1 has shape \(3, 3\), expected 2"),
        "item_state1": (None, ValueError, "item_state1 is required"),
        "users": ([0, 1, 2], TypeError, "users must be a numpy array, got list"),
        "items": (np.array([1, 2], np.int32), ValueError, r"items has shape \(2,\), expected 3"),
        "pos_indices": (np.array([1, 2, 3], np.int64), TypeError, "pos_indices must have dtype int32, got int64"),
        "loss": (7, ValueError, "loss code must be in"),
        "batch_size": (0, ValueError, "batch_size must be >= 1, got 0"),
    }
    for name, (value, error, message) in bad.items():
        with pytest.raises(error, match=message):
            _kernel.Kernel(**_kernel_args(**{name: value}))
    frozen = np.zeros((4, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="item_weight must be writeable"):
        _kernel.Kernel(**_kernel_args(item_weight=frozen))
    with pytest.raises(ValueError, match="start must be a non-negative multiple of batch_size"):
        k.train(start=1, count=1, seed=0, n_threads=1)
    with pytest.raises(ValueError, match="start \\+ count must be in"):
        k.train(start=2, count=2, seed=0, n_threads=1)
    with pytest.raises(ValueError, match="n_threads must be >= 1, got 0"):
        k.train(start=0, count=1, seed=0, n_threads=0)
    with pytest.raises(ValueError, match="users must be in \\[0, 3\\), got 5"):
        k.sample(np.array([5]), seed=0)
    with pytest.raises(ValueError, match="isa must be one of"):
        _kernel.Kernel(**_kernel_args(isa="avx1024"))


def test_a_batch_larger_than_the_data_allocates_for_the_data():
    # batch_size=10**9 would ask for tens of GB of workspace if allocated as given
    n = _setup("bpr", "adagrad", "identity", "identity", m=2)[0].users.numel()
    weights = []
    for batch_size in (10**9, n):
        trainer, kernel, _ = _setup("bpr", "adagrad", "identity", "identity", m=2, batch_size=batch_size)
        assert kernel._kernel.workspace_batch == n and kernel.batch_size == batch_size
        for epoch in range(2):
            kernel.epoch(epoch, n_threads=2)
        weights.append(kernel.model.item_weight.data.clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_estimator_with_a_huge_batch_matches_a_batch_of_every_sample():
    data = make_interactions(200, 100, 2900, random_state=2)
    params = dict(n_components=8, epochs=3, random_state=0, backend="native")
    a = HybridBPR(batch_size=10**9, **params).fit(data)
    b = HybridBPR(batch_size=data.n_positives, **params).fit(data)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)


def test_more_threads_than_a_build_without_openmp_runs_warns_once(monkeypatch):
    _, kernel, _ = _setup("bpr", "sgd", "identity", "identity", m=1)
    monkeypatch.setattr(kernel, "_openmp", False)
    native._warn_single_thread.cache_clear()
    with pytest.warns(RuntimeWarning, match="built without OpenMP"):
        kernel.epoch(0, n_threads=2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel.epoch(1, n_threads=2)  # once per process
        kernel.epoch(2, n_threads=1)


# ---------------------------------------------------------------------------- lock-free mode
def _lock_free(loss, optimizer, user_mode, item_mode, m, batch_size=8):
    """Like _setup, with the kernel in lock-free mode."""
    trainer, _, copies = _setup(loss, optimizer, user_mode, item_mode, m=m, batch_size=batch_size)
    model, user_map, item_map, opt_u, opt_i = copies[1]
    problem = _problem(_positives(0), trainer.users, trainer.items, loss=loss, m=m, batch_size=batch_size,
                       user_map=user_map, item_map=item_map)  # fmt: skip
    kernel = NativeKernel(problem, model, opt_u, opt_i, deterministic=False)
    return trainer, kernel, copies


@pytest.mark.parametrize("loss", ["bpr", "logistic", "hinge"])
@pytest.mark.parametrize(
    "optimizer,modes",
    [
        ("sgd", ("identity", "identity")),
        ("adagrad", ("identity", "identity")),
        ("adam", ("identity", "identity")),
        ("sgd", ("both", "features")),  # feature rows: per-contribution steps, linear for SGD only
    ],
)
def test_lock_free_on_one_thread_is_the_sequential_per_sample_update(loss, optimizer, modes):
    # one sample at a time, in position order, each step scaled as one sample of a batch_size mean
    B = 8
    trainer, kernel, copies = _lock_free(loss, optimizer, *modes, m=1, batch_size=B)
    n = trainer.users.numel()
    for epoch in range(2):
        negatives = kernel.sample(trainer.users, seed=epoch)
        t0 = int(trainer.user_optimizer.state["t"]) if optimizer == "adam" else 0
        torch_total = 0.0
        for q in range(n):
            sl = slice(q, q + 1)
            value, (ur, ug), (ir, ig) = trainer.gradients(trainer.users[sl], trainer.items[sl], negatives[sl])
            if optimizer == "adam":  # the bias correction advances once per batch_size positions
                trainer.user_optimizer.state["t"].fill_(t0 + q // B)
                trainer.item_optimizer.state["t"].fill_(t0 + q // B)
            trainer.item_optimizer.step(ir, ig / B)
            trainer.user_optimizer.step(ur, ug / B)
            torch_total += float(value)
        native_total = kernel.train(0, n, seed=epoch, n_threads=1, shuffle=False, negatives=negatives)
        assert native_total == pytest.approx(torch_total, rel=1e-4)
    (mt, *_, ut, it), (mn, *_, un, in_) = copies
    torch.testing.assert_close(mn.user_weight.data, mt.user_weight.data, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mn.item_weight.data, mt.item_weight.data, rtol=1e-4, atol=1e-5)
    if optimizer == "adam":
        assert int(un.state["t"]) == int(ut.state["t"]) == 2 * -(-n // B)  # ceil(n / B) steps per epoch


@pytest.mark.parametrize("loss", PAIRWISE_LOSSES)
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
@pytest.mark.parametrize("modes", [("identity", "identity"), ("both", "features")], ids=["identity", "features"])
def test_lock_free_on_one_thread_is_reproducible_and_two_threads_stay_finite(loss, optimizer, modes):
    m = 4 if loss == "warp" else 2
    weights = []
    for threads in (1, 1, 2):
        _, kernel, _ = _lock_free(loss, optimizer, *modes, m=m)
        start = kernel.model.item_weight.data.clone()
        for epoch in range(3):
            assert np.isfinite(kernel.epoch(epoch, n_threads=threads))
        weights.append(torch.cat([kernel.model.user_weight.data.flatten(), kernel.model.item_weight.data.flatten()]))
        assert (kernel.model.item_weight.data - start).abs().max() > 1e-4  # training moved the weights
    assert torch.equal(weights[0], weights[1])
    assert torch.isfinite(weights[2]).all()


def test_warp_stops_at_the_first_violation_in_every_mode():
    # the first candidate violates the margin: later candidates are neither scored nor regularised nor
    # updated, in the kernel's two modes and in torch (alpha > 0, so any touched row would move)
    changed = {}
    for deterministic in (True, False):
        trainer, kernel, _ = (_setup if deterministic else _lock_free)("warp", "sgd", "identity", "identity", m=4)
        first_items = set(trainer.items[:8].tolist())
        a, b = [i for i in range(N_ITEMS) if i not in first_items][:2]
        weights = kernel.model.item_weight.data
        weights[[a, b], -1] = 5.0  # high scores: both violate
        negatives = torch.tensor([[a, b, b, b]] * trainer.users.numel())
        before = weights.clone()
        kernel.train(0, 8, seed=0, n_threads=1, shuffle=False, negatives=negatives)
        changed[deterministic] = {i for i in (a, b) if not torch.equal(weights[i], before[i])}
        changed[deterministic] = ["a" if i == a else "b" for i in sorted(changed[deterministic], key=(a, b).index)]
    trainer, _, _ = _setup("warp", "adam", "identity", "identity", m=4)
    trainer.model.item_weight.data[[a, b], -1] = 5.0
    _, _, (rows, _) = trainer.gradients(trainer.users[:8], trainer.items[:8], torch.tensor([[a, b, b, b]] * 8))
    # torch hands the optimiser the positive and the chosen candidate only: lazy Adam would move any row it gets
    assert rows.tolist() == [item for pair in zip(trainer.items[:8].tolist(), [a] * 8, strict=True) for item in pair]
    assert changed == {True: ["a"], False: ["a"]}


def test_estimator_lock_free_quality_is_close_and_one_thread_is_reproducible():
    data = make_interactions(300, 200, 6000, random_state=0)
    from skbpr.model_selection import train_test_split

    train, test = train_test_split(data, test_size=0.2, random_state=0)
    params = dict(n_components=16, epochs=15, random_state=0, batch_size=256, backend="native")
    det = HybridBPR(**params).fit(train).score(test)
    a = HybridBPR(deterministic=False, n_threads=1, **params).fit(train)
    b = HybridBPR(deterministic=False, n_threads=1, **params).fit(train)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)
    c = HybridBPR(deterministic=False, n_threads=2, **params).fit(train)
    assert np.isfinite(c.item_embeddings_).all() and np.isfinite(c.user_embeddings_).all()
    assert a.score(test) == pytest.approx(det, abs=0.03)
    assert c.score(test) == pytest.approx(det, abs=0.03)
    assert det > 0.15  # the planted structure is learned at all


def test_deterministic_is_validated_and_torch_says_it_is_used():
    data = make_interactions(60, 40, 400, random_state=1)
    with pytest.raises(ValueError, match="deterministic must be True or False, got 'no'"):
        HybridBPR(deterministic="no").fit(data)
    with pytest.warns(UserWarning, match="deterministic=False needs the compiled kernel.*backend='torch'"):
        assert HybridBPR(8, epochs=1, deterministic=False, backend="torch").fit(data).backend_ == "torch"


def test_lock_free_without_the_kernel_trains_with_torch_and_warns(monkeypatch):
    monkeypatch.setattr(native, "available", lambda: False)
    monkeypatch.setattr(native, "unavailable_reason", lambda: "skbpr was installed without its compiled extension")
    data = make_interactions(60, 40, 400, random_state=1)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = HybridBPR(8, epochs=1, deterministic=False).fit(data)
    assert model.backend_ == "torch"
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("training with torch: the compiled kernel is unavailable") for m in messages)
    assert any(
        m.startswith("deterministic=False needs the compiled kernel") and "installed without" in m for m in messages
    )


def test_kernel_and_torch_fits_pickle_to_the_same_size():
    # one copy of the weights and optimiser state, whichever engine trained them (tables of several MB)
    import pickle

    data = make_interactions(36_000, 400, 90_000, random_state=0)
    sizes = [
        len(pickle.dumps(HybridBPR(64, epochs=1, backend=backend, random_state=0).fit(data)))
        for backend in ("native", "torch")
    ]
    assert sizes[0] > 18e6 and abs(sizes[0] - sizes[1]) < 1_000, sizes


def _shared_batch_kernel(loss: str, deterministic: bool = True, batch_size: int = 512) -> NativeKernel:
    """A kernel over a set large enough that several threads share each batch (64 samples per thread at least)."""
    n_users, n_items, seed = 150, 90, 3
    R = sp.random(n_users, n_items, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    R.data[:] = 1.0
    R.sort_indices()
    rng = np.random.default_rng(seed)
    uf = sp.csr_matrix(rng.random((n_users, 4)) * (rng.random((n_users, 4)) < 0.5), dtype=np.float32)
    itf = sp.csr_matrix(rng.random((n_items, 3)) * (rng.random((n_items, 3)) < 0.6), dtype=np.float32)
    user_map = FeatureMap(build_feature_matrix(uf, n_users, "both"), n_users, CPU)
    item_map = FeatureMap(build_feature_matrix(itf, n_items, "both"), n_items, CPU)
    model = HybridFactorization(
        user_map.n_features, item_map.n_features, DIM, init_std=0.5, generator=torch.Generator().manual_seed(seed)
    )
    coo = R.tocoo()
    problem = TrainingProblem(
        users=torch.as_tensor(coo.row, dtype=torch.int64), items=torch.as_tensor(coo.col, dtype=torch.int64),
        positives=R, negatives=None, sampling="uniform", implicit_ratio=0.0, user_map=user_map, item_map=item_map,
        loss=loss, sigma=1.0, margin=0.7, alpha=0.2, draws_per_sample=4 if loss == "warp" else 2,
        batch_size=batch_size, weights=torch.as_tensor(rng.uniform(0.5, 2.0, coo.nnz), dtype=torch.float32),
    )  # fmt: skip
    opt_u = make_optimizer("adam", model.user_weight.data, 0.05)
    opt_i = make_optimizer("adam", model.item_weight.data, 0.05)
    return NativeKernel(problem, model, opt_u, opt_i, deterministic=deterministic)


@pytest.mark.parametrize("loss", ["bpr", "warp"])
def test_weights_do_not_depend_on_the_team_that_shares_each_batch(loss):
    # batches of 512 samples: teams of 2, 3 and 4 threads each take part of every batch (chunks of samples,
    # then buckets of rows, handed out to whichever thread is free); the weights stay bit-identical
    results, losses = [], []
    for threads in (1, 2, 3, 4):
        kernel = _shared_batch_kernel(loss)
        assert kernel.threads_used == 0
        losses.append([kernel.epoch(epoch, n_threads=threads, adapt=False) for epoch in range(3)])
        assert kernel.threads_used == threads
        results.append(torch.cat([kernel.model.user_weight.data.flatten(), kernel.model.item_weight.data.flatten()]))
    for other in results[1:]:
        assert torch.equal(results[0], other)
    assert losses[0] == losses[1] == losses[2] == losses[3]


def test_small_batches_run_fewer_threads_and_say_so():
    kernel = _shared_batch_kernel("bpr", batch_size=128)  # 64 samples per thread at least: two threads
    kernel.epoch(0, n_threads=4, adapt=False)
    assert kernel.threads_used == 2
    kernel = _shared_batch_kernel("bpr", deterministic=False)  # the lock-free mode runs what it is given
    kernel.epoch(0, n_threads=3, adapt=False)
    assert kernel.threads_used == 3


def test_the_thread_tuner_runs_the_faster_team_and_probes_the_other():
    tuner = native.ThreadTuner(2, probe_every=4)
    seen = []
    for _ in range(12):
        threads = tuner.next()
        seen.append(threads)
        # one thread is 4x faster, as when another process holds one of two cores
        tuner.record(threads, (4e-6 if threads == 2 else 1e-6) * 1000, 1000)
    # warm-up and a first timing at 2, a try of 1 (faster: switch), a try of 2 four calls later (slower: stay,
    # and the next try waits twice as long)
    assert seen == [2, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert tuner.current == 1 and tuner.seconds_per_sample[2] > tuner.seconds_per_sample[1]
    assert tuner.next_probe == 16
    quiet = native.ThreadTuner(2, probe_every=4)
    seen = []
    for _ in range(12):
        threads = quiet.next()
        seen.append(threads)
        quiet.record(threads, (1e-6 if threads == 2 else 1.8e-6) * 1000, 1000)
    assert seen == [2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1] and quiet.current == 2
    single = native.ThreadTuner(1)
    assert [single.next() for _ in range(3)] == [1, 1, 1]


def test_the_adaptive_team_changes_no_weight():
    # chunks of 512 samples: several calls per epoch, the tuner probing both team sizes along the way
    adaptive, fixed = _shared_batch_kernel("bpr"), _shared_batch_kernel("bpr")
    for epoch in range(6):
        assert adaptive.epoch(epoch, n_threads=2, chunk=512) == fixed.epoch(epoch, n_threads=2, chunk=512, adapt=False)
    assert set(adaptive._tuner.seconds_per_sample) == {1, 2}
    for a, b in (
        (adaptive.model.user_weight, fixed.model.user_weight),
        (adaptive.model.item_weight, fixed.model.item_weight),
    ):
        assert torch.equal(a.data, b.data)


def _fit_in_worker() -> tuple[int, int, int]:
    """In a joblib worker: the thread budget, torch's thread count, and the threads a fit asking for 2 ran."""
    data = make_interactions(150, 100, 2000, random_state=0)
    model = HybridBPR(4, epochs=1, batch_size=512, n_threads=2, random_state=0, backend="native").fit(data)
    return native.thread_budget(2), torch.get_num_threads(), model.n_threads_


def test_a_fit_in_a_joblib_worker_takes_the_thread_budget_joblib_gives_it():
    joblib = pytest.importorskip("joblib")
    with joblib.parallel_config(backend="loky", n_jobs=2, inner_max_num_threads=1):
        results = joblib.Parallel()(joblib.delayed(_fit_in_worker)() for _ in range(2))
    # the fit asked for 2 threads (and set torch's count to 2 during the fit), the worker's budget is 1
    assert results == [(1, 1, 1), (1, 1, 1)]


def test_a_threadpoolctl_limit_caps_the_kernel_and_the_fit_reports_its_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    data = make_interactions(150, 100, 2000, random_state=0)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert native.thread_budget(8) == 1
        model = HybridBPR(4, epochs=1, batch_size=512, n_threads=2, random_state=0, backend="native").fit(data)
    assert model.n_threads_ == 1
    model.fit(data)  # without the limit: the two threads asked, where the process may run on two cores
    assert model.n_threads_ == min(2, len(os.sched_getaffinity(0)))
