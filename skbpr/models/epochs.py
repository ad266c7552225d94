"""The epoch loop of :class:`~skbpr.models.hybrid.HybridBPR`: callbacks, evaluation, early stopping, divergence."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skbpr.evaluation.metrics import evaluate
from skbpr.training.callbacks import CallbackList, ProgressBar
from skbpr.training.engine import Engine
from skbpr.training.model import FeatureMap
from skbpr.training.stream import epoch_seed


class EpochLoopMixin:
    """Runs the epochs of a fit (a mixin of HybridBPR)."""

    def _run_epochs(self, engine: Engine, epochs: int, data: Any, eval_data: Any, search: dict[str, Any]) -> None:
        callbacks = CallbackList(self.callbacks_)
        if self.verbose:
            callbacks.callbacks.append(ProgressBar(total=epochs))
        callbacks.on_fit_begin(self, {"epochs": epochs, **self._data_summary(data), "search": search})
        start = len(self.history_)
        scales = (_feature_scale(self._user_map), _feature_scale(self._item_map))
        best_value, best_state, waited = -np.inf, None, 0
        self.best_epoch_ = None
        stopped_early = False
        for offset in range(epochs):
            epoch = start + offset + 1
            snapshot = self._weights(engine)
            try:
                loss = engine.epoch(epoch_seed(self._seed, epoch))
            except KeyboardInterrupt:
                self._restore(snapshot, engine)
                self.history_.append({"epoch": epoch, "interrupted": True})
                callbacks.on_fit_end(self, {"interrupted": True})
                raise
            problem = f"the training loss became {loss}" if not np.isfinite(loss) else self._divergence(engine, scales)
            if problem is not None:
                self._restore(snapshot, engine)
                kept = f"the weights of epoch {epoch - 1}" if epoch > 1 else "the initial weights"
                callbacks.on_fit_end(self, {"error": f"training diverged at epoch {epoch}: {problem}"})
                hint = (
                    f"Try a larger alpha (now {self.alpha_!r}) or unobserved_weight (now {self.unobserved_weight_!r})"
                    if isinstance(self.loss, str) and self.loss == "ials"
                    else f"Try a smaller learning_rate (now {self.learning_rate_!r}), init_std (now "
                    f"{self.init_std_!r}) or sigma (now {self.sigma!r})"
                )
                raise FloatingPointError(f"training diverged at epoch {epoch}: {problem}; {kept} were kept. {hint}")
            logs: dict[str, float] = {"epoch": epoch, "loss": loss}
            if eval_data is not None and (offset + 1) % self.eval_every == 0:
                logs.update({f"val_{k}": v for k, v in self._evaluate(eval_data).items()})
                value = logs[f"val_{self.eval_metric}"]
                if value > best_value:
                    # the optimiser state too: a later partial_fit continues from this epoch, sums and moments
                    best_value, best_state, waited = value, (epoch, self._weights(engine)), 0
                    self.best_epoch_ = epoch
                else:
                    waited += 1
            self.history_.append(logs)
            stop = callbacks.on_epoch_end(self, epoch, dict(logs))
            if self.patience is not None and eval_data is not None and waited >= self.patience:
                stopped_early = True
            if stop or stopped_early:
                break
        if best_state is not None and self.patience is not None:
            self._restore(best_state[1], engine)
        callbacks.on_fit_end(self, {"stopped_early": stopped_early, "epochs_run": len(self.history_) - start})

    def _evaluate(self, eval_data: Any) -> dict[str, float]:
        metrics = {self.eval_metric, "ndcg@10", "auc"}
        metrics.update(name for callback in self.callbacks_ for name in getattr(callback, "metrics", None) or ())
        return evaluate(self, eval_data, metrics=sorted(metrics))

    def _weights(self, engine: Engine | None = None) -> tuple[torch.Tensor, ...]:
        """Copies of the tables, and of the optimisers' state when ``engine`` is given.

        CPU tensors are copied by numpy, on the calling thread: torch's
        ``clone`` splits a copy of this size over its intra-op threads, and
        when another process holds a core it waits, at every epoch, for the
        thread the OS put aside.
        """
        tensors = [self.model_.user_weight.data, self.model_.item_weight.data]
        if engine is not None:
            for state in engine.optimizer_states:
                tensors.extend(state.values())
        return tuple(torch.from_numpy(t.numpy().copy()) if t.device.type == "cpu" else t.clone() for t in tensors)

    def _restore(self, weights: tuple[torch.Tensor, ...], engine: Engine | None = None) -> None:
        tensors = [self.model_.user_weight.data, self.model_.item_weight.data]
        if engine is not None:
            for state in engine.optimizer_states:
                tensors.extend(state.values())
        for target, saved in zip(tensors, weights, strict=True):
            target.copy_(saved)

    def _divergence(self, engine: Engine, scales: tuple[float, float]) -> str | None:
        """Why the current weights cannot be kept (non-finite tables, state or scores), or None.

        One pass over each table and state array: the largest magnitude,
        which is NaN or infinite if any entry is. Scores are bounded without
        computing them: a representation is a weighted sum of table rows
        (``scales``: the largest row sums of the feature weights), so
        ``|score| <= su * d * |U|max * si * |V|max + si * |b|max``; the bound
        must stay below float32's range, or some score could overflow.
        """
        user, item = self.model_.user_weight.data, self.model_.item_weight.data
        u_max, v_max = _max_abs(user), _max_abs(item[:, :-1])
        b_max = _max_abs(item[:, -1])
        for name, value in (("user embeddings", u_max), ("item embeddings", max(v_max, b_max))):
            if not np.isfinite(value):
                return f"the {name} became non-finite"
        for states in engine.optimizer_states:
            for key, state in states.items():
                if state.is_floating_point() and not np.isfinite(_max_abs(state)):
                    return f"the optimiser state {key!r} became non-finite"
        su, si = scales
        bound = su * self.n_components * u_max * si * v_max + si * b_max
        if not bound < _SCORE_LIMIT:
            return f"scores could reach {bound:.3g}, beyond float32's range"
        return None

    @staticmethod
    def _data_summary(data: Any) -> dict[str, int]:
        return {
            "n_users": data.n_users,
            "n_items": data.n_items,
            "n_positives": data.positives.nnz,
            "n_negatives": 0 if data.negatives is None else data.negatives.nnz,
            "n_user_features": 0 if data.user_features is None else data.user_features.shape[1],
            "n_item_features": 0 if data.item_features is None else data.item_features.shape[1],
        }


_SCORE_LIMIT = 1e37  # below float32's largest value (3.4e38), with room for the sums of a GEMM


def _max_abs(t: torch.Tensor) -> float:
    """Largest magnitude in ``t`` (NaN or inf when ``t`` holds one; 0 when empty), in one pass."""
    if t.numel() == 0:
        return 0.0
    if t.device.type == "cpu":  # numpy: no thread pool to wake for a reduction this cheap
        a = t.numpy()
        return float(max(a.max(), -a.min()))
    return float(t.abs().amax())


def _feature_scale(fmap: FeatureMap) -> float:
    """Largest sum of absolute feature weights over the rows of ``fmap`` (1 for the identity)."""
    if fmap.identity:
        return 1.0
    lengths = fmap.indptr[1:] - fmap.indptr[:-1]
    owner = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
    sums = torch.zeros(lengths.numel(), dtype=torch.float64, device=lengths.device)
    sums.index_add_(0, owner, fmap.data.double().abs())
    return float(sums.max()) if sums.numel() else 0.0
