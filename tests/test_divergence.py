"""Training that diverges raises and keeps the last finite weights; degenerate data fails before training."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skbpr import HybridBPR
from skbpr.datasets import make_interactions

DATA = make_interactions(200, 80, 3000, random_state=0)
BACKENDS = ["native", "torch"]


def _assert_serves_finite(model):
    assert np.isfinite(model.user_embeddings_).all() and np.isfinite(model.item_embeddings_).all()
    assert np.isfinite(model.predict(np.array([[0, 1], [5, 7]]))).all()
    _, scores = model.recommend(np.arange(20), k=5)
    assert np.isfinite(scores).all()
    for state in model._optimizer_state:
        for value in (state or {}).values():
            assert torch.isfinite(value.double()).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exploding_first_epoch_raises_and_keeps_the_initial_weights(backend):
    model = HybridBPR(8, learning_rate=1e300, epochs=1, random_state=0, backend=backend)
    with pytest.raises(FloatingPointError, match=r"epoch 1: the user embeddings became non-finite.*initial weights"):
        model.fit(DATA)
    assert model.history_ == []
    _assert_serves_finite(model)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adam"])
def test_divergence_after_some_epochs_keeps_the_last_finite_epoch(backend, optimizer):
    lr = {"sgd": 1e6, "adagrad": 1e30, "adam": 1e30}[optimizer]
    model = HybridBPR(8, optimizer=optimizer, learning_rate=lr, epochs=30, random_state=0, backend=backend)
    with pytest.raises(FloatingPointError, match=r"training diverged at epoch (\d+)") as info:
        model.fit(DATA)
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert len(model.history_) == epoch - 1
    _assert_serves_finite(model)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scores_that_would_overflow_float32_count_as_divergence(backend):
    # sgd at 1e6 keeps finite weights for a few epochs while their products pass float32's range
    model = HybridBPR(8, optimizer="sgd", learning_rate=1e6, epochs=10, random_state=0, backend=backend)
    with pytest.raises(FloatingPointError, match="beyond float32's range|non-finite"):
        model.fit(DATA)
    _assert_serves_finite(model)


def test_the_kept_weights_are_those_of_the_last_good_epoch():
    params = dict(n_components=8, optimizer="sgd", learning_rate=1e6, random_state=0, backend="torch")
    model = HybridBPR(epochs=30, **params)
    with pytest.raises(FloatingPointError):
        model.fit(DATA)
    good = len(model.history_)
    assert good >= 1
    reference = HybridBPR(epochs=good, **params).fit(DATA)
    np.testing.assert_array_equal(model.item_embeddings_, reference.item_embeddings_)
    np.testing.assert_array_equal(model.user_embeddings_, reference.user_embeddings_)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "R",
    [np.ones((4, 1)), np.ones((3, 5)), sp.csr_matrix(np.array([[1, 1], [1, 1], [0, 0]]))],
    ids=["one item", "every item positive for every user", "users with no positive and users with all"],
)
def test_no_drawable_negative_is_a_clear_error_before_training(backend, R):
    model = HybridBPR(4, epochs=1, backend=backend)
    with pytest.raises(ValueError, match=r"X \(Rpos\) leaves no negative to draw"):
        model.fit(R)
    assert not hasattr(model, "model_")
