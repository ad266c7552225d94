"""The one place that runs training: which engine, and its epochs.

The estimator describes a fit once (:class:`TrainingProblem`) and hands it,
with the weights and the optimisers, to an :class:`Engine`. Two engines apply
the same update with the same random draws: the compiled CPU kernel
(:mod:`skbpr.training.native`) and torch operations on any device
(:class:`skbpr.training.torch_engine.Trainer`).
"""

from __future__ import annotations

import warnings

import torch

from skbpr.training import native
from skbpr.training.alternating import AlternatingSolver
from skbpr.training.model import HybridFactorization
from skbpr.training.optimizers import RowSGD
from skbpr.training.problem import TrainingProblem
from skbpr.training.torch_engine import Trainer

BACKENDS = ("auto", "native", "torch")

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Warn with ``message`` the first time only, in this process."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=5)


def choose_backend(backend: str, device: torch.device, loss: object, *, deterministic: bool) -> str:
    """The engine a fit runs on, ``"native"`` or ``"torch"``.

    ``loss="ials"`` always runs in torch (its alternating block solver,
    :mod:`skbpr.training.alternating`); ``backend="native"`` with it raises.

    ``backend="native"`` that cannot run raises ``ValueError`` with the
    reason; ``"auto"`` falls back to torch, warning once per process when the
    compiled kernel is missing where it would have run (the weights are the
    same, the speed is not), and ``deterministic=False`` without the kernel
    warns that training is deterministic after all.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(loss, str) and loss == "ials":
        if backend == "native":
            raise ValueError(
                "backend='native' cannot be used: loss='ials' is solved by alternating least squares in torch "
                "(skbpr.training.alternating); use backend='auto' or 'torch'"
            )
        return "torch"  # a block solver, deterministic on the CPU: deterministic=False changes nothing
    blocker = None
    if backend == "torch":
        blocker = "backend='torch' was asked for"
    elif device.type != "cpu":
        blocker = f"it runs on the CPU only, got device={str(device)!r}"
    elif callable(loss):
        blocker = "a loss callable needs autograd; use backend='torch' or 'auto'"
    elif not native.available():
        blocker = native.unavailable_reason()
        if backend == "auto":
            _warn_once(
                f"training with torch: the compiled kernel is unavailable ({blocker}). The weights are those the "
                "kernel would train, several times slower; reinstall skbpr from a wheel, or from source where a "
                "C++ compiler is available, to get it back"
            )
    if blocker is not None and backend == "native":
        raise ValueError(f"backend='native' cannot be used: {blocker}")
    if blocker is not None and not deterministic:
        _warn_once(
            f"deterministic=False needs the compiled kernel, which does not run here ({blocker}): "
            "training uses the deterministic torch path"
        )
    return "torch" if blocker is not None else "native"


class Engine:
    """Epochs of one training problem on the chosen engine.

    Parameters
    ----------
    problem : TrainingProblem
        The data and the update.
    model : HybridFactorization
        Weights, updated in place.
    user_optimizer, item_optimizer : RowSGD or None
        Optimisers over the user and item tables, their state advanced in
        place; ``None`` for ``loss="ials"``, whose block solver
        (:class:`~skbpr.training.alternating.AlternatingSolver`) has no
        optimiser.
    backend : {"native", "torch"}
        Which engine runs (see :func:`choose_backend`).
    deterministic : bool, default=True
        ``False``: the compiled kernel's lock-free mode.
    """

    def __init__(
        self,
        problem: TrainingProblem,
        model: HybridFactorization,
        user_optimizer: RowSGD | None,
        item_optimizer: RowSGD | None,
        *,
        backend: str,
        deterministic: bool = True,
    ) -> None:
        self.problem, self.model, self.backend = problem, model, backend
        self.threads_used = 0  # the threads of the last epoch
        self.user_optimizer, self.item_optimizer = user_optimizer, item_optimizer
        if isinstance(problem.loss, str) and problem.loss == "ials":
            self._runner = AlternatingSolver(problem, model)
        elif backend == "native":
            self._runner = native.NativeKernel(
                problem, model, user_optimizer, item_optimizer, deterministic=deterministic
            )
        else:
            self._runner = Trainer(problem, model, user_optimizer, item_optimizer)

    @property
    def optimizer_states(self) -> tuple[dict[str, torch.Tensor], ...]:
        """The state dicts of the optimisers (none for the block solver), for snapshots and checks."""
        return tuple(opt.state for opt in (self.user_optimizer, self.item_optimizer) if opt is not None)

    def epoch(self, seed: int) -> float:
        """One pass over the samples in the order of the epoch ``seed``; the mean batch loss.

        For ``loss="ials"``: one alternating sweep, and the objective per
        positive after it. The kernel runs torch's thread count, within the
        thread budget of its OpenMP runtime (:func:`native.thread_budget`: a
        joblib worker's share of the cores, a ``threadpoolctl`` limit).
        """
        if isinstance(self._runner, native.NativeKernel):
            loss = self._runner.epoch(seed, n_threads=native.thread_budget(torch.get_num_threads()))
            self.threads_used = self._runner.threads_used
            return loss
        self.threads_used = torch.get_num_threads()
        return self._runner.epoch(seed)
