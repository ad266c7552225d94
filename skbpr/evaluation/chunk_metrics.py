"""Per-user ranking metrics of one chunk of users, computed on torch tensors."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from skbpr.evaluation.beyond import ListContext, list_values, top_k_lists
from skbpr.evaluation.names import MetricName

__all__ = ["evaluate_chunk", "sample_negatives"]


def _rows_mask(csr: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Dense boolean mask (len(rows), n_cols) of the given CSR rows."""
    sub = csr[rows]
    indptr = torch.from_numpy(sub.indptr.astype(np.int64)).to(device)
    cols = torch.from_numpy(sub.indices.astype(np.int64)).to(device)
    n_rows = len(rows)
    row_ids = torch.repeat_interleave(torch.arange(n_rows, device=device), indptr[1:] - indptr[:-1])
    mask = torch.zeros((n_rows, csr.shape[1]), dtype=torch.bool, device=device)
    mask[row_ids, cols] = True
    return mask


def sample_negatives(disallowed: torch.Tensor, n_samples: int, rng: np.random.Generator) -> torch.Tensor:
    """Mask of ``n_samples`` items per row drawn uniformly without replacement
    among the items that are not ``disallowed`` (all of them if fewer)."""
    n_rows, n_items = disallowed.shape
    if n_samples >= n_items:
        return ~disallowed
    # A uniform random permutation per row; the allowed items with the
    # smallest keys form a uniform sample without replacement.
    keys = rng.permuted(np.tile(np.arange(n_items, dtype=np.int32), (n_rows, 1)), axis=1)
    keys_t = torch.from_numpy(keys).to(disallowed.device)
    keys_t = keys_t.masked_fill(disallowed, n_items)
    values, idx = torch.topk(keys_t, n_samples, dim=1, largest=False, sorted=False)
    sampled = torch.zeros_like(disallowed)
    sampled.scatter_(1, idx, values < n_items)
    return sampled


