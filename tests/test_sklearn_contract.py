"""The scikit-learn estimator contract, checked by scikit-learn's own suite.

``parametrize_with_checks`` runs every check that applies; the expected
failures below are the checks that cannot apply to a recommender whose
``fit`` takes a users x items matrix while ``predict`` takes ``(user, item)``
index pairs, each with its reason.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.base import clone
from sklearn.utils import estimator_checks

from skbpr import HybridBPR, InteractionsEncoder, PopularityRecommender
from skbpr.callbacks import Callback

if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 6):
    pytest.skip("expected_failed_checks needs scikit-learn >= 1.6", allow_module_level=True)

from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

FAST = {"n_components": 2, "epochs": 2, "batch_size": 64, "random_state": 0, "n_threads": 1}

PAIRS = (
    "predict scores (user, item) index pairs of shape (n_pairs, 2), not the users x items matrix fit "
    "takes, so predicting on the training X is an error by design"
)
RNEG_SECOND = (
    "the second argument of fit is Rneg, the users x items matrix of implicit negatives (kept for "
    "backward compatibility); a 1-D y passed there is ignored, which the check's call does exercise"
)
HYBRID_EXPECTED_FAILURES = {
    "check_fit_score_takes_y": RNEG_SECOND,
    "check_n_features_in_after_fitting": PAIRS,
    "check_estimators_dtypes": PAIRS,
    "check_dtype_object": PAIRS,
    "check_estimators_nan_inf": PAIRS,
    "check_estimators_pickle": PAIRS,
    "check_f_contiguous_array_estimator": PAIRS,
    "check_methods_sample_order_invariance": PAIRS,
    "check_methods_subset_invariance": PAIRS,
    "check_dict_unchanged": PAIRS,
    "check_fit_idempotent": PAIRS,
}
POPULARITY_EXPECTED_FAILURES = {"check_fit_score_takes_y": RNEG_SECOND}


def _expected_failures(estimator):
    if isinstance(estimator, HybridBPR):
        return HYBRID_EXPECTED_FAILURES
    return POPULARITY_EXPECTED_FAILURES


@parametrize_with_checks(
    [HybridBPR(**FAST), HybridBPR(**FAST, loss="ials"), PopularityRecommender()],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


ENCODER_API_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_estimators_unfitted",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_transformers_unfitted",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_valid_tag_types",
]


@pytest.mark.parametrize("name", ENCODER_API_CHECKS)
def test_encoder_api_checks(name):
    """InteractionsEncoder takes an events DataFrame with named columns (tag two_d_array=False), so
    scikit-learn's data checks, which feed numeric arrays, do not apply; the API checks do."""
    getattr(estimator_checks, name)("InteractionsEncoder", InteractionsEncoder())


def test_tags_declare_sparse_nonnegative_input_and_no_target():
    for estimator in (HybridBPR(), PopularityRecommender()):
        tags = get_tags(estimator)
        assert tags.input_tags.sparse and tags.input_tags.positive_only
        assert not tags.target_tags.required
    encoder = get_tags(InteractionsEncoder())
    assert not encoder.input_tags.two_d_array and not encoder.target_tags.required


def _matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((15, 12)) < 0.3).astype(np.float32)
    dense[np.arange(15), np.arange(15) % 12] = 1.0
    return sp.csr_matrix(dense)


def test_one_dimensional_y_is_ignored_not_taken_for_rneg():
    R = _matrix()
    y = np.arange(R.shape[0]) % 3
    plain = HybridBPR(**FAST).fit(R)
    with_y = HybridBPR(**FAST).fit(R, y)
    np.testing.assert_array_equal(with_y.item_embeddings_, plain.item_embeddings_)
    assert with_y.negatives_ == "uniform" and with_y.n_features_in_ == 12
    assert PopularityRecommender().fit(R, y).n_features_in_ == 12


class _Counter(Callback):
    """A callback that records on itself, as MLflowCallback does."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_epoch_end(self, estimator, epoch, logs):
        self.epochs.append(epoch)


def test_fit_leaves_the_callbacks_parameter_unchanged():
    counter = _Counter()
    est = HybridBPR(**FAST, callbacks=[counter])
    params_before = copy.deepcopy(est.get_params())
    est.fit(_matrix())
    assert counter.epochs == []  # the parameter itself was not called
    assert est.callbacks_[0].epochs == [1, 2] and est.callbacks_[0] is not counter
    assert est.get_params()["callbacks"][0] is counter
    assert vars(est.get_params()["callbacks"][0]) == vars(params_before["callbacks"][0])
    assert clone(est).get_params()["callbacks"][0].epochs == []
    est.partial_fit(_matrix())  # partial_fit keeps calling the fitted copies
    assert est.callbacks_[0].epochs == [1, 2, 3] and counter.epochs == []


def test_mlflow_callback_run_id_is_on_the_fitted_copy(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from skbpr.callbacks import MLflowCallback

    monkeypatch.chdir(tmp_path)
    callback = MLflowCallback(tracking_uri=f"sqlite:///{tmp_path / 'runs.db'}", log_model=False)
    est = HybridBPR(**FAST, callbacks=[callback])
    before = repr(est.get_params())
    est.fit(_matrix())
    assert repr(est.get_params()) == before
    assert not hasattr(callback, "run_id_") and callback._recorder is None
    assert isinstance(est.callbacks_[0].run_id_, str) and len(est.callbacks_[0].run_id_) == 32
    assert not hasattr(clone(est).get_params()["callbacks"][0], "run_id_")
