"""Callbacks: hooks the training loop calls at the start, each epoch and the end.

A callback is either an object with any of the methods of :class:`Callback`
or a plain function ``f(estimator, epoch, logs)`` called after every epoch.
``logs`` holds the epoch's mean training ``loss`` and, on evaluation epochs,
the validation metrics (``val_ndcg@10`` and so on). An ``on_epoch_end``
that returns ``True`` stops training after that epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Callback:
    """Base class for training callbacks; every hook does nothing by default.

    Examples
    --------
    >>> from skbpr import HybridBPR
    >>> from skbpr.callbacks import Callback
    >>> from skbpr.datasets import make_interactions
    >>> class StopAfter(Callback):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def on_epoch_end(self, estimator, epoch, logs):
    ...         return epoch >= self.n  # True stops training
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> model = HybridBPR(8, epochs=10, random_state=0, n_threads=1, callbacks=[StopAfter(3)]).fit(data)
    >>> [entry["epoch"] for entry in model.history_]
    [1, 2, 3]
    """

    #: Metric names the callback asks the fit to evaluate on the validation data of each evaluation
    #: epoch, besides ``eval_metric``, ``ndcg@10`` and ``auc``; they reach the hooks as ``val_<name>``.
    metrics: tuple[str, ...] = ()

    def on_fit_begin(self, estimator: Any, logs: dict[str, Any]) -> None:
        """Called once before the first epoch; ``logs`` describes the data.

        ``logs`` holds ``epochs``, the data's sizes (``n_users``,
        ``n_positives``...) and ``search``: ``{"fold": (split, n_splits) or
        None, "whole": bool}``, where the fit stands in a cross-validation
        with skbpr's splitters (see :mod:`skbpr.data.folds`): ``fold`` for
        a fit on a split's training part, ``whole`` for a search's final
        refit on the container it split (never for a plain fit).
        """

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after each epoch (numbered from 1); return ``True`` to stop."""
        return None

    def on_fit_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        """Called once at the end: after the last epoch, after early stopping, or before
        ``fit`` re-raises (``logs`` then holds ``interrupted`` or ``error``)."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        return self.fn(estimator, epoch, logs)


class ProgressBar(Callback):
    """A tqdm bar over epochs with the latest loss and metrics in its postfix.

    ``HybridBPR(verbose=True)`` adds one; the bar is drawn on standard error.

    Examples
    --------
    >>> from skbpr import HybridBPR
    >>> from skbpr.callbacks import ProgressBar
    >>> from skbpr.datasets import make_interactions
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> model = HybridBPR(8, epochs=2, random_state=0, n_threads=1, callbacks=[ProgressBar()]).fit(data)
    >>> len(model.history_)
    2
    """

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self._bar = None

    def on_fit_begin(self, estimator: Any, logs: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total or logs.get("epochs"), unit="epoch", desc=type(estimator).__name__)

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"}, refresh=False)
            self._bar.update(1)

    def on_fit_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CallbackList(Callback):
    """Dispatch each hook to several callbacks; stop when any asks to.

    Functions ``f(estimator, epoch, logs)`` are taken as ``on_epoch_end`` hooks.

    Examples
    --------
    >>> from skbpr.callbacks import CallbackList
    >>> seen = []
    >>> callbacks = CallbackList([lambda estimator, epoch, logs: seen.append((epoch, logs["loss"]))])
    >>> callbacks.on_epoch_end(None, 1, {"loss": 0.5})
    False
    >>> CallbackList([lambda estimator, epoch, logs: epoch >= 1]).on_epoch_end(None, 1, {})
    True
    >>> seen
    [(1, 0.5)]
    """

    def __init__(self, callbacks: Iterable[Any] | Any | None) -> None:
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback) or callable(callbacks):
            callbacks = [callbacks]
        items = []
        for cb in callbacks:
            hooks = ("on_fit_begin", "on_epoch_end", "on_fit_end")
            if any(hasattr(cb, h) for h in hooks):
                items.append(cb)
            elif callable(cb):
                items.append(_FunctionCallback(cb))
            else:
                raise TypeError(f"callbacks must be Callback objects or callables, got {cb!r}")
        self.callbacks = items

    def on_fit_begin(self, estimator: Any, logs: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(estimator, logs)

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> bool:
        stop = False
        for cb in self.callbacks:
            if hasattr(cb, "on_epoch_end"):
                stop = bool(cb.on_epoch_end(estimator, epoch, logs)) or stop
        return stop

    def on_fit_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(estimator, logs)
