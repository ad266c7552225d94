"""Pairwise ranking losses.

Every loss takes the scores of a batch's positives, shape ``(B,)``, and of
their sampled negatives, shape ``(B, M)``, and returns a scalar tensor: the
mean over the batch. Each built-in loss also has a closed-form gradient
function with the same arguments that returns ``(loss, d_pos, d_neg)``, the
loss value and its gradient with respect to both score tensors. The training
loop uses the closed form for built-in losses and autograd, on the scores
only, for a user's own callable; both feed the same update.

The gradient functions take an optional ``sample_weight`` of shape ``(B,)``:
the confidence of each positive, which multiplies that positive's term of
the batch mean, ``sum_i c_i * L_i / B``, so its value and its gradient with
respect to the positive's score and its negatives' scores (for WARP, the
rank-weighted gradient). With ``sample_weight=None`` every positive counts 1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch.nn.functional import logsigmoid

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GradFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

PAIRWISE_LOSSES = ("bpr", "logistic", "hinge", "warp")
# "ials" is no function of sampled scores: a squared loss over all pairs, solved in blocks
# by skbpr.training.alternating rather than by the engines' per-batch updates
LOSSES = (*PAIRWISE_LOSSES, "ials")


def bpr(pos: torch.Tensor, neg: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """Bayesian Personalized Ranking: ``-log sigmoid(sigma * (pos - neg))``."""
    return -logsigmoid(sigma * (pos[:, None] - neg)).mean()


def logistic(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Pointwise logistic loss: ``-log sigmoid(pos) - log sigmoid(-neg)``."""
    return -logsigmoid(pos).mean() - logsigmoid(-neg).mean()


