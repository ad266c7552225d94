"""Sparse-row optimisers: only the table rows a batch touched are updated."""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adagrad", "adam", "sgd")


def _scatter_rows(target: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> None:
    """``target[rows] += values`` with repeated rows adding up (``scatter_add_`` beats ``index_add_`` on CPU)."""
    target.scatter_add_(0, rows[:, None].expand_as(values), values)


def _aggregate(rows: torch.Tensor, grads: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the gradients of repeated rows: ``(unique_rows, summed_grads)``, rows ascending.

    A table that is small next to the batch is summed in a dense buffer (no
    sort); a large one through ``torch.unique``.
    """
    if n_rows <= 4 * rows.numel():
        dense = torch.zeros((n_rows, grads.shape[1]), dtype=grads.dtype, device=grads.device)
        _scatter_rows(dense, rows, grads)
        touched = torch.zeros(n_rows, dtype=torch.bool, device=rows.device)
        touched[rows] = True
        unique = touched.nonzero().squeeze(1)
        return unique, dense.index_select(0, unique)
    unique, inverse = torch.unique(rows, return_inverse=True)
    summed = torch.zeros((unique.numel(), grads.shape[1]), dtype=grads.dtype, device=grads.device)
    _scatter_rows(summed, inverse, grads)
    return unique, summed


class RowSGD:
    """Plain SGD applied to the rows a batch touched."""

    def __init__(self, param: torch.Tensor, lr: float) -> None:
        self.param, self.lr = param, lr
        self.state: dict[str, torch.Tensor] = {}

    def load_state(self, state: dict[str, torch.Tensor] | None) -> None:
        """Continue from a saved ``state`` (tensors are moved to the parameter's device)."""
        if (
            state
            and state.keys() == self.state.keys()
            and all(v.shape == self.state[k].shape for k, v in state.items())
        ):
            self.state = {k: v.to(self.param.device) if v.dim() else v.clone() for k, v in state.items()}

    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        """Update ``param[rows] -= lr * grads`` (repeated rows add up)."""
        _scatter_rows(self.param, rows, grads.mul(-self.lr))


class RowAdagrad(RowSGD):
    """Adagrad with per-coordinate accumulators, updated only on touched rows."""

    def __init__(self, param: torch.Tensor, lr: float, eps: float = 1e-10, initial_accumulator: float = 0.0) -> None:
        super().__init__(param, lr)
        self.eps = eps
        self.state = {"sum_sq": torch.full_like(param, initial_accumulator)}

    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        """Accumulate squared gradients and take a scaled step on the touched rows."""
        rows, g = _aggregate(rows, grads, self.param.shape[0])
        sum_sq = self.state["sum_sq"]
        acc = sum_sq.index_select(0, rows).addcmul_(g, g)
        sum_sq.index_copy_(0, rows, acc)
        _scatter_rows(self.param, rows, g.div_(acc.sqrt_().add_(self.eps)).mul_(-self.lr))


class RowAdam(RowSGD):
    """Lazy Adam: moments and updates only for touched rows (like SparseAdam)."""

    def __init__(
        self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        super().__init__(param, lr)
        self.betas, self.eps = betas, eps
        self.state = {
            "m": torch.zeros_like(param),
            "v": torch.zeros_like(param),
            "t": torch.zeros((), dtype=torch.int64),
        }

    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        """One lazy Adam step on the touched rows."""
        rows, g = _aggregate(rows, grads, self.param.shape[0])
        b1, b2 = self.betas
        state = self.state
        state["t"] += 1
        t = int(state["t"])
        m = state["m"].index_select(0, rows).mul_(b1).add_(g, alpha=1 - b1)
        v = state["v"].index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
        state["m"].index_copy_(0, rows, m)
        state["v"].index_copy_(0, rows, v)
        lr = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        _scatter_rows(self.param, rows, m.div_(v.sqrt_().add_(self.eps)).mul_(-lr))


def make_optimizer(name: str, param: torch.Tensor, lr: float, initial_accumulator: float = 0.0) -> RowSGD:
    """A sparse-row optimiser by name: ``adagrad``, ``adam`` or ``sgd``.

    ``initial_accumulator`` is where Adagrad's sums of squared gradients
    start; the other optimisers ignore it.
    """
    kinds = {"adagrad": RowAdagrad, "adam": RowAdam, "sgd": RowSGD}
    if name not in kinds:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    if name == "adagrad":
        return RowAdagrad(param, lr, initial_accumulator=initial_accumulator)
    return kinds[name](param, lr)
