"""Training: devices, sparse-row optimisers, the random stream and the engines.

The estimator describes a fit once; the torch engine (any device, any loss)
and the compiled CPU kernel run its epochs with the same update and the same
random draws (:mod:`skbpr.training.stream`).
"""

from skbpr.training.devices import DEVICES, resolve_device, torch_threads
from skbpr.training.optimizers import OPTIMIZERS, RowAdagrad, RowAdam, RowSGD, make_optimizer
from skbpr.training.torch_engine import Trainer

__all__ = [
    "DEVICES",
    "OPTIMIZERS",
    "RowAdagrad",
    "RowAdam",
    "RowSGD",
    "Trainer",
    "make_optimizer",
    "resolve_device",
    "torch_threads",
]
