"""The training loop: devices, sparse-row optimisers and epochs of batches.

A batch step computes the scores of each positive and its sampled
negatives, asks the loss for its gradient with respect to those scores
(closed form for the built-in losses, autograd for a callable), and applies
the chain rule by hand to the table rows the batch touched. L2
regularisation acts on the representations the batch used, never as a dense
decay over whole tables.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from skbpr.losses import GradFn
from skbpr.model import FeatureMap, HybridFactorization
from skbpr.sampling import NegativeSampler

OPTIMIZERS = ("adagrad", "adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable device."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='cpu' or 'auto'")
    return dev


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Use ``n_threads`` intra-op threads inside the block (``None``: leave as is)."""
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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

    def __init__(self, param: torch.Tensor, lr: float, eps: float = 1e-10) -> None:
        super().__init__(param, lr)
        self.eps = eps
        self.state = {"sum_sq": torch.zeros_like(param)}

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


def make_optimizer(name: str, param: torch.Tensor, lr: float) -> RowSGD:
    """A sparse-row optimiser by name: ``adagrad``, ``adam`` or ``sgd``."""
    kinds = {"adagrad": RowAdagrad, "adam": RowAdam, "sgd": RowSGD}
    if name not in kinds:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return kinds[name](param, lr)


@dataclass
class Trainer:
    """Everything one epoch needs; the estimator builds it once per fit."""

    model: HybridFactorization
    user_map: FeatureMap
    item_map: FeatureMap
    sampler: NegativeSampler
    users: torch.Tensor
    items: torch.Tensor
    grad_fn: GradFn
    user_optimizer: RowSGD
    item_optimizer: RowSGD
    alpha: float
    batch_size: int
    n_negatives: int
    kernel: Any = None  # a skbpr.native.NativeKernel runs the epochs when given

    def gradients(
        self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Loss and table-row gradients of one batch.

        Returns ``(loss, (user_rows, user_grads), (item_rows, item_grads))``:
        repeated rows are not summed yet.
        """
        b, m = negatives.shape
        u = self.model.user_vectors(self.user_map, users)
        # Each row of a batch: the positive then its negatives; users get a constant
        # 1 appended so that one product gives vector score plus bias.
        item_rows = torch.cat([items[:, None], negatives], dim=1).reshape(-1)
        v = self.model.item_vectors(self.item_map, item_rows).view(b, m + 1, -1)
        u1 = torch.cat([u, torch.ones((b, 1), dtype=u.dtype, device=u.device)], dim=1)
        scores = (v * u1[:, None, :]).sum(dim=2)
        loss, d_pos, d_neg = self.grad_fn(scores[:, 0], scores[:, 1:])
        d_scores = torch.cat([d_pos[:, None], d_neg], dim=1)[:, :, None]
        reg = 2.0 * self.alpha / b
        g_u = (v * d_scores).sum(dim=1)[:, :-1].add_(u, alpha=reg)
        g_v = u1[:, None, :] * d_scores
        decay = torch.full((1, m + 1, 1), reg / m, dtype=v.dtype, device=v.device)
        decay[0, 0, 0] = reg
        g_v.addcmul_(v, decay)
        return loss, self.user_map.expand(users, g_u), self.item_map.expand(item_rows, g_v.view(b * (m + 1), -1))

    def step(self, users: torch.Tensor, items: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sample negatives for one batch, update the touched rows, return the loss."""
        negatives = self.sampler.sample(users, self.n_negatives, generator)
        loss, (u_rows, u_grads), (i_rows, i_grads) = self.gradients(users, items, negatives)
        self.user_optimizer.step(u_rows, u_grads)
        self.item_optimizer.step(i_rows, i_grads)
        return loss

    def epoch(self, generator: torch.Generator) -> float:
        """One pass over the positives in a random order; the mean batch loss."""
        if self.kernel is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            return self.kernel.epoch(seed, n_threads=torch.get_num_threads())
        n = self.users.numel()
        order = torch.randperm(n, generator=generator, device=self.users.device)
        total = torch.zeros((), dtype=torch.float64, device=self.users.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            loss = self.step(self.users.index_select(0, idx), self.items.index_select(0, idx), generator)
            total += loss.detach().double() * idx.numel()
        return float(total) / n