def hinge(pos: torch.Tensor, neg: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """Pairwise hinge loss: ``relu(margin - (pos - neg))``."""
    return torch.relu(margin - (pos[:, None] - neg)).mean()


def warp_weights(
    pos: torch.Tensor, neg: torch.Tensor, *, n_items: int, margin: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick WARP's violating negative and its rank weight for each positive.

    The columns of ``neg`` are the candidates in the order they were drawn.
    The first candidate with ``neg > pos - margin`` is taken; after ``tries``
    draws the weight is ``log(floor((n_items - 1) / tries))`` (Weston et al.,
    as in LightFM). Rows with no violation get weight 0.

    Returns
    -------
    first : LongTensor of shape (B,)
        Column of the chosen negative (0 where none violates).
    weight : Tensor of shape (B,)
        The rank weight, 0 where no candidate violates the margin.
    """
    violates = neg > (pos[:, None] - margin)
    found = violates.any(dim=1)
    first = violates.to(torch.uint8).argmax(dim=1)
    tries = (first + 1).to(pos.dtype)
    weight = torch.log(torch.clamp(torch.floor((n_items - 1) / tries), min=1.0))
    return first, torch.where(found, weight, torch.zeros_like(weight))


def warp(pos: torch.Tensor, neg: torch.Tensor, *, n_items: int, margin: float = 1.0) -> torch.Tensor:
    """Weighted Approximate-Rank Pairwise loss over up to ``M`` drawn candidates."""
    first, weight = warp_weights(pos.detach(), neg.detach(), n_items=n_items, margin=margin)
    chosen = neg.gather(1, first[:, None])[:, 0]
    return (weight * torch.relu(margin - pos + chosen)).mean()


def _weigh(rows: torch.Tensor, d_pos: torch.Tensor, d_neg: torch.Tensor, sample_weight: torch.Tensor):
    """The weighted batch loss from per-positive terms ``rows``, and the gradients scaled per positive.

    The gradients are scaled after they are formed, as the compiled kernel
    does, so that both engines round alike.
    """
    return (rows * sample_weight).sum(), d_pos * sample_weight, d_neg * sample_weight[:, None]


def bpr_grad(pos: torch.Tensor, neg: torch.Tensor, *, sigma: float = 1.0, sample_weight: torch.Tensor | None = None):
    """Closed-form value and gradients of :func:`bpr` (weighted by ``sample_weight``, see the module)."""
    x = sigma * (pos[:, None] - neg)
    scale = 1.0 / neg.numel()
    g = torch.sigmoid(-x) * (sigma * scale)
    if sample_weight is not None:
        return _weigh(-logsigmoid(x).sum(dim=1) * scale, -g.sum(dim=1), g, sample_weight)
    loss = -logsigmoid(x).sum() * scale
    return loss, -g.sum(dim=1), g


def logistic_grad(pos: torch.Tensor, neg: torch.Tensor, *, sample_weight: torch.Tensor | None = None):
    """Closed-form value and gradients of :func:`logistic` (weighted by ``sample_weight``, see the module)."""
    d_pos, d_neg = -torch.sigmoid(-pos) / pos.numel(), torch.sigmoid(neg) / neg.numel()
    if sample_weight is not None:
        rows = -logsigmoid(pos) / pos.numel() - logsigmoid(-neg).sum(dim=1) / neg.numel()
        return _weigh(rows, d_pos, d_neg, sample_weight)
    loss = -logsigmoid(pos).mean() - logsigmoid(-neg).mean()
    return loss, d_pos, d_neg


def hinge_grad(pos: torch.Tensor, neg: torch.Tensor, *, margin: float = 1.0, sample_weight: torch.Tensor | None = None):
    """Closed-form value and gradients of :func:`hinge` (weighted by ``sample_weight``, see the module)."""
    slack = margin - (pos[:, None] - neg)
    scale = 1.0 / neg.numel()
    active = (slack > 0).to(pos.dtype) * scale
    if sample_weight is not None:
        return _weigh(torch.relu(slack).sum(dim=1) * scale, -active.sum(dim=1), active, sample_weight)
    loss = torch.relu(slack).sum() * scale
    return loss, -active.sum(dim=1), active


def warp_grad(
    pos: torch.Tensor,
    neg: torch.Tensor,
    *,
    n_items: int,
    margin: float = 1.0,
    sample_weight: torch.Tensor | None = None,
):
    """Closed-form value and gradients of :func:`warp` (weighted by ``sample_weight``, see the module)."""
    first, weight = warp_weights(pos, neg, n_items=n_items, margin=margin)
    chosen = neg.gather(1, first[:, None])[:, 0]
    slack = margin - pos + chosen
    w = weight * (slack > 0).to(pos.dtype) / pos.numel()
    d_neg = torch.zeros_like(neg).scatter_(1, first[:, None], w[:, None])
    if sample_weight is not None:
        return _weigh(weight * torch.relu(slack) / pos.numel(), -w, d_neg, sample_weight)
    return (weight * torch.relu(slack)).sum() / pos.numel(), -w, d_neg


def autograd_grad(loss_fn: LossFn) -> GradFn:
    """Turn any loss callable into a gradient function by autograd on the scores.

    With ``sample_weight`` the gradient of each positive's scores (its own
    and its negatives') is multiplied by its weight, which is the gradient
    of the weighted loss for any loss that is a mean of per-positive terms;
    the value returned is the callable's own, unweighted.
    """

    def grad(pos: torch.Tensor, neg: torch.Tensor, *, sample_weight: torch.Tensor | None = None):
        pos = pos.detach().requires_grad_(True)
        neg = neg.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(pos, neg)
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise TypeError(
                    f"loss callable must return a scalar tensor, got {type(loss).__name__}"
                    + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
                )
            d_pos, d_neg = torch.autograd.grad(loss, (pos, neg), allow_unused=True)
        d_pos = torch.zeros_like(pos) if d_pos is None else d_pos
        d_neg = torch.zeros_like(neg) if d_neg is None else d_neg
        if sample_weight is not None:
            d_pos, d_neg = d_pos * sample_weight, d_neg * sample_weight[:, None]
        return loss.detach(), d_pos, d_neg

    return grad


def resolve_loss(loss: str | LossFn, *, sigma: float, margin: float, n_items: int) -> tuple[LossFn, GradFn]:
    """Return ``(loss_fn, grad_fn)`` for a loss name or a user callable."""
    if callable(loss):
        return loss, autograd_grad(loss)
    table: dict[str, tuple[LossFn, GradFn]] = {
        "bpr": (partial(bpr, sigma=sigma), partial(bpr_grad, sigma=sigma)),
        "logistic": (logistic, logistic_grad),
        "hinge": (partial(hinge, margin=margin), partial(hinge_grad, margin=margin)),
        "warp": (
            partial(warp, n_items=n_items, margin=margin),
            partial(warp_grad, n_items=n_items, margin=margin),
        ),
    }
    if loss == "ials":
        raise ValueError(
            "loss='ials' has no per-batch gradient: it is solved in blocks by skbpr.training.alternating, "
            f"not by the sampled-loss engines (they take {PAIRWISE_LOSSES} or a callable)"
        )
    if loss not in table:
        raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
    return table[loss]
