"""loss="ials": the all-pairs squared loss through Gramians, its block solves, and the estimator around them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone

from skbpr import HybridBPR
from skbpr.interactions import Interactions
from skbpr.model_selection import train_test_split
from skbpr.training.alternating import AlternatingSolver, objective
from skbpr.training.defaults import LOSS_DEFAULTS, loss_defaults
from skbpr.training.model import FeatureMap, HybridFactorization
from skbpr.training.problem import TrainingProblem
from skbpr.utils.validation import InvalidParameterError

FAST = {"n_components": 4, "epochs": 3, "random_state": 0, "device": "cpu", "n_threads": 1, "loss": "ials"}
CPU = torch.device("cpu")


def _positives(n_users: int = 40, n_items: int = 30, seed: int = 0, weighted: bool = False) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < 0.2
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    values = rng.integers(1, 20, dense.shape) if weighted else np.ones(dense.shape)
    return sp.csr_matrix((dense * values).astype(np.float32))


def _features(n_rows: int, n_cols: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_cols)) < 0.4) * rng.uniform(0.5, 2.0, (n_rows, n_cols))
    dense[np.arange(n_rows), rng.integers(0, n_cols, n_rows)] = 1.0  # no empty row
    return sp.csr_matrix(dense.astype(np.float32))


def _solver(featured: bool, *, w0: float = 0.3, lam: float = 0.7, nu: float = 0.0, seed: int = 0):
    """A solver on a small weighted problem, its weights random (biases too), in float64."""
    X = _positives(9, 7, seed=seed, weighted=True)
    coo = X.tocoo()
    conf = torch.as_tensor(np.random.default_rng(seed).uniform(0.2, 3.0, coo.nnz))
    uf = _features(9, 4, seed + 1) if featured else None
    itf = sp.hstack([_features(7, 3, seed + 2), sp.identity(7)], format="csr") if featured else None
    user_map, item_map = FeatureMap(uf, 9, CPU), FeatureMap(itf, 7, CPU)
    for fmap in (user_map, item_map):
        if not fmap.identity:
            fmap.data = fmap.data.double()
    problem = TrainingProblem(
        users=torch.as_tensor(coo.row.astype(np.int64)),
        items=torch.as_tensor(coo.col.astype(np.int64)),
        positives=X,
        negatives=None,
        sampling="uniform",
        implicit_ratio=0.5,
        user_map=user_map,
        item_map=item_map,
        loss="ials",
        sigma=1.0,
        margin=1.0,
        alpha=lam,
        draws_per_sample=0,
        batch_size=0,
        weights=conf,
        unobserved_weight=w0,
        reg_exponent=nu,
    )
    model = HybridFactorization(user_map.n_features, item_map.n_features, 3, init_std=0.5)
    gen = torch.Generator().manual_seed(seed)
    model.user_weight.data = torch.randn(model.user_weight.shape, generator=gen, dtype=torch.float64)
    model.item_weight.data = torch.randn(model.item_weight.shape, generator=gen, dtype=torch.float64)
    return AlternatingSolver(problem, model), X, conf, uf, itf


def _dense_map(matrix: sp.csr_matrix | None, n: int) -> np.ndarray:
    return np.eye(n) if matrix is None else matrix.toarray().astype(np.float64)


def _brute_force(solver, X, conf, uf, itf, user=None, item=None) -> float:
    """The objective written out over every (user, item) pair, in numpy."""
    U = solver.model.user_weight.data.numpy() if user is None else user
    W = solver.model.item_weight.data.numpy() if item is None else item
    P, Q = _dense_map(uf, 9) @ U, _dense_map(itf, 7) @ W
    S = P @ Q[:, :-1].T + Q[:, -1][None, :]
    coo = X.tocoo()
    fit = (conf.numpy() * (1.0 - S[coo.row, coo.col]) ** 2).sum()
    reg = (solver.user_reg.numpy() * (U**2).sum(1)).sum() + (solver.item_reg.numpy() * (W**2).sum(1)).sum()
    return fit + solver.w0 * (S**2).sum() + reg


# ------------------------------------------------------------------ the objective


@pytest.mark.parametrize("featured", [False, True], ids=["identity", "features"])
@pytest.mark.parametrize("nu", [0.0, 1.0])
def test_objective_through_gramians_equals_the_sum_over_all_pairs(featured, nu):
    solver, X, conf, uf, itf = _solver(featured, nu=nu)
    assert solver.model.item_weight.data[:, -1].abs().min() > 0  # biases take part
    np.testing.assert_allclose(solver.objective(), _brute_force(solver, X, conf, uf, itf), rtol=1e-10)
    # the data terms alone, from representations
    p = solver.user_map(solver.model.user_weight.data)
    q = solver.item_map(solver.model.item_weight.data)
    no_reg = _brute_force(solver, X, conf, uf, itf) - float(solver._penalty())
    np.testing.assert_allclose(float(objective(p, q, solver.users, solver.items, conf, solver.w0)), no_reg, rtol=1e-10)


def test_frequency_scaled_penalty_counts_positives_and_weighted_pairs():
    solver, X, *_ = _solver(False, w0=0.3, lam=0.7, nu=0.5)
    counts = np.diff(X.indptr)
    np.testing.assert_allclose(solver.user_reg.numpy(), 0.7 * (counts + 0.3 * 7) ** 0.5)
    plain, *_ = _solver(False, nu=0.0)
    np.testing.assert_allclose(plain.user_reg.numpy(), 0.7)


# ------------------------------------------------------------------ the block solves


@pytest.mark.parametrize("featured", [False, True], ids=["identity", "features"])
def test_solver_gradients_match_autograd_of_the_written_out_objective(featured):
    solver, X, conf, uf, itf = _solver(featured, nu=1.0)
    U = solver.model.user_weight.data.clone().requires_grad_(True)
    W = solver.model.item_weight.data.clone().requires_grad_(True)
    Fu, Fi = torch.as_tensor(_dense_map(uf, 9)), torch.as_tensor(_dense_map(itf, 7))
    P, Q = Fu @ U, Fi @ W
    S = P @ Q[:, :-1].T + Q[:, -1][None, :]
    coo = X.tocoo()
    written = (conf * (1.0 - S[coo.row, coo.col]) ** 2).sum() + solver.w0 * (S**2).sum()
    written = written + (solver.user_reg * (U**2).sum(1)).sum() + (solver.item_reg * (W**2).sum(1)).sum()
    d_user, d_item = torch.autograd.grad(written, (U, W))
    np.testing.assert_allclose(solver.user_block().gradient(solver.model.user_weight.data), d_user, rtol=1e-9)
    np.testing.assert_allclose(solver.item_block().gradient(solver.model.item_weight.data), d_item, rtol=1e-9)


def _least_squares(solver, X, conf, uf, itf, side: str) -> np.ndarray:
    """The exact minimiser of the block's objective by numpy's lstsq, one weighted row per term."""
    U, W = solver.model.user_weight.data.numpy(), solver.model.item_weight.data.numpy()
    Fu, Fi = _dense_map(uf, 9), _dense_map(itf, 7)
    coo = X.tocoo()
    pos = {(u, i): c for u, i, c in zip(coo.row, coo.col, conf.numpy(), strict=True)}
    if side == "user":
        F, other, offset, reg, n_own, n_other = Fu, (Fi @ W)[:, :-1], (Fi @ W)[:, -1], solver.user_reg, 9, 7
    else:
        P = Fu @ U
        F, other, offset, reg, n_own, n_other = Fi, np.hstack([P, np.ones((9, 1))]), np.zeros(9), solver.item_reg, 7, 9
    rows, targets = [], []
    for e in range(n_own):
        for o in range(n_other):
            coef = np.kron(F[e], other[o])  # s = coef . vec(X) + offset[o]
            key = (e, o) if side == "user" else (o, e)
            rows.append(np.sqrt(solver.w0) * coef)
            targets.append(-np.sqrt(solver.w0) * offset[o])
            if key in pos:
                rows.append(np.sqrt(pos[key]) * coef)
                targets.append(np.sqrt(pos[key]) * (1.0 - offset[o]))
    d = other.shape[1]
    for r, lam in enumerate(reg.numpy()):
        for j in range(d):
            row = np.zeros(F.shape[1] * d)
            row[r * d + j] = np.sqrt(lam)
            rows.append(row)
            targets.append(0.0)
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    return solution.reshape(F.shape[1], d)


@pytest.mark.parametrize("featured", [False, True], ids=["identity", "features"])
@pytest.mark.parametrize("side", ["user", "item"])
def test_block_solve_decreases_the_objective_and_converges_to_least_squares(featured, side):
    solver, X, conf, uf, itf = _solver(featured)
    table = solver.model.user_weight.data if side == "user" else solver.model.item_weight.data
    exact = _least_squares(solver, X, conf, uf, itf, side)
    block = solver.user_block() if side == "user" else solver.item_block()
    before = solver.objective()
    block.solve(table, 2)
    after = solver.objective()
    assert after < before
    assert not np.allclose(table.numpy(), exact, atol=1e-6)  # two steps are not the exact solve
    block.solve(table, 4 * table.numel())  # CG is exact in as many steps as unknowns, up to rounding
    np.testing.assert_allclose(table.numpy(), exact, rtol=1e-6, atol=1e-8)
    assert solver.objective() <= after


@pytest.mark.parametrize("side", ["user", "item"])
def test_the_preconditioner_is_the_diagonal_of_the_block_hessian(side):
    solver, *_ = _solver(True, nu=1.0)
    block = solver.user_block() if side == "user" else solver.item_block()
    table = solver.model.user_weight.data if side == "user" else solver.model.item_weight.data
    expected = torch.zeros_like(table)
    for r in range(table.shape[0]):
        for j in range(table.shape[1]):
            basis = torch.zeros_like(table)
            basis[r, j] = 1.0
            expected[r, j] = block.hessian_product(basis)[r, j]
    np.testing.assert_allclose(block.diagonal(), expected, rtol=1e-10)


def test_a_sweep_never_increases_the_objective():
    solver, *_ = _solver(True)
    values = [solver.objective()]
    for epoch in range(4):
        solver.epoch(epoch)
        values.append(solver.objective())
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:], strict=False))


# ------------------------------------------------------------------ the estimator


@pytest.fixture(scope="module")
def split():
    data = Interactions.from_matrices(_positives(60, 40))
    return train_test_split(data, test_size=0.25, random_state=0)


def test_fit_predict_recommend_and_the_resolved_row(split):
    train, test = split
    model = HybridBPR(**FAST).fit(train)
    assert len(model.history_) == 3 and model.backend_ == "torch"
    losses = [h["loss"] for h in model.history_]
    assert losses == sorted(losses, reverse=True)  # each sweep lowers the objective
    row = loss_defaults("ials")
    assert (model.alpha_, model.unobserved_weight_, model.reg_exponent_) == (
        row["alpha"],
        row["unobserved_weight"],
        row["reg_exponent"],
    )
    assert model.learning_rate_ is None and model.n_negatives_ is None and model.batch_size_ is None
    pairs = np.array([[0, 1], [3, 2]])
    u, (v, b) = model.user_representations(), model.item_representations()
    np.testing.assert_allclose(model.predict(pairs), (u[[0, 3]] * v[[1, 2]]).sum(1) + b[[1, 2]], rtol=1e-5)
    items, _ = model.recommend([0, 1], k=5)
    assert items.shape == (2, 5)
    assert not set(items[0]) & set(train.positives[0].indices)


def test_ials_learns_the_signal_of_structured_data():
    from skbpr.datasets import make_interactions

    train, test = train_test_split(make_interactions(200, 100, 3000, random_state=0), test_size=0.2, random_state=0)
    learned = HybridBPR(**{**FAST, "n_components": 8, "epochs": 5}).fit(train).score(test)
    flat = HybridBPR(**{**FAST, "n_components": 8, "epochs": 5, "alpha": 1e6}).fit(train).score(test)  # ~0 scores
    assert learned > flat + 0.05


def test_cpu_fits_are_deterministic_for_a_seed(split):
    train, _ = split
    first = HybridBPR(**FAST).fit(train)
    second = HybridBPR(**FAST).fit(train)
    np.testing.assert_array_equal(first.item_embeddings_, second.item_embeddings_)
    np.testing.assert_array_equal(first.user_embeddings_, second.user_embeddings_)
    other = HybridBPR(**{**FAST, "random_state": 1}).fit(train)
    assert not np.allclose(first.item_embeddings_, other.item_embeddings_)


def test_unobserved_weight_and_reg_exponent_change_the_fit(split):
    train, _ = split
    base = HybridBPR(**FAST).fit(train)
    for change in ({"unobserved_weight": 0.05}, {"reg_exponent": 1.0, "alpha": 0.05}):
        assert not np.allclose(base.item_embeddings_, HybridBPR(**FAST, **change).fit(train).item_embeddings_)


def test_sampled_loss_parameters_are_ignored(split):
    train, _ = split
    base = HybridBPR(**FAST).fit(train)
    ignored = {"optimizer": "adam", "learning_rate": 0.5, "batch_size": 7, "n_negatives": 3, "negatives": "mixed"}
    with pytest.warns(UserWarning, match="are ignored") as record:
        other = HybridBPR(**FAST, **ignored, deterministic=False).fit(train)
    np.testing.assert_array_equal(base.item_embeddings_, other.item_embeddings_)
    said = str(next(w.message for w in record if "are ignored" in str(w.message)))
    for text in ("learning_rate=0.5", "batch_size=7", "n_negatives=3", "optimizer='adam'", "deterministic=False"):
        assert text in said  # every parameter given that the loss does not use is named


def test_implicit_negatives_are_not_used_and_the_user_is_told():
    X = _positives(30, 20)
    rneg = sp.csr_matrix(((_positives(30, 20, seed=5).toarray() > 0) & (X.toarray() == 0)).astype(np.float32))
    with pytest.warns(UserWarning, match="does not use the .* implicit negatives"):
        with_rneg = HybridBPR(**FAST).fit(X, rneg)
    without = HybridBPR(**FAST).fit(X)
    np.testing.assert_array_equal(with_rneg.item_embeddings_, without.item_embeddings_)


def test_confidences_weigh_the_positives():
    X = _positives(30, 20, weighted=True)
    weighted = HybridBPR(**FAST).fit(X)
    binary = HybridBPR(**FAST, weighting="none").fit(X)
    assert not np.allclose(weighted.item_embeddings_, binary.item_embeddings_)


def test_partial_fit_continues_sweeps_and_grows(split):
    train, _ = split
    model = HybridBPR(**FAST).fit(train)
    model.partial_fit(train)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    longer = HybridBPR(**{**FAST, "epochs": 4}).fit(train)
    np.testing.assert_allclose(model.item_embeddings_, longer.item_embeddings_, rtol=1e-5, atol=1e-6)
    grown = sp.vstack([train.positives, _positives(5, 40, seed=9)], format="csr")
    model.partial_fit(grown)
    assert model.user_embeddings_.shape[0] == 65 and len(model.history_) == 5
    fresh = HybridBPR(**FAST).partial_fit(train)
    assert len(fresh.history_) == 1


def test_early_stopping_restores_the_best_sweep(split):
    train, test = split
    model = HybridBPR(**{**FAST, "epochs": 8, "patience": 1}).fit(train, eval_set=test)
    assert model.best_epoch_ is not None
    assert all("val_ndcg@10" in h for h in model.history_)
    best = max(h["val_ndcg@10"] for h in model.history_)
    np.testing.assert_allclose(model.score(test), best, rtol=1e-6)
    held = HybridBPR(**{**FAST, "validation_fraction": 0.2}).fit(train)
    assert "val_ndcg@10" in held.history_[-1]


def test_pickle_round_trip(split):
    train, _ = split
    model = HybridBPR(**FAST).fit(train)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.recommend([0, 1], k=5)[0], model.recommend([0, 1], k=5)[0])
    again.partial_fit(train)
    assert len(again.history_) == 4


def test_cold_start_from_features():
    X = _positives(30, 25)
    uf, itf = _features(30, 6, 1), _features(25, 5, 2)
    model = HybridBPR(**FAST, user_features_mode="both", item_features_mode="features")
    model.fit(X, user_features=uf, item_features=itf)
    vecs, biases = model.item_representations()
    new_vecs, new_biases = model.item_representations(itf[[3, 17]])
    np.testing.assert_allclose(new_vecs, vecs[[3, 17]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_biases, biases[[3, 17]], rtol=1e-5, atol=1e-6)
    new_user = np.zeros((1, 6), dtype=np.float32)
    new_user[0, 2] = 1.0
    ids, scores = model.recommend(user_features=new_user, k=25)
    expected = model.user_representations(new_user) @ vecs.T + biases
    np.testing.assert_allclose(np.sort(scores[0])[::-1], np.sort(expected[0])[::-1], rtol=1e-5, atol=1e-6)
    assert np.isfinite(model.history_[-1]["loss"])


def test_clone_and_get_params_keep_auto():
    model = HybridBPR(loss="ials")
    assert clone(model).get_params()["unobserved_weight"] == "auto"
    assert model.get_params()["reg_exponent"] == "auto"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"unobserved_weight": -1.0}, "unobserved_weight"),
        ({"unobserved_weight": float("nan")}, "unobserved_weight"),
        ({"unobserved_weight": "many"}, "unobserved_weight"),
        ({"reg_exponent": 3.0}, "reg_exponent"),
        ({"reg_exponent": -0.5}, "reg_exponent"),
        ({"backend": "native"}, "backend"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_parameters_raise_before_any_work(params, name):
    model = HybridBPR(**{**FAST, **params})
    with pytest.raises(InvalidParameterError, match=name) as info:
        model.fit(_positives())
    assert info.value.parameter == name
    assert not hasattr(model, "model_") and not hasattr(model, "history_")


def test_the_ials_row_of_the_defaults_table():
    row = LOSS_DEFAULTS["ials"]
    assert row["unobserved_weight"] > 0 and row["alpha"] > 0 and row["reg_exponent"] >= 0
    assert all(row[k] is None for k in ("learning_rate", "n_negatives", "batch_size", "initial_accumulator"))
    assert all(LOSS_DEFAULTS[k]["unobserved_weight"] is None for k in ("bpr", "logistic", "hinge", "warp"))


def test_the_configuration_accepts_the_new_parameters():
    from skbpr.config import ConfigError, validate_config

    params = validate_config({"training": {"loss": "ials", "unobserved_weight": 0.2, "reg_exponent": "auto"}})
    params = params.estimator_params()
    assert (params["loss"], params["unobserved_weight"], params["reg_exponent"]) == ("ials", 0.2, "auto")
    with pytest.raises(ConfigError, match="unobserved_weight"):
        validate_config({"training": {"unobserved_weight": "heavy"}})
