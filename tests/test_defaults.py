"""Per-loss defaults: ``"auto"`` parameters resolved from one table, visible after fit, searchable."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skbpr.config import ConfigError, validate_config
from skbpr.estimator import HybridBPR
from skbpr.interactions import Interactions
from skbpr.losses import LOSSES
from skbpr.model_selection import PerUserKFold
from skbpr.training.defaults import AUTO_PARAMS, LOSS_DEFAULTS, loss_defaults, resolve

COMMON = {"n_components": 4, "epochs": 2, "batch_size": 64, "random_state": 0, "device": "cpu", "n_threads": 1}


def _positives(n_users: int = 40, n_items: int = 30, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < 0.2
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    return sp.csr_matrix(dense.astype(np.float32))


def test_table_has_a_row_for_every_loss_with_every_auto_parameter():
    assert set(LOSS_DEFAULTS) == set(LOSSES)
    for loss, row in LOSS_DEFAULTS.items():
        assert set(row) == set(AUTO_PARAMS), loss
        if loss == "ials":  # a block solver: no learning rate, no negatives drawn
            assert row["learning_rate"] is None and row["n_negatives"] is None and row["unobserved_weight"] > 0
        else:  # sampled losses: no all-pairs weight
            assert row["learning_rate"] > 0 and row["alpha"] >= 0 and row["n_negatives"] >= 1
            assert row["unobserved_weight"] is None and row["reg_exponent"] is None


def test_documented_values():
    # the values the estimator's docstring and docs/guide.md quote
    batched = {
        "init_std": 0.1,
        "batch_size": 4096,
        "initial_accumulator": 0.0,
        "max_sampled": 10,
        "shared_negatives": 0,
    }
    batched.update(unobserved_weight=None, reg_exponent=None)
    assert loss_defaults("bpr") == {"learning_rate": 0.1, "alpha": 0.01, "n_negatives": 16, **batched}
    assert loss_defaults("logistic")["n_negatives"] == 16 and loss_defaults("hinge")["n_negatives"] == 1
    assert loss_defaults("warp") == {
        "learning_rate": 0.02, "alpha": 0.0, "n_negatives": 1, "init_std": 0.01, "batch_size": 1,
        "initial_accumulator": 1.0, "max_sampled": 30, "shared_negatives": 0,
        "unobserved_weight": None, "reg_exponent": None,
    }  # fmt: skip
    assert loss_defaults(lambda pos, neg: (neg - pos[:, None]).mean()) == loss_defaults("bpr")


def test_resolve_replaces_only_auto():
    assert resolve("logistic", learning_rate="auto", alpha=0.5, n_negatives=3) == {
        "learning_rate": 0.1,
        "alpha": 0.5,
        "n_negatives": 3,
    }
    with pytest.raises(ValueError, match="epochs"):
        resolve("bpr", epochs="auto")
    with pytest.raises(ValueError, match="'nope'"):
        loss_defaults("nope")


def test_get_params_keeps_auto_and_fit_exposes_the_resolved_values():
    model = HybridBPR(**COMMON)
    left = [k for k in AUTO_PARAMS if k not in COMMON]
    assert {k: model.get_params()[k] for k in left} == dict.fromkeys(left, "auto")
    model.fit(_positives())
    assert (model.learning_rate_, model.alpha_, model.n_negatives_) == (0.1, 0.01, 16)
    assert isinstance(model.n_negatives_, int) and isinstance(model.learning_rate_, float)
    assert {k: model.get_params()[k] for k in left} == dict.fromkeys(left, "auto")
    assert model.batch_size_ == 64  # given, so used as it is
    warp = HybridBPR(loss="warp", **COMMON).fit(_positives())
    assert (warp.learning_rate_, warp.alpha_, warp.init_std_, warp.max_sampled_) == (0.02, 0.0, 0.01, 30)
    given = HybridBPR(learning_rate=0.2, alpha=0.0, n_negatives=2, **COMMON).fit(_positives())
    assert (given.learning_rate_, given.alpha_, given.n_negatives_) == (0.2, 0.0, 2)


@pytest.mark.parametrize("loss", ["bpr", "warp", "ials"])
def test_auto_trains_exactly_like_the_explicit_row(loss):
    X = _positives()
    auto = HybridBPR(loss=loss, **COMMON).fit(X)
    row = {k: v for k, v in loss_defaults(loss).items() if k not in COMMON}
    explicit = HybridBPR(loss=loss, **row, **COMMON).fit(X)
    again = HybridBPR(loss=loss, **COMMON).fit(X)
    np.testing.assert_array_equal(auto.item_embeddings_, explicit.item_embeddings_)
    np.testing.assert_array_equal(auto.item_embeddings_, again.item_embeddings_)


def test_the_negatives_default_changes_training():
    # 16 negatives per positive is a different fit from one: the default is in effect, not ignored
    X = _positives()
    auto = HybridBPR(**COMMON).fit(X)
    one = HybridBPR(n_negatives=1, **COMMON).fit(X)
    assert not np.allclose(auto.item_embeddings_, one.item_embeddings_)


def test_clone_and_grid_search_keep_auto_and_resolve_per_candidate():
    model = HybridBPR(**COMMON)
    assert clone(model).get_params()["learning_rate"] == "auto"
    search = GridSearchCV(
        model,
        {"loss": ["bpr", "warp"], "alpha": ["auto", 0.05]},
        cv=PerUserKFold(2, random_state=0),
        error_score="raise",
    )
    search.fit(Interactions.from_matrices(_positives(60, 30)))
    assert set(search.cv_results_["param_alpha"]) == {"auto", 0.05}
    best = search.best_estimator_
    expected_alpha = loss_defaults(best.loss)["alpha"] if best.alpha == "auto" else best.alpha
    assert best.alpha_ == expected_alpha and best.learning_rate_ == loss_defaults(best.loss)["learning_rate"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("learning_rate", "fast"), ("learning_rate", 0), ("alpha", "Auto"), ("alpha", -1.0), ("n_negatives", 0.5)],
)
def test_bad_values_name_the_parameter_and_auto(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be .* or \"auto\".*got {value!r}"):
        HybridBPR(**{name: value}, **COMMON).fit(_positives())


def test_config_accepts_auto_and_numbers():
    config = validate_config({"optimizer": {"learning_rate": "auto", "alpha": 0.02}, "training": {"n_negatives": 4}})
    params = config.estimator_params()
    assert params["learning_rate"] == "auto" and params["alpha"] == 0.02 and params["n_negatives"] == 4
    assert validate_config({}).estimator_params()["n_negatives"] == "auto"
    assert HybridBPR(**params).get_params()["learning_rate"] == "auto"
    with pytest.raises(ConfigError, match="optimizer.learning_rate.*auto"):
        validate_config({"optimizer": {"learning_rate": "fast"}})