def _tie_groups(
    sorted_keys: torch.Tensor, b: torch.Tensor, j: torch.Tensor, slot: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end (exclusive) position of the group of keys equal to
    ``sorted_keys[b, j]`` in each row of the ascending ``sorted_keys``."""
    width = int(slot.max()) + 1 if len(slot) else 1
    queries = torch.zeros((sorted_keys.shape[0], width), dtype=sorted_keys.dtype, device=b.device)
    queries[b, slot] = sorted_keys[b, j]
    start = torch.searchsorted(sorted_keys, queries, side="left")
    end = torch.searchsorted(sorted_keys, queries, side="right")
    return start[b, slot], end[b, slot]


def _pairwise_auc(
    neg_sorted: torch.Tensor,
    b: torch.Tensor,
    start_p: torch.Tensor,
    end_p: torch.Tensor,
    n_pos: torch.Tensor,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Per-row AUC of the positives at flat positions (b, .) against the
    negatives in ``neg_sorted``, ties counting 1/2; NaN without negatives."""
    n_rows = neg_sorted.shape[0]
    cum = neg_sorted.cumsum(dim=1, dtype=torch.int32)  # negatives at or before
    n_neg = cum[:, -1]
    above = torch.where(start_p > 0, cum[b, (start_p - 1).clamp_min(0)], 0)
    at_or_above = cum[b, end_p - 1]  # end_p >= 1: the group holds the positive
    below = n_neg[b] - at_or_above
    wins = below.to(dtype) + 0.5 * (at_or_above - above).to(dtype)
    total = torch.zeros(n_rows, dtype=dtype, device=neg_sorted.device)
    total.index_add_(0, b, wins)
    denom = n_pos.to(dtype) * n_neg.to(dtype)
    return torch.where(n_neg > 0, total / denom.clamp_min(1), math.nan)


def evaluate_chunk(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    rows: np.ndarray,
    test: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    negatives: sp.csr_matrix | None,
    wanted: list[MetricName],
    n_sampled: int | None,
    rng: np.random.Generator | None,
    device: torch.device,
    lists: ListContext | None = None,
) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
    """Per-user values of the ``wanted`` metrics for the users ``rows``, as tensors keyed by name,
    and the top-k lists that ``coverage@k`` and ``gini@k`` need, keyed by k (item indices, -1 in empty slots).

    The beyond-accuracy metrics (:mod:`skbpr.evaluation.beyond`) read the top of the same
    sort as the rank-based metrics; they need ``lists`` and ``n_sampled=None``.
    """
    n_rows, n_items = len(rows), test.shape[1]
    dtype = torch.float32 if device.type == "mps" else torch.float64
    users = torch.from_numpy(rows.astype(np.int64)).to(device)
    with torch.no_grad():
        scores = score_fn(users)
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"score_fn must return a torch.Tensor, got {type(scores).__name__}")
    if tuple(scores.shape) != (n_rows, n_items):
        raise ValueError(
            f"score_fn returned shape {tuple(scores.shape)} for {n_rows} users; expected ({n_rows}, {n_items})"
        )
    scores = scores.detach().to(device)
    if not scores.is_floating_point():
        scores = scores.to(torch.float64)
    elif scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()

    test_raw = _rows_mask(test, rows, device)
    if exclude is not None:
        excluded = _rows_mask(exclude, rows, device)
        pos = test_raw & ~excluded
        not_candidate = excluded | test_raw
    else:
        excluded = None
        pos = test_raw
        not_candidate = test_raw
    # Sort keys: negated scores, excluded items last (they are never counted).
    keys = torch.neg(scores)
    if excluded is not None:
        keys.masked_fill_(excluded, math.inf)
    if torch.isnan(keys).any():
        bad = rows[torch.isnan(keys).any(dim=1).cpu().numpy()]
        raise ValueError(f"score_fn returned NaN scores for users {bad[:10].tolist()}")

    if n_sampled is not None:
        assert rng is not None
        cand_neg = sample_negatives(not_candidate, n_sampled, rng)
        ranked = pos | cand_neg
    else:
        cand_neg = ~not_candidate
        ranked = None if excluded is None else ~excluded

    # Ascending stable sort of the keys: best first, ties by lower index.
    sorted_keys, order = torch.sort(keys, dim=1, stable=True)
    pos_sorted = pos.gather(1, order)
    b, j = pos_sorted.nonzero(as_tuple=True)  # row-major: by rank within row
    n_pos = pos.sum(dim=1)
    slot = torch.arange(len(b), device=device) - (torch.cumsum(n_pos, 0) - n_pos)[b]
    out: dict[str, torch.Tensor] = {}
    top: dict[int, torch.Tensor] = {}

    beyond = [m for m in wanted if m.beyond_accuracy]
    if beyond:
        assert lists is not None and n_sampled is None
        k_max = max(m.k for m in beyond)
        items, valid = top_k_lists(sorted_keys, order, excluded, k_max)
        out.update(list_values(items, valid, beyond, lists, dtype))
        for k in {m.k for m in beyond if not m.per_user}:
            top[k] = torch.where(valid[:, :k], items[:, :k], -1)
    wanted_values = [m for m in wanted if m.per_user]
    wanted = [m for m in wanted if not m.beyond_accuracy]
    bases = {m.base for m in wanted}
    if bases & {"auc", "implicit_auc"}:
        start_p, end_p = _tie_groups(sorted_keys, b, j, slot)
        if "auc" in bases:
            out["auc"] = _pairwise_auc(cand_neg.gather(1, order), b, start_p, end_p, n_pos, dtype)
        if "implicit_auc" in bases:
            assert negatives is not None
            implicit = _rows_mask(negatives, rows, device) & ~not_candidate
            out["implicit_auc"] = _pairwise_auc(implicit.gather(1, order), b, start_p, end_p, n_pos, dtype)

    if bases - {"auc", "implicit_auc"}:
        # Excluded items sort after every finite score, so the position is the
        # rank unless a positive scored -inf (its key ties with excluded items).
        if ranked is None or (n_sampled is None and not (sorted_keys[b, j] == math.inf).any()):
            rank = (j + 1).to(dtype)
        else:
            rank_all = ranked.gather(1, order).cumsum(dim=1, dtype=torch.int32)
            rank = rank_all[b, j].to(dtype)
        hit_no = (slot + 1).to(dtype)
        n_pos_f = n_pos.to(dtype)
        if "mrr" in bases:
            best = torch.full((n_rows,), math.inf, dtype=dtype, device=device)
            best.scatter_reduce_(0, b, rank, reduce="amin")
            out["mrr"] = 1.0 / best
        discount = 1.0 / torch.log2(rank + 1.0)
        prec_at_hit = hit_no / rank
        for k in sorted({m.k for m in wanted if m.k is not None}):
            in_top = (rank <= k).to(dtype)
            hits = torch.zeros(n_rows, dtype=dtype, device=device)
            hits.index_add_(0, b, in_top)
            ideal_hits = torch.clamp(n_pos_f, max=k)
            out[f"precision@{k}"] = hits / k
            out[f"recall@{k}"] = hits / n_pos_f
            out[f"hit_rate@{k}"] = (hits > 0).to(dtype)
            dcg = torch.zeros(n_rows, dtype=dtype, device=device)
            dcg.index_add_(0, b, in_top * discount)
            ideal_disc = 1.0 / torch.log2(torch.arange(2, min(k, n_items) + 2, device=device, dtype=dtype))
            ideal_cum = torch.nn.functional.pad(ideal_disc.cumsum(0), (1, 0))
            out[f"ndcg@{k}"] = dcg / ideal_cum[ideal_hits.long()]
            ap = torch.zeros(n_rows, dtype=dtype, device=device)
            ap.index_add_(0, b, in_top * prec_at_hit)
            out[f"map@{k}"] = ap / ideal_hits
    return {m.name: out[m.name] for m in wanted_values}, top
