"""Checks of HybridBPR's constructor parameters, raised before any work (the float32 range among them)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from skbpr.evaluation.names import parse_metric
from skbpr.training import OPTIMIZERS
from skbpr.training.callbacks import CallbackList
from skbpr.training.defaults import AUTO, AUTO_PARAMS, loss_defaults, resolve
from skbpr.training.devices import OPTIMIZER_STATES, available_memory, resolve_device, table_bytes
from skbpr.training.engine import BACKENDS
from skbpr.training.losses import LOSSES, SHARED_LOSSES
from skbpr.training.model import FEATURE_MODES
from skbpr.training.sampling import SAMPLERS, SHARED_SAMPLINGS
from skbpr.training.weighting import check_weighting
from skbpr.utils.validation import check_bool, check_choice, check_number, invalid

__all__ = [
    "AUTO_ALSO",
    "NEGATIVE_MODES",
    "check_float32_range",
    "check_model_params",
    "check_table_memory",
    "check_training_params",
]

NEGATIVE_MODES = ("auto", *SAMPLERS)
AUTO_ALSO = 'or "auto" (the loss\'s default)'  # what the per-loss parameters accept besides numbers


def _is_auto(value: Any) -> bool:
    """Whether ``value`` is the ``"auto"`` marker."""
    return isinstance(value, str) and value == AUTO


def _not_applicable(estimator: Any, name: str) -> bool:
    """Whether ``name`` is ``None`` where the loss's row of the defaults table says it does not apply.

    ``None`` stands for "unused" (``loss="ials"`` has no learning rate, the
    sampled losses no ``unobserved_weight``), so that a row of the table
    passed as parameters is accepted as it is.
    """
    if getattr(estimator, name) is not None:
        return False
    loss = estimator.loss
    return (callable(loss) or loss in LOSSES) and loss_defaults(loss)[name] is None


_THREADS_PER_CPU = 8  # the most threads per CPU that n_threads may ask for
_F32_MAX = float(np.finfo(np.float32).max)
_MAX_DIM = int(np.iinfo(np.int64).max) - 1  # the largest n_components whose n_components + 1 is an int64


def check_model_params(estimator: Any) -> None:
    """Check the model and optimiser parameters (``n_components`` to ``init_std``), then :func:`check_float32_range`."""
    check_number(estimator.n_components, "n_components", integer=True, low=0, low_open=True)
    if estimator.n_components > _MAX_DIM:
        what = f"an integer <= {_MAX_DIM} (the item table's n_components + 1 columns are a torch int64 dimension)"
        raise invalid("n_components", what, estimator.n_components)
    if not callable(estimator.loss):
        check_choice(estimator.loss, "loss", LOSSES)
    check_choice(estimator.negatives, "negatives", NEGATIVE_MODES)
    check_number(estimator.implicit_ratio, "implicit_ratio", low=0, high=1)
    check_weighting(estimator.weighting)
    if not _is_auto(estimator.n_negatives) and not _not_applicable(estimator, "n_negatives"):
        check_number(estimator.n_negatives, "n_negatives", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.max_sampled) and not _not_applicable(estimator, "max_sampled"):
        check_number(estimator.max_sampled, "max_sampled", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.shared_negatives) and not _not_applicable(estimator, "shared_negatives"):
        check_number(estimator.shared_negatives, "shared_negatives", integer=True, low=0, also=AUTO_ALSO)
    check_choice(estimator.shared_sampling, "shared_sampling", SHARED_SAMPLINGS)
    _check_shared(estimator)
    check_number(estimator.sigma, "sigma", low=0, low_open=True)
    check_number(estimator.margin, "margin", low=0)
    check_choice(estimator.user_features_mode, "user_features_mode", FEATURE_MODES)
    check_choice(estimator.item_features_mode, "item_features_mode", FEATURE_MODES)
    check_choice(estimator.optimizer, "optimizer", OPTIMIZERS)
    if not _is_auto(estimator.learning_rate) and not _not_applicable(estimator, "learning_rate"):
        check_number(estimator.learning_rate, "learning_rate", low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.alpha) and not _not_applicable(estimator, "alpha"):
        check_number(estimator.alpha, "alpha", low=0, also=AUTO_ALSO)
    if not _is_auto(estimator.init_std) and not _not_applicable(estimator, "init_std"):
        check_number(estimator.init_std, "init_std", low=0, also=AUTO_ALSO)
    if not _is_auto(estimator.unobserved_weight) and not _not_applicable(estimator, "unobserved_weight"):
        check_number(estimator.unobserved_weight, "unobserved_weight", low=0, also=AUTO_ALSO)
    if not _is_auto(estimator.reg_exponent) and not _not_applicable(estimator, "reg_exponent"):
        check_number(estimator.reg_exponent, "reg_exponent", low=0, high=2, also=AUTO_ALSO)
    check_float32_range(estimator)
    check_table_memory(estimator, 1, 1)  # one row per table: the least any data needs


def check_table_memory(
    estimator: Any, user_rows: int, item_rows: int, device: torch.device | None = None, *, data: str = ""
) -> None:
    """Raise, naming ``n_components`` and the bytes, when the tables and optimiser state cannot fit in memory.

    ``user_rows`` and ``item_rows``: the rows of the embedding tables (one
    each before the data is known); ``device``: where they will live
    (``None``: the ``device`` parameter's, skipped when it cannot be
    resolved, which fit reports); ``data``: the id space, for the message.
    Memory is that :func:`~skbpr.training.devices.available_memory` reports.
    """
    if device is None:
        try:
            device = resolve_device(estimator.device)
        except ValueError:
            return
    n = int(estimator.n_components)
    optimizer = estimator.optimizer if isinstance(estimator.optimizer, str) else "adam"
    needed = table_bytes(user_rows, item_rows, n, optimizer)
    available = available_memory(device)
    if available is None or needed <= available:
        return
    states = OPTIMIZER_STATES.get(optimizer, 2)
    what = (
        f"small enough for the float32 embedding tables ({user_rows} user rows x {n} columns, {item_rows} item "
        f"rows x {n} + 1 columns{data}) with the {optimizer} state ({states} more table copies) to fit in memory: they "
        f"need {needed} bytes ({needed / 2**30:.3g} GiB), {available} bytes ({available / 2**30:.3g} GiB) are "
        f"available on {device}"
    )
    raise invalid("n_components", what, estimator.n_components)


def _check_shared(estimator: Any) -> None:
    """Shared negatives need a loss that trains on them and uniform per-user sampling."""
    shared = estimator.shared_negatives
    if _is_auto(shared):
        shared = 0 if callable(estimator.loss) else resolve(estimator.loss, shared_negatives=AUTO)["shared_negatives"]
    shared = shared or 0  # None: the loss ("ials") draws no negative at all
    if shared > 0 and (callable(estimator.loss) or estimator.loss not in SHARED_LOSSES):
        loss = "a loss callable" if callable(estimator.loss) else f"loss={estimator.loss!r}"
        what = f"0 with {loss}: shared negatives train the losses {SHARED_LOSSES} only"
        raise invalid("shared_negatives", what, estimator.shared_negatives)
    if shared > 0 and estimator.negatives not in ("auto", "uniform"):
        what = (
            f"0 with negatives={estimator.negatives!r}: shared negatives are drawn from the whole catalogue, "
            "not from implicit negatives"
        )
        raise invalid("shared_negatives", what, estimator.shared_negatives)
    if shared > 0 and estimator.deterministic is False:
        what = (
            "True with shared negatives: the shared-negatives step has no lock-free mode (it is deterministic "
            f"whatever the thread count; shared_negatives resolves to {shared} for loss={estimator.loss!r})"
        )
        raise invalid("deterministic", what, estimator.deterministic)
    if shared == 0 and estimator.shared_sampling != "uniform":
        what = (
            f"'uniform' when no shared negative is drawn (shared_negatives resolves to 0 for loss={estimator.loss!r})"
        )
        raise invalid("shared_sampling", what, estimator.shared_sampling)


def check_float32_range(estimator: Any) -> None:
    """Reject magnitudes that overflow float32, the training dtype, for the initial model.

    Initial weights lie within 6 standard deviations (all but a 2e-9
    share), so an initial score, a sum of ``n_components`` products, is
    bounded by ``n_components * (6 * init_std)**2``; trained scores are
    taken to be of order 1 at least. ``init_std`` must keep that bound
    finite, and ``sigma`` (times a score difference), ``alpha`` (times a
    row's squared norm) and ``margin`` must keep the loss finite.
    """
    k = int(estimator.n_components)
    resolved = resolve(estimator.loss, **{name: getattr(estimator, name) for name in AUTO_PARAMS})
    init_std, alpha = resolved["init_std"], resolved["alpha"]
    coord = 6.0 * float(init_std)
    score = k * coord * coord  # products of floats: inf, never OverflowError
    std_max = float(np.sqrt(_F32_MAX / 2 / (36.0 * k)))
    if not float(init_std) <= std_max:
        what = (
            f"<= {std_max:.3g} with n_components={k}: larger initial weights make "
            "the scores overflow float32 (the training dtype)"
        )
        raise invalid("init_std", what, init_std)
    scale = max(score, 1.0)
    sigma_max = _F32_MAX / (2 * scale)
    if not float(estimator.sigma) <= sigma_max:
        what = (
            f"<= {sigma_max:.3g}: sigma * (pos - neg) overflows float32 (the training dtype) "
            f"for scores of magnitude {scale:.3g} (init_std={init_std!r}, n_components={k})"
        )
        raise invalid("sigma", what, estimator.sigma)
    if not float(alpha) <= sigma_max:
        what = (
            f"<= {sigma_max:.3g}: alpha * ||w||^2, the L2 penalty, overflows float32 "
            f"(the training dtype) for rows of squared norm {scale:.3g} "
            f"(init_std={init_std!r}, n_components={k})"
        )
        raise invalid("alpha", what, alpha)
    if not float(estimator.margin) <= _F32_MAX / 4:
        raise invalid("margin", f"<= {_F32_MAX / 4:.3g} (float32, the training dtype)", estimator.margin)


def check_training_params(estimator: Any) -> None:
    """Check the training-loop parameters (``epochs`` to ``callbacks``)."""
    check_number(estimator.epochs, "epochs", integer=True, low=0, low_open=True)
    if not _is_auto(estimator.batch_size) and not _not_applicable(estimator, "batch_size"):
        check_number(estimator.batch_size, "batch_size", integer=True, low=0, low_open=True, also=AUTO_ALSO)
    if not _is_auto(estimator.initial_accumulator) and not _not_applicable(estimator, "initial_accumulator"):
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
    if isinstance(estimator.loss, str) and estimator.loss == "ials" and estimator.backend == "native":
        what = (
            "'auto' or 'torch' with loss='ials' (solved by alternating least squares in torch; "
            "the compiled kernel runs the sampled losses)"
        )
        raise invalid("backend", what, estimator.backend)
    check_bool(estimator.deterministic, "deterministic")
    if not isinstance(estimator.eval_metric, str):
        raise invalid("eval_metric", "a metric name such as 'ndcg@10'", estimator.eval_metric)
    try:
        parse_metric(estimator.eval_metric)
    except ValueError as exc:
        raise invalid("eval_metric", f"a metric name ({exc})", estimator.eval_metric) from exc
    CallbackList(estimator.callbacks)  # raises TypeError for anything that is not a callback
