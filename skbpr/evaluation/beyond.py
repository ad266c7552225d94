"""Beyond-accuracy metrics of the recommended lists: coverage, Gini index, popularity, novelty, diversity.

They are computed from each evaluated user's top-k list, the one the
accuracy metrics read (the same sort of the same scores, training positives
excluded, ties broken by the lower item index), with item popularity taken
from the training positives. Notation: ``L_u`` is user u's top-k list (it
has fewer than k items when the user has fewer than k candidates), ``U`` the
evaluated users, ``n_items`` the catalogue, ``n_users`` the rows of the
training matrix and ``n_i`` the number of training users with a positive
on item i.

* ``coverage@k`` = ``|union_u L_u| / n_items``: the share of the catalogue
  recommended to at least one user.
* ``gini@k``: the Gini index of ``x_i``, the number of lists holding item i,
  over the whole catalogue (items never recommended count, as zeros); with
  the counts sorted ascending ``x_1 <= ... <= x_n``,
  ``sum_i (2i - n - 1) x_i / (n * sum_i x_i)``. 0 when every item is
  recommended equally often, close to 1 when a few items fill every list.
* ``arp@k`` (average recommendation popularity) = mean over u of
  ``mean_{i in L_u} n_i / n_users``.
* ``novelty@k`` = mean over u of ``mean_{i in L_u} -log2((n_i + 1) / (n_users + 1))``.
* ``ild@k`` (intra-list diversity) = mean over u of the mean over the pairs
  ``{a, b}`` of ``L_u`` of ``1 - cos(v_a, v_b)``, ``v`` being item vectors
  (feature rows such as genres, or the model's item representations); a zero
  vector has cosine 0 with every vector. Undefined (NaN, left out of the
  mean) for a list of one item.

``coverage@k`` and ``gini@k`` are properties of all the lists together and
have no per-user value; the other three are means of per-user values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from skbpr.evaluation.names import MetricName

__all__ = ["ListContext", "catalogue_value", "item_counts", "list_context", "list_values", "top_k_lists"]


@dataclass(frozen=True)
class ListContext:
    """What the list metrics of a chunk need: item popularity and unit item vectors, on the device."""

    item_users: torch.Tensor  # n_i, training users with a positive on item i
    n_users: int
    unit_vectors: torch.Tensor | None  # (n_items, d), rows of norm 1 or 0


def list_context(
    train: sp.csr_matrix, item_vectors: Any, device: torch.device, dtype: torch.dtype = torch.float64
) -> ListContext:
    """Popularity counts from the boolean training matrix and the normalised ``item_vectors`` (or None)."""
    counts = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    unit = None
    if item_vectors is not None:
        vectors = torch.as_tensor(np.asarray(item_vectors, dtype=np.float64), device=device).to(dtype)
        norms = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
        unit = torch.where(norms > 0, vectors / norms.clamp_min(1e-300), 0.0)
    return ListContext(torch.from_numpy(counts).to(device=device, dtype=dtype), int(train.shape[0]), unit)


def top_k_lists(
    sorted_keys: torch.Tensor, order: torch.Tensor, excluded: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's first ``k`` ranked items, from the ascending sort of the keys.

    Returns the item indices ``(n_rows, k)`` and a mask of the slots that
    hold an item (a row with fewer than ``k`` candidates has empty slots at
    the end). Excluded items have the key ``inf`` and sort last; a candidate
    scored ``-inf`` has the same key, so when one reaches the top k the
    candidates are picked out of the whole row in their sorted order.
    """
    k = min(k, order.shape[1])
    items = order[:, :k]
    if excluded is None:
        return items, torch.ones_like(items, dtype=torch.bool)
    if not bool((sorted_keys[:, :k] == math.inf).any()):
        return items, torch.ones_like(items, dtype=torch.bool)
    candidate = ~excluded.gather(1, order)  # in sorted order
    # A stable sort moving the candidates ahead of the excluded items keeps their ranking order.
    moved = torch.sort((~candidate).to(torch.int8), dim=1, stable=True).indices[:, :k]
    return order.gather(1, moved), candidate.gather(1, moved)


def list_values(
    items: torch.Tensor, valid: torch.Tensor, wanted: list[MetricName], context: ListContext, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Per-user ``arp@k``, ``novelty@k`` and ``ild@k`` of the lists ``items[:, :k]`` (``valid`` marks the items)."""
    out: dict[str, torch.Tensor] = {}
    for m in wanted:
        if m.base not in ("arp", "novelty", "ild") or m.name in out:
            continue
        top, ok = items[:, : m.k], valid[:, : m.k]
        okf = ok.to(dtype)
        length = okf.sum(dim=1)
        if m.base in ("arp", "novelty"):
            n_i = context.item_users[top]
            if m.base == "arp":
                per_item = n_i / context.n_users
            else:
                per_item = -torch.log2((n_i + 1.0) / (context.n_users + 1.0))
            out[m.name] = (per_item * okf).sum(dim=1) / length
        else:
            assert context.unit_vectors is not None
            v = context.unit_vectors[top] * okf.unsqueeze(2)
            gram = torch.bmm(v, v.transpose(1, 2))
            # Sum over ordered pairs a != b of 1 - cos: the pairs of valid items, twice each.
            pairs = length * (length - 1.0)
            distance = pairs - (gram.sum(dim=(1, 2)) - torch.diagonal(gram, dim1=1, dim2=2).sum(dim=1))
            out[m.name] = torch.where(pairs > 0, distance / pairs.clamp_min(1.0), math.nan)
    return out


def item_counts(lists: np.ndarray, n_items: int, users: np.ndarray | None = None) -> np.ndarray:
    """How many of the lists (rows of ``lists``, ``-1`` for an empty slot) hold each item.

    With ``users`` of shape ``(..., n)``, the counts of each resample of rows,
    shape ``(..., n_items)``, without a loop over resamples.
    """
    rows, slots = np.nonzero(lists >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(rows)), (rows, lists[rows, slots])), shape=(lists.shape[0], n_items), dtype=np.float64
    )
    if users is None:
        return np.asarray(indicator.sum(axis=0)).ravel()
    flat = users.reshape(-1, users.shape[-1]).astype(np.int64)
    n_rows = lists.shape[0]
    offsets = (np.arange(flat.shape[0]) * n_rows)[:, None]
    weights = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * n_rows).reshape(-1, n_rows)
    counts = np.asarray((indicator.T @ weights.T).T)
    return counts.reshape(*users.shape[:-1], n_items)


def catalogue_value(base: str, counts: np.ndarray) -> np.ndarray | float:
    """``coverage`` or ``gini`` of item counts (last axis: the catalogue); NaN without any list."""
    n = counts.shape[-1]
    total = counts.sum(axis=-1)
    if base == "coverage":
        value = (counts > 0).sum(axis=-1) / n
    else:
        x = np.sort(counts, axis=-1)
        weights = 2.0 * np.arange(1, n + 1) - n - 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            value = (x * weights).sum(axis=-1) / (n * total)
    value = np.where(total > 0, value, np.nan)
    return float(value) if np.ndim(value) == 0 else value
