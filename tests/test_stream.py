"""One random stream: the torch engine draws the kernel's epoch order and negatives, so backends agree."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.training import native, stream
from skbpr.training.sampling import NegativeSampler

pytestmark = pytest.mark.skipif(not native.available(), reason="the compiled kernel is not built")


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000, 4097])
@pytest.mark.parametrize("seed", [0, 5, 2**63 + 11, 2**64 - 1])
def test_permutation_is_the_kernels_and_a_bijection(n, seed):
    order = stream.permutation(n, seed).numpy()
    np.testing.assert_array_equal(order, native.permutation(n, seed))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_permutation_at_some_positions_equals_the_whole():
    whole = stream.permutation(1000, 42)
    positions = torch.tensor([999, 0, 500, 17])
    np.testing.assert_array_equal(stream.permutation(1000, 42, positions).numpy(), whole[positions].numpy())


def test_uniform01_matches_python_integers():
    counters = torch.tensor([0, 1, 2**40, 2**62 + 3])
    seed = 2**64 - 12345
    expected = [(stream.mix64_int(seed ^ stream.mix64_int(c)) >> 11) * 2.0**-53 for c in counters.tolist()]
    np.testing.assert_array_equal(stream.uniform01(seed, counters).numpy(), expected)
    assert stream.uniform01(seed, counters).min() >= 0 and stream.uniform01(seed, counters).max() < 1


def _kernel(data, mode, m):
    """A compiled kernel over ``data`` (weights and optimisers are placeholders: only its draws are used)."""
    from skbpr.model import FeatureMap, HybridFactorization
    from skbpr.training import TrainingProblem, make_optimizer
    from skbpr.training.native import NativeKernel

    cpu = torch.device("cpu")
    model = HybridFactorization(data.n_users, data.n_items, 4)
    coo = data.positives.tocoo()
    problem = TrainingProblem(
        users=torch.as_tensor(coo.row, dtype=torch.int64),
        items=torch.as_tensor(coo.col, dtype=torch.int64),
        positives=data.positives,
        negatives=data.negatives,
        sampling=mode,
        implicit_ratio=0.3,
        user_map=FeatureMap(None, data.n_users, cpu),
        item_map=FeatureMap(None, data.n_items, cpu),
        loss="bpr",
        sigma=1.0,
        margin=1.0,
        alpha=0.0,
        draws_per_sample=m,
        batch_size=64,
    )
    return NativeKernel(
        problem,
        model,
        make_optimizer("sgd", model.user_weight.data, 0.1),
        make_optimizer("sgd", model.item_weight.data, 0.1),
    )


@pytest.mark.parametrize("mode", ["uniform", "implicit", "mixed"])
@pytest.mark.parametrize("m", [1, 4])
def test_sampler_draws_the_kernels_negatives(mode, m):
    data = make_interactions(120, 60, 1400, random_state=3)
    positives = data.positives.tocsr()
    sampler = NegativeSampler(positives, data.negatives, mode=mode, implicit_ratio=0.3)
    users = torch.as_tensor(np.repeat(np.arange(120), 30))
    drawn = sampler.sample(users, m, 99)
    assert drawn.shape == (users.numel(), m)
    assert not positives[users.numpy().repeat(m), drawn.numpy().ravel()].any()  # never a positive
    np.testing.assert_array_equal(drawn.numpy(), _kernel(data, mode, m).sample(users, 99).numpy())


@pytest.mark.parametrize("loss", ["bpr", "logistic", "hinge", "warp"])
@pytest.mark.parametrize("optimizer", ["adagrad", "adam", "sgd"])
@pytest.mark.parametrize(
    ("negatives", "features"), [("uniform", "identity"), ("implicit", "both"), ("mixed", "features")]
)
def test_backends_train_the_same_weights(loss, optimizer, negatives, features):
    data = make_interactions(100, 60, 1100, n_user_features=6, n_item_features=5, random_state=1)
    params = dict(
        n_components=8,
        loss=loss,
        optimizer=optimizer,
        negatives=negatives,
        n_negatives=2,
        user_features_mode=features,
        item_features_mode=features,
        learning_rate=0.05,
        alpha=0.01,  # one penalty for every loss, not WARP's own default (0.1)
        epochs=3,
        batch_size=256,
        random_state=7,
        n_threads=1,
    )
    rng = np.random.default_rng(0)  # dense features: mode 'features' needs a feature on every row
    matrices = dict(
        X=data.positives,
        Rneg=data.negatives,
        user_features=rng.random((data.n_users, 4)) * (rng.random((data.n_users, 4)) < 0.7) + 0.01,
        item_features=rng.random((data.n_items, 3)) * (rng.random((data.n_items, 3)) < 0.7) + 0.01,
    )
    fits = [HybridBPR(backend=backend, **params).fit(**matrices) for backend in ("native", "torch")]
    assert [f.backend_ for f in fits] == ["native", "torch"]
    for name in ("user_embeddings_", "item_embeddings_", "item_biases_"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name), atol=2e-4, rtol=0)
    np.testing.assert_allclose([h["loss"] for h in fits[0].history_], [h["loss"] for h in fits[1].history_], rtol=1e-4)


def test_seeds_give_other_streams():
    data = make_interactions(100, 50, 900, random_state=0)
    a = HybridBPR(8, epochs=2, random_state=1, backend="torch").fit(data)
    b = HybridBPR(8, epochs=2, random_state=2, backend="torch").fit(data)
    assert not np.allclose(a.item_embeddings_, b.item_embeddings_)
    assert stream.epoch_seed(1, 1) != stream.epoch_seed(1, 2) != stream.epoch_seed(2, 1)


def test_draws_exclude_positives_on_a_dense_row():
    R = sp.csr_matrix(np.array([[1, 1, 1, 0, 1], [0, 0, 0, 0, 1]], dtype=np.float32))
    sampler = NegativeSampler(R)
    draws = sampler.sample(torch.tensor([0] * 500), 3, 5).numpy()
    assert set(draws.ravel()) == {3}
