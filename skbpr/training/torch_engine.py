"""The torch engine: batch steps in torch operations, on any device.

A batch step computes the scores of each positive and its sampled
negatives, asks the loss for its gradient with respect to those scores
(closed form for the built-in losses, autograd for a callable), and applies
the chain rule by hand to the table rows the batch touched. L2
regularisation acts on the representations the batch used, never as a dense
decay over whole tables. The epoch order and the negatives come from
:mod:`skbpr.training.stream`, the draws of the compiled kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from skbpr.losses import GradFn
from skbpr.model import FeatureMap, HybridFactorization
from skbpr.training.optimizers import RowSGD
from skbpr.training.stream import permutation

if TYPE_CHECKING:
    from skbpr.sampling import NegativeSampler


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

    def step(self, users: torch.Tensor, items: torch.Tensor, positions: torch.Tensor, seed: int) -> torch.Tensor:
        """Draw the negatives of one batch, update the touched rows, return the loss.

        ``positions`` are the samples' places in the epoch: with the epoch
        ``seed`` they fix the negatives, as in the compiled kernel.
        """
        negatives = self.sampler.sample(users, self.n_negatives, seed, positions=positions)
        loss, (u_rows, u_grads), (i_rows, i_grads) = self.gradients(users, items, negatives)
        self.user_optimizer.step(u_rows, u_grads)
        self.item_optimizer.step(i_rows, i_grads)
        return loss

    def epoch(self, seed: int) -> float:
        """One pass over the positives in the order of the epoch ``seed``; the mean batch loss."""
        if self.kernel is not None:
            return self.kernel.epoch(seed, n_threads=torch.get_num_threads())
        n = self.users.numel()
        device = self.users.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n, self.batch_size):
            positions = torch.arange(start, min(start + self.batch_size, n), device=device)
            idx = permutation(n, seed, positions)
            loss = self.step(self.users.index_select(0, idx), self.items.index_select(0, idx), positions, seed)
            total += loss.detach().double() * idx.numel()
        return float(total) / n
