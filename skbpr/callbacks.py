"""Callbacks: hooks the training loop calls at the start, each epoch and the end.

The protocol lives with the training loop (:mod:`skbpr.training.callbacks`),
the MLflow recorder with tracking (:mod:`skbpr.tracking.callbacks`); this
module gathers them where users import them.
"""

from skbpr.tracking.callbacks import MLflowCallback
from skbpr.training.callbacks import Callback, CallbackList, ProgressBar

__all__ = ["Callback", "CallbackList", "MLflowCallback", "ProgressBar"]
