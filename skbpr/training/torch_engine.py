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

from functools import partial

import torch

from skbpr.training.losses import resolve_loss, shared_grad
from skbpr.training.model import HybridFactorization
from skbpr.training.optimizers import RowSGD
from skbpr.training.problem import TrainingProblem
from skbpr.training.sampling import NegativeSampler, SharedSampler
from skbpr.training.stream import permutation


class Trainer:
    """Epochs of a :class:`TrainingProblem` in torch operations, on the problem's device.

    Parameters
    ----------
    problem : TrainingProblem
        The data and the update.
    model : HybridFactorization
        Weights, updated in place.
    user_optimizer, item_optimizer : RowSGD
        Sparse-row optimisers over ``model``'s user and item tables.
    """

    def __init__(
        self, problem: TrainingProblem, model: HybridFactorization, user_optimizer: RowSGD, item_optimizer: RowSGD
    ) -> None:
        self.problem = problem
        self.model = model
        self.user_optimizer, self.item_optimizer = user_optimizer, item_optimizer
        self.user_map, self.item_map = problem.user_map, problem.item_map
        self.users, self.items = problem.users, problem.items
        self.alpha, self.batch_size, self.n_negatives = problem.alpha, problem.batch_size, problem.draws_per_sample
        self.weights = problem.weights
        _, self.grad_fn = resolve_loss(
            problem.loss, sigma=problem.sigma, margin=problem.margin, n_items=problem.n_items
        )
        self.sampler = NegativeSampler(
            problem.positives,
            problem.negatives,
            mode=problem.sampling,
            implicit_ratio=problem.implicit_ratio,
            device=problem.users.device,
        )
        self.shared = None
        if problem.shared_negatives > 0:
            self.shared = SharedSampler(
                problem.positives, problem.shared_negatives, problem.shared_sampling, problem.users.device
            )
            self.log_q = self.shared.log_q if problem.loss == "softmax" else None
            self.shared_grad_fn = partial(shared_grad, problem.loss, sigma=problem.sigma, margin=problem.margin)

    def gradients(
        self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor, weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Loss and table-row gradients of one batch.

        ``weights`` (one confidence per positive, or ``None``) multiply each
        positive's term of the loss (:mod:`skbpr.losses`). Returns ``(loss,
        (user_rows, user_grads), (item_rows, item_grads))``: repeated rows
        are not summed yet.
        """
        b, m = negatives.shape
        u = self.model.user_vectors(self.user_map, users)
        # Each row of a batch: the positive then its negatives; users get a constant
        # 1 appended so that one product gives vector score plus bias.
        item_rows = torch.cat([items[:, None], negatives], dim=1).reshape(-1)
        v = self.model.item_vectors(self.item_map, item_rows).view(b, m + 1, -1)
        u1 = torch.cat([u, torch.ones((b, 1), dtype=u.dtype, device=u.device)], dim=1)
        scores = (v * u1[:, None, :]).sum(dim=2)
        if weights is None:
            loss, d_pos, d_neg = self.grad_fn(scores[:, 0], scores[:, 1:])
        else:
            loss, d_pos, d_neg = self.grad_fn(scores[:, 0], scores[:, 1:], sample_weight=weights.to(scores.dtype))
        d_scores = torch.cat([d_pos[:, None], d_neg], dim=1)[:, :, None]
        reg = 2.0 * self.alpha / b
        g_u = (v * d_scores).sum(dim=1)[:, :-1].add_(u, alpha=reg)
        g_v = u1[:, None, :] * d_scores
        decay = torch.full((1, m + 1, 1), reg / m, dtype=v.dtype, device=v.device)
        decay[0, 0, 0] = reg
        g_v.addcmul_(v, decay)
        g_v = g_v.view(b * (m + 1), -1)
        if self.problem.loss == "warp":
            # WARP's candidates after the first violation take no part: the
            # kernel neither draws nor regularises nor updates them
            violates = scores[:, 1:] > (scores[:, :1] - self.problem.margin)
            used = torch.where(violates.any(dim=1), violates.to(torch.uint8).argmax(dim=1) + 1, m)
            keep = (torch.arange(m + 1, device=v.device)[None, :] <= used[:, None]).reshape(-1)
            item_rows, g_v = item_rows[keep], g_v[keep]
        return loss, self.user_map.table_gradients(users, g_u), self.item_map.table_gradients(item_rows, g_v)

    def shared_gradients(
        self, users: torch.Tensor, items: torch.Tensor, shared: torch.Tensor, weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Loss and table-row gradients of one batch scored against the ``shared`` items.

        The scores of the ``B`` users against the ``S`` shared items are one
        ``(B, d + 1) @ (d + 1, S)`` product; the gradients with respect to the
        user and shared-item representations are two more. L2: ``2 * alpha /
        B`` on each positive's user and item (as per positive), and ``2 *
        alpha / S`` on each shared item: the per-positive mode's ``2 * alpha
        / (B * M)`` per negative, summed over the ``B`` positives that share
        it. The item rows are the batch's positives, then the shared items.
        """
        b, s = users.numel(), shared.numel()
        u = self.model.user_vectors(self.user_map, users)
        u1 = torch.cat([u, torch.ones((b, 1), dtype=u.dtype, device=u.device)], dim=1)
        v_pos = self.model.item_vectors(self.item_map, items)
        v_shared = self.model.item_vectors(self.item_map, shared)
        pos = (u1 * v_pos).sum(dim=1)
        neg = u1 @ v_shared.T
        mask = self.shared.valid(users, shared)
        log_q = None if self.log_q is None else self.log_q.index_select(0, shared)
        sample_weight = None if weights is None else weights.to(pos.dtype)
        loss, d_pos, d_neg = self.shared_grad_fn(pos, neg, mask, log_q=log_q, sample_weight=sample_weight)
        reg = 2.0 * self.alpha / b
        g_u = (d_pos[:, None] * v_pos + d_neg @ v_shared)[:, :-1].add_(u, alpha=reg)
        g_pos = (d_pos[:, None] * u1).add_(v_pos, alpha=reg)
        g_shared = (d_neg.T @ u1).add_(v_shared, alpha=2.0 * self.alpha / s)
        item_rows, g_v = torch.cat([items, shared]), torch.cat([g_pos, g_shared])
        return loss, self.user_map.table_gradients(users, g_u), self.item_map.table_gradients(item_rows, g_v)

    def step(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        positions: torch.Tensor,
        seed: int,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw the negatives of one batch, update the touched rows, return the loss.

        ``positions`` are the samples' places in the epoch: with the epoch
        ``seed`` they fix the negatives, as in the compiled kernel (with
        shared negatives, the batch's number, ``positions[0] // batch_size``,
        fixes them).
        ``weights``: the samples' confidences, or ``None``.
        """
        if self.shared is not None:
            shared = self.shared.draw(seed, int(positions[0]) // self.batch_size)
            loss, (u_rows, u_grads), (i_rows, i_grads) = self.shared_gradients(users, items, shared, weights)
        else:
            negatives = self.sampler.sample(users, self.n_negatives, seed, positions=positions)
            loss, (u_rows, u_grads), (i_rows, i_grads) = self.gradients(users, items, negatives, weights)
        self.user_optimizer.step(u_rows, u_grads)
        self.item_optimizer.step(i_rows, i_grads)
        return loss

    def epoch(self, seed: int) -> float:
        """One pass over the positives in the order of the epoch ``seed``; the mean batch loss."""
        n = self.users.numel()
        device = self.users.device
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n, self.batch_size):
            positions = torch.arange(start, min(start + self.batch_size, n), device=device)
            idx = permutation(n, seed, positions)
            weights = None if self.weights is None else self.weights.index_select(0, idx)
            loss = self.step(self.users.index_select(0, idx), self.items.index_select(0, idx), positions, seed, weights)
            total += loss.detach().double() * idx.numel()
        return float(total) / n
