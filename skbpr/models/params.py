"""Checks of HybridBPR's constructor parameters, raised before any work."""

from __future__ import annotations

import os
from typing import Any

from skbpr.evaluation.names import parse_metric
from skbpr.training import OPTIMIZERS
from skbpr.training.callbacks import CallbackList
from skbpr.training.defaults import AUTO
from skbpr.training.engine import BACKENDS
from skbpr.training.losses import LOSSES
from skbpr.training.model import FEATURE_MODES
from skbpr.training.sampling import SAMPLERS
from skbpr.training.weighting import check_weighting
from skbpr.utils.validation import check_bool, check_choice, check_number, invalid

__all__ = ["AUTO_ALSO", "NEGATIVE_MODES", "check_model_params", "check_training_params"]

NEGATIVE_MODES = ("auto", *SAMPLERS)
AUTO_ALSO = 'or "auto" (the loss\'s default)'  # what the per-loss parameters accept besides numbers


def _is_auto(value: Any) -> bool:
    """Whether ``value`` is the ``"auto"`` marker."""
    return isinstance(value, str) and value == AUTO


_THREADS_PER_CPU = 8  # the most threads per CPU that n_threads may ask for


def check_model_params(estimator: Any) -> None:
    """Check the model and optimiser parameters (``n_components`` to ``init_std``)."""
    check_number(estimator.n_components, "n_components", integer=True, low=0, low_open=True)
    if not callable(estimator.loss):
        check_choice(estimator.loss, "loss", LOSSES)
    check_choice(estimator.negatives, "negatives", NEGATIVE_MODES)
    check_number(estimator.implicit_ratio, "implicit_ratio", low=0, high=1)
    check_weighting(estimator.weighting)
    if not _is_auto(estimator.n_negatives):
        check_number(estimator.n_negatives, "n_negatives", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.max_sampled):
        check_number(estimator.max_sampled, "max_sampled", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    check_number(estimator.sigma, "sigma", low=0, low_open=True)
    check_number(estimator.margin, "margin", low=0)
    check_choice(estimator.user_features_mode, "user_features_mode", FEATURE_MODES)
    check_choice(estimator.item_features_mode, "item_features_mode", FEATURE_MODES)
    check_choice(estimator.optimizer, "optimizer", OPTIMIZERS)
    if not _is_auto(estimator.learning_rate):
        check_number(estimator.learning_rate, "learning_rate", low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.alpha):
        check_number(estimator.alpha, "alpha", low=0, also=AUTO_ALSO)
    if not _is_auto(estimator.init_std):
        check_number(estimator.init_std, "init_std", low=0, also=AUTO_ALSO)


def check_training_params(estimator: Any) -> None:
    """Check the training-loop parameters (``epochs`` to ``callbacks``)."""
    check_number(estimator.epochs, "epochs", integer=True, low=0, low_open=True)
    if not _is_auto(estimator.batch_size):
        check_number(estimator.batch_size, "batch_size", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.initial_accumulator):
        check_number(estimator.initial_accumulator, "initial_accumulator", low=0, also=AUTO_ALSO)
    check_number(estimator.eval_every, "eval_every", integer=True, low=0, low_open=True)
    check_number(estimator.patience, "patience", integer=True, low=0, low_open=True, allow_none=True)
    if estimator.validation_fraction is not None:
        check_number(estimator.validation_fraction, "validation_fraction", low=0, high=1, low_open=True, high_open=True)
    limit = _THREADS_PER_CPU * (os.cpu_count() or 1)
    check_number(estimator.n_threads, "n_threads", integer=True, low=0, low_open=True, allow_none=True)
    if estimator.n_threads is not None and estimator.n_threads > limit:
        cpus = os.cpu_count()
        what = f"at most {limit} ({_THREADS_PER_CPU} x the {cpus} CPUs: more threads only slow training down)"
        raise invalid("n_threads", what, estimator.n_threads)
    check_choice(estimator.backend, "backend", BACKENDS)
    check_bool(estimator.deterministic, "deterministic")
    if not isinstance(estimator.eval_metric, str):
        raise invalid("eval_metric", "a metric name such as 'ndcg@10'", estimator.eval_metric)
    try:
        parse_metric(estimator.eval_metric)
    except ValueError as exc:
        raise invalid("eval_metric", f"a metric name ({exc})", estimator.eval_metric) from exc
    CallbackList(estimator.callbacks)  # raises TypeError for anything that is not a callback
