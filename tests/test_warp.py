"""WARP's own update and defaults: one step by hand, both engines, the settings a fit resolves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.model import FeatureMap, HybridFactorization
from skbpr.training import TrainingProblem, make_optimizer, native
from skbpr.training.defaults import AUTO_PARAMS, LOSS_DEFAULTS
from skbpr.training.torch_engine import Trainer

CPU = torch.device("cpu")
N_ITEMS = 9


def _one_user_problem(weights_u: np.ndarray, weights_i: np.ndarray, *, alpha: float, lr: float, accumulator: float):
    """Two identical copies (torch, kernel) of a model of one user and N_ITEMS items; the user likes item 0."""
    R = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, N_ITEMS), dtype=np.float32)
    engines = []
    for kind in ("torch", "native"):
        model = HybridFactorization(1, N_ITEMS, weights_u.shape[1])
        model.user_weight.data[:] = torch.as_tensor(weights_u)
        model.item_weight.data[:] = torch.as_tensor(weights_i)
        opt_u = make_optimizer("adagrad", model.user_weight.data, lr, accumulator)
        opt_i = make_optimizer("adagrad", model.item_weight.data, lr, accumulator)
        problem = TrainingProblem(
            users=torch.tensor([0]), items=torch.tensor([0]), positives=R, negatives=None, sampling="uniform",
            implicit_ratio=0.5, user_map=FeatureMap(None, 1, CPU), item_map=FeatureMap(None, N_ITEMS, CPU),
            loss="warp", sigma=1.0, margin=1.0, alpha=alpha, draws_per_sample=4, batch_size=1,
        )  # fmt: skip
        if kind == "torch":
            engines.append((Trainer(problem, model, opt_u, opt_i), model, opt_i))
        elif native.available():
            engines.append((native.NativeKernel(problem, model, opt_u, opt_i), model, opt_i))
    return engines


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_one_warp_step_by_hand(alpha):
    # user u = (1, 0); items as (vector, bias) rows. Positive 0 scores 0.5; candidates drawn 3, 5, 6, 7:
    # item 3 scores -1 (no violation of 0.5 - 1), item 5 scores 0 > -0.5 (the first violation, after
    # 2 tries), items 6 and 7 are never looked at.
    u = np.array([[1.0, 0.0]], dtype=np.float32)
    v = np.zeros((N_ITEMS, 3), dtype=np.float32)
    v[0] = [0.5, 0.2, 0.0]
    v[3] = [-1.0, 0.4, 0.0]
    v[5] = [0.25, -0.3, -0.25]
    v[6] = v[7] = [2.0, 2.0, 2.0]  # would violate: must stay untouched
    lr, acc0, M = 0.1, 1.0, 4
    weight = math.log(math.floor((N_ITEMS - 1) / 2))  # log 4
    reg = 2 * alpha
    u1 = np.array([1.0, 0.0, 1.0])
    grads = {
        0: -weight * u1 + reg * v[0],
        3: reg / M * v[3],  # scored, not chosen: its L2 term only
        5: weight * u1 + reg / M * v[5],
    }
    g_user = weight * (v[5, :2] - v[0, :2]) + reg * u[0]
    expected_v = v.astype(np.float64)
    for row, g in grads.items():
        expected_v[row] -= lr * g / np.sqrt(acc0 + g * g)
    expected_u = u[0] - lr * g_user / np.sqrt(acc0 + g_user * g_user)
    expected_loss = weight * (1.0 - 0.5 + 0.0)

    negatives = torch.tensor([[3, 5, 6, 7]])
    engines = _one_user_problem(u, v, alpha=alpha, lr=lr, accumulator=acc0)
    for engine, model, opt_i in engines:
        if isinstance(engine, Trainer):
            loss, (ur, ug), (ir, ig) = engine.gradients(engine.users, engine.items, negatives)
            engine.user_optimizer.step(ur, ug)
            engine.item_optimizer.step(ir, ig)
            loss = float(loss)
        else:
            loss = engine.train(0, 1, seed=0, n_threads=1, shuffle=False, negatives=negatives)
        assert loss == pytest.approx(expected_loss, rel=1e-6)
        np.testing.assert_allclose(model.item_weight.data.numpy(), expected_v, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(model.user_weight.data.numpy()[0], expected_u, rtol=1e-6, atol=1e-7)
        untouched = [1, 2, 4, 6, 7, 8]
        assert torch.all(opt_i.state["sum_sq"][untouched] == acc0)  # never handed to the optimiser
    assert len(engines) == (2 if native.available() else 1)


def _used(model) -> dict:
    return {name: getattr(model, f"{name}_") for name in AUTO_PARAMS}


def test_warp_defaults_train_the_same_weights_on_both_engines():
    if not native.available():
        pytest.skip("the compiled kernel is not built")
    data = make_interactions(40, 40, 300, n_item_features=4, random_state=2)
    fits = [
        HybridBPR(8, loss="warp", epochs=2, random_state=5, backend=backend, n_threads=1).fit(data)
        for backend in ("native", "torch")
    ]
    assert _used(fits[0]) == _used(fits[1]) == LOSS_DEFAULTS["warp"]
    for name in ("user_embeddings_", "item_embeddings_", "item_biases_"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name), atol=1e-5, rtol=0)


def test_loss_defaults_apply_only_to_parameters_left_at_auto():
    data = make_interactions(40, 30, 200, random_state=0)
    warp = HybridBPR(4, loss="warp", epochs=1, learning_rate=0.05, random_state=0, n_threads=1).fit(data)
    assert _used(warp) == {**LOSS_DEFAULTS["warp"], "learning_rate": 0.05}
    assert warp.learning_rate == 0.05 and warp.batch_size == "auto"  # the parameters themselves never change
    # a value given is used as it is, even the general default
    given = HybridBPR(4, loss="warp", epochs=1, batch_size=4096, alpha=0.01, random_state=0, n_threads=1).fit(data)
    assert _used(given) == {**LOSS_DEFAULTS["warp"], "batch_size": 4096, "alpha": 0.01}
    bpr = HybridBPR(4, epochs=1, random_state=0, n_threads=1).fit(data)
    assert _used(bpr) == {
        "learning_rate": 0.1, "alpha": 0.01, "n_negatives": 16, "init_std": 0.1, "batch_size": 4096,
        "initial_accumulator": 0.0, "max_sampled": 10, "shared_negatives": 0, "unobserved_weight": None,
        "reg_exponent": None,
    }  # fmt: skip
    # Adagrad's accumulators start where asked: rows no positive touched keep the start value
    # (in units of one positive's squared gradient: divided by batch_size**2)
    est = HybridBPR(4, epochs=1, initial_accumulator=2.5, batch_size=2, random_state=0, n_threads=1)
    R = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, 1])), shape=(3, 6))
    est.fit(R)
    state = est._optimizer_state[0]["sum_sq"]
    assert torch.all(state[2] == 2.5 / 4)  # user 2 has no positive: never updated
    assert torch.all(state[:2] > 2.5 / 4)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "1"])
def test_initial_accumulator_is_validated_before_any_work(value):
    est = HybridBPR(4, initial_accumulator=value)
    with pytest.raises(ValueError, match="initial_accumulator"):
        est.fit(sp.csr_matrix(np.eye(4)))
    assert not hasattr(est, "model_")
