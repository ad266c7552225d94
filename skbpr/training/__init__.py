"""Training: the problem description, the engines that run it, and what they share.

The estimator describes a fit once (:class:`TrainingProblem`) and hands it to
an :class:`Engine`: the compiled CPU kernel (:mod:`skbpr.training.native`) or
torch operations on any device (:mod:`skbpr.training.torch_engine`). Both
apply the same update with the sparse-row optimisers of
:mod:`skbpr.training.optimizers`, and draw the same epoch order and
negatives from one counter-based random stream
(:mod:`skbpr.training.stream`, :mod:`skbpr.training.sampling`).
"""

from skbpr.training.devices import DEVICES, resolve_device, thread_budget, torch_threads
from skbpr.training.optimizers import OPTIMIZERS, RowAdagrad, RowAdam, RowSGD, make_optimizer
from skbpr.training.problem import TrainingProblem

__all__ = [
    "DEVICES",
    "OPTIMIZERS",
    "RowAdagrad",
    "RowAdam",
    "RowSGD",
    "TrainingProblem",
    "make_optimizer",
    "resolve_device",
    "thread_budget",
    "torch_threads",
]
