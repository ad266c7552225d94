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

Shared negatives (:func:`shared_grad`): a batch's positives are scored against
one set of ``S`` items drawn for the whole batch, ``neg`` of shape ``(B, S)``,
with a boolean ``mask`` of the same shape that is False where a shared item is
one of the row's user's training positives. Such a pair takes no part: each
positive's loss averages over its own valid columns (``bpr``, ``logistic``,
``hinge``), or leaves them out of the softmax's denominator (``softmax``).
A row without any valid column has no negative term.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch.nn.functional import logsigmoid

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GradFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

PAIRWISE_LOSSES = ("bpr", "logistic", "hinge", "warp", "softmax")
# "ials" is no function of sampled scores: a squared loss over all pairs, solved in blocks
# by skbpr.training.alternating rather than by the engines' per-batch updates
LOSSES = (*PAIRWISE_LOSSES, "ials")
SHARED_LOSSES = ("bpr", "logistic", "hinge", "softmax")  # the losses that train on shared negatives


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


def _negative_logits(
    neg: torch.Tensor, sigma: float, mask: torch.Tensor | None, log_q: torch.Tensor | None
) -> torch.Tensor:
    """``sigma * neg - log_q``, with ``-inf`` where ``mask`` is False."""
    z = sigma * neg
    if log_q is not None:
        z = z - log_q
    if mask is not None:
        z = z.masked_fill(~mask, float("-inf"))
    return z


def softmax(
    pos: torch.Tensor,
    neg: torch.Tensor,
    *,
    sigma: float = 1.0,
    mask: torch.Tensor | None = None,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax cross-entropy of each positive against its negatives.

    ``-log(exp(sigma * pos) / (exp(sigma * pos) + sum_k exp(sigma * neg_k - log_q_k)))``:
    ``sigma`` is the inverse temperature; ``log_q`` (shape ``(M,)``, or
    ``None`` for 0) the log-Q correction of each negative column, the log of
    its sampling probability relative to uniform sampling; columns where
    ``mask`` is False are left out of the sum.
    """
    logits = torch.cat([sigma * pos[:, None], _negative_logits(neg, sigma, mask, log_q)], dim=1)
    return (torch.logsumexp(logits, dim=1) - sigma * pos).mean()


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


def softmax_grad(
    pos: torch.Tensor,
    neg: torch.Tensor,
    *,
    sigma: float = 1.0,
    mask: torch.Tensor | None = None,
    log_q: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
):
    """Closed-form value and gradients of :func:`softmax` (weighted by ``sample_weight``, see the module)."""
    top = sigma * pos
    z = _negative_logits(neg, sigma, mask, log_q)
    peak = torch.maximum(top, z.max(dim=1).values)
    e_pos = torch.exp(top - peak)
    e_neg = torch.exp(z - peak[:, None])
    total = e_pos + e_neg.sum(dim=1)
    scale = 1.0 / pos.numel()
    rows = (torch.log(total) + peak - top) * scale
    d_pos = (e_pos / total - 1.0) * (sigma * scale)
    d_neg = e_neg / total[:, None] * (sigma * scale)
    if sample_weight is not None:
        return _weigh(rows, d_pos, d_neg, sample_weight)
    return rows.sum(), d_pos, d_neg


def shared_loss(
    loss: str,
    pos: torch.Tensor,
    neg: torch.Tensor,
    mask: torch.Tensor,
    *,
    sigma: float = 1.0,
    margin: float = 1.0,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """The batch-mean loss over shared negatives (see the module), written for autograd.

    Parameters
    ----------
    loss : {"bpr", "logistic", "hinge", "softmax"}
    pos : Tensor of shape (B,)
        Scores of the positives.
    neg : Tensor of shape (B, S)
        Scores of the shared items for each positive's user.
    mask : BoolTensor of shape (B, S)
        False where the shared item is one of the user's training positives.
    sigma, margin : float
        BPR sharpness (the softmax's inverse temperature), hinge margin.
    log_q : Tensor of shape (S,) or None
        The softmax's log-Q correction of each shared item.
    """
    if loss == "softmax":
        return softmax(pos, neg, sigma=sigma, mask=mask, log_q=log_q)
    share = mask.to(pos.dtype) / mask.sum(dim=1, keepdim=True).clamp(min=1).to(pos.dtype)
    if loss == "bpr":
        rows = (-logsigmoid(sigma * (pos[:, None] - neg)) * share).sum(dim=1)
    elif loss == "logistic":
        rows = -logsigmoid(pos) - (logsigmoid(-neg) * share).sum(dim=1)
    elif loss == "hinge":
        rows = (torch.relu(margin - (pos[:, None] - neg)) * share).sum(dim=1)
    else:
        raise ValueError(f"loss must be one of {SHARED_LOSSES} with shared negatives, got {loss!r}")
    return rows.mean()


def shared_grad(
    loss: str,
    pos: torch.Tensor,
    neg: torch.Tensor,
    mask: torch.Tensor,
    *,
    sigma: float = 1.0,
    margin: float = 1.0,
    log_q: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
):
    """Closed-form value and gradients of :func:`shared_loss` (weighted by ``sample_weight``, see the module)."""
    if loss == "softmax":
        return softmax_grad(pos, neg, sigma=sigma, mask=mask, log_q=log_q, sample_weight=sample_weight)
    scale = 1.0 / pos.numel()
    share = mask.to(pos.dtype) * scale / mask.sum(dim=1, keepdim=True).clamp(min=1).to(pos.dtype)
    if loss == "bpr":
        x = sigma * (pos[:, None] - neg)
        d_neg = torch.sigmoid(-x) * sigma * share
        rows = (-logsigmoid(x) * share).sum(dim=1)
        d_pos = -d_neg.sum(dim=1)
    elif loss == "logistic":
        d_neg = torch.sigmoid(neg) * share
        rows = -logsigmoid(pos) * scale - (logsigmoid(-neg) * share).sum(dim=1)
        d_pos = -torch.sigmoid(-pos) * scale
    elif loss == "hinge":
        slack = margin - (pos[:, None] - neg)
        d_neg = (slack > 0).to(pos.dtype) * share
        rows = (torch.relu(slack) * share).sum(dim=1)
        d_pos = -d_neg.sum(dim=1)
    else:
        raise ValueError(f"loss must be one of {SHARED_LOSSES} with shared negatives, got {loss!r}")
    if sample_weight is not None:
        return _weigh(rows, d_pos, d_neg, sample_weight)
    return rows.sum(), d_pos, d_neg


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
        "softmax": (partial(softmax, sigma=sigma), partial(softmax_grad, sigma=sigma)),
    }
    if loss == "ials":
        raise ValueError(
            "loss='ials' has no per-batch gradient: it is solved in blocks by skbpr.training.alternating, "
            f"not by the sampled-loss engines (they take {PAIRWISE_LOSSES} or a callable)"
        )
    if loss not in table:
        raise ValueError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
    return table[loss]
