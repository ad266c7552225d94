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


def _aggregate(rows: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum the gradients of repeated rows: ``(unique_rows, summed_grads)``."""
    unique, inverse = torch.unique(rows, return_inverse=True)
    summed = torch.zeros((unique.numel(), grads.shape[1]), dtype=grads.dtype, device=grads.device)
    summed.scatter_add_(0, inverse[:, None].expand_as(grads), grads)
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
        self.param.index_add_(0, rows, grads, alpha=-self.lr)


class RowAdagrad(RowSGD):
    """Adagrad with per-coordinate accumulators, updated only on touched rows."""

    def __init__(self, param: torch.Tensor, lr: float, eps: float = 1e-10) -> None:
        super().__init__(param, lr)
        self.eps = eps
        self.state = {"sum_sq": torch.zeros_like(param)}

    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        """Accumulate squared gradients and take a scaled step on the touched rows."""
        rows, g = _aggregate(rows, grads)
        sum_sq = self.state["sum_sq"]
        acc = sum_sq.index_select(0, rows).addcmul_(g, g)
        sum_sq.index_copy_(0, rows, acc)
        step = g.div_(acc.sqrt_().add_(self.eps)).mul_(-self.lr)
        self.param.index_add_(0, rows, step)


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
        rows, g = _aggregate(rows, grads)
        b1, b2 = self.betas
        state = self.state
        state["t"] += 1
        t = int(state["t"])
        m = state["m"].index_select(0, rows).mul_(b1).add_(g, alpha=1 - b1)
        v = state["v"].index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
        state["m"].index_copy_(0, rows, m)
        state["v"].index_copy_(0, rows, v)
        lr = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        self.param.index_add_(0, rows, m.div_(v.sqrt_().add_(self.eps)), alpha=-lr)


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

    def gradients(
        self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Loss and table-row gradients of one batch.

        Returns ``(loss, (user_rows, user_grads), (item_rows, item_grads))``:
        repeated rows are not summed yet.
        """
        b, m = negatives.shape
        u = self.model.user_vectors(self.user_map, users)
        i = self.model.item_vectors(self.item_map, items)
        j = self.model.item_vectors(self.item_map, negatives.reshape(-1)).view(b, m, -1)
        pos = (u * i[:, :-1]).sum(dim=1) + i[:, -1]
        neg = torch.baddbmm(j[:, :, -1:], j[:, :, :-1], u[:, :, None]).squeeze(2)
        loss, d_pos, d_neg = self.grad_fn(pos, neg)
        reg = 2.0 * self.alpha / b
        g_u = d_pos[:, None] * i[:, :-1] + torch.bmm(d_neg[:, None, :], j[:, :, :-1]).squeeze(1)
        g_u.add_(u, alpha=reg)
        g_i = torch.cat([d_pos[:, None] * u, d_pos[:, None]], dim=1).add_(i, alpha=reg)
        g_j = torch.cat([d_neg[:, :, None] * u[:, None, :], d_neg[:, :, None]], dim=2).add_(j, alpha=reg / m)
        item_rows = torch.cat([items, negatives.reshape(-1)])
        item_grads = torch.cat([g_i, g_j.reshape(b * m, -1)])
        return (
            loss,
            self.user_map.expand(users, g_u),
            self.item_map.expand(item_rows, item_grads),
        )

    def step(self, users: torch.Tensor, items: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sample negatives for one batch, update the touched rows, return the loss."""
        negatives = self.sampler.sample(users, self.n_negatives, generator)
        loss, (u_rows, u_grads), (i_rows, i_grads) = self.gradients(users, items, negatives)
        self.user_optimizer.step(u_rows, u_grads)
        self.item_optimizer.step(i_rows, i_grads)
        return loss

    def epoch(self, generator: torch.Generator) -> float:
        """One pass over the positives in a random order; the mean batch loss."""
        n = self.users.numel()
        order = torch.randperm(n, generator=generator, device=self.users.device)
        total = torch.zeros((), dtype=torch.float64, device=self.users.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            loss = self.step(self.users.index_select(0, idx), self.items.index_select(0, idx), generator)
            total += loss.detach().double() * idx.numel()
        return float(total) / n
