"""Negative samplers, vectorised over whole batches of users.

``uniform``
    Exact uniform draws among the items a user has no training positive for.
    No rejection loop: the ``r``-th non-positive item of a user is found with
    one ``searchsorted`` over the user's sorted positives.
``implicit``
    Uniform draws from the user's implicit negatives (``Rneg`` row); users
    without any fall back to ``uniform``.
``mixed``
    Implicit with probability ``implicit_ratio`` (for users who have implicit
    negatives), uniform otherwise.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from skbpr.training.stream import uniform01

SAMPLERS = ("uniform", "implicit", "mixed")


def _csr_tensors(matrix: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    indptr = torch.as_tensor(matrix.indptr.astype(np.int64), device=device)
    indices = torch.as_tensor(matrix.indices.astype(np.int64), device=device)
    return indptr, indices


def users_without_candidates(positives: sp.csr_matrix) -> np.ndarray:
    """Users of ``positives`` (CSR, canonical) whose every item is a positive: no negative can be drawn."""
    return np.flatnonzero(np.diff(positives.indptr) == positives.shape[1])


class NegativeSampler:
    """Draw negatives for batches of users.

    Parameters
    ----------
    positives : scipy.sparse.csr_matrix
        Training positives, users x items, canonical (sorted indices, no
        duplicates).
    negatives : scipy.sparse.csr_matrix or None
        Implicit negatives, same shape, disjoint from ``positives``.
    mode : {"uniform", "implicit", "mixed"}
        Sampling strategy.
    implicit_ratio : float
        Probability of an implicit draw in ``mixed`` mode.
    device : torch.device
        Where the index arrays live and the draws happen.
    """

    def __init__(
        self,
        positives: sp.csr_matrix,
        negatives: sp.csr_matrix | None = None,
        *,
        mode: str = "uniform",
        implicit_ratio: float = 0.5,
        device: torch.device | str = "cpu",
    ) -> None:
        if mode not in SAMPLERS:
            raise ValueError(f"negatives must be one of {SAMPLERS}, got {mode!r}")
        self.mode = mode
        self.implicit_ratio = float(implicit_ratio)
        self.device = torch.device(device)
        self.n_users, self.n_items = positives.shape
        self._positives = positives
        self._stride = self.n_items + 1
        indptr, indices = _csr_tensors(positives, self.device)
        self._pos_indptr = indptr
        counts = indptr[1:] - indptr[:-1]
        self._n_candidates = self.n_items - counts
        # key of the k-th positive of user u: u * stride + (item - k), nondecreasing.
        rows = torch.repeat_interleave(torch.arange(self.n_users, device=self.device), counts)
        local = torch.arange(indices.numel(), device=self.device) - indptr[:-1].repeat_interleave(counts)
        self._keys = rows * self._stride + (indices - local)
        self._neg = None
        if mode != "uniform" and negatives is not None and negatives.nnz:
            neg_indptr, neg_indices = _csr_tensors(negatives, self.device)
            self._neg = (neg_indptr[:-1], neg_indptr[1:] - neg_indptr[:-1], neg_indices)

    @property
    def users_without_candidates(self) -> np.ndarray:
        """Users whose every item is a positive: no negative can be drawn."""
        return users_without_candidates(self._positives)

    def _counters(self, users: torch.Tensor, n: int, positions: torch.Tensor | None) -> torch.Tensor:
        """Counter of each draw: ``3 * (position * n + slot)``, shape ``(len(users), n)``."""
        if positions is None:
            positions = torch.arange(users.numel(), device=self.device)
        slots = torch.arange(n, device=self.device)
        return (positions.to(self.device, torch.int64)[:, None] * n + slots) * 3

    def uniform(self, users: torch.Tensor, n: int, seed: int, *, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Exact uniform non-positive items, shape ``(len(users), n)``."""
        return self._uniform(users, seed, self._counters(users, n, positions))

    def _uniform(self, users: torch.Tensor, seed: int, counters: torch.Tensor) -> torch.Tensor:
        cand = self._n_candidates.index_select(0, users)[:, None]
        r = (uniform01(seed, counters) * cand).long()
        r = torch.minimum(r, cand - 1).clamp_(min=0)
        start = self._pos_indptr.index_select(0, users)[:, None]
        probe = users[:, None] * self._stride + r
        below = torch.searchsorted(self._keys, probe, right=True) - start
        return r + below

    def sample(self, users: torch.Tensor, n: int, seed: int, *, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` negatives per user, shape ``(len(users), n)``.

        Draw ``k`` of the sample at epoch position ``p`` is a function of
        ``(seed, p, k)`` alone (:mod:`skbpr.training.stream`), the draw of
        the compiled kernel; ``positions`` defaults to ``0..len(users)-1``.
        """
        counters = self._counters(users, n, positions)
        items = self._uniform(users, seed, counters)
        if self._neg is None:
            return items
        starts, counts, neg_items = self._neg
        cnt = counts.index_select(0, users)[:, None].expand(-1, n)
        use = cnt > 0
        if self.mode == "mixed":
            use = use & (uniform01(seed, counters + 2) < self.implicit_ratio)
        offset = torch.minimum((uniform01(seed, counters + 1) * cnt).long(), cnt - 1).clamp_(min=0)
        pick = (starts.index_select(0, users)[:, None] + offset).clamp_(max=neg_items.numel() - 1)
        implicit = neg_items.index_select(0, pick.flatten()).view_as(pick)
        return torch.where(use, implicit, items)


SHARED_SAMPLINGS = ("uniform", "popularity")
SHARED_SALT = 0x2545F4914F6CDD1D  # keeps the shared draws apart from the per-positive ones


def shared_distribution(positives: sp.csr_matrix, mode: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """How shared negatives are drawn: ``(cdf, log_q)``, both ``None`` for uniform draws.

    ``popularity`` draws item ``j`` with probability ``q_j`` proportional to
    its number of training positives plus one (so that every item can be
    drawn). ``cdf`` (float64, ``n_items``) is the cumulative distribution
    that both engines search; ``log_q`` (float32) is ``log(n_items * q_j)``,
    the log of each item's sampling probability relative to uniform draws,
    which the softmax loss subtracts from the item's logit (log-Q correction).
    """
    if mode not in SHARED_SAMPLINGS:
        raise ValueError(f"shared_sampling must be one of {SHARED_SAMPLINGS}, got {mode!r}")
    if mode == "uniform":
        return None, None
    n_items = positives.shape[1]
    counts = np.bincount(positives.indices, minlength=n_items).astype(np.float64) + 1.0
    q = counts / counts.sum()
    return np.cumsum(q), np.log(q * n_items).astype(np.float32)


class SharedSampler:
    """The shared negatives of each batch and the positives among them.

    Batch ``t`` of an epoch draws ``n_shared`` items with replacement, draw
    ``s`` a function of ``(seed, t * n_shared + s)`` alone
    (:func:`skbpr.training.stream.uniform01`), the draw of the compiled
    kernel: uniform over the catalogue, or by popularity
    (:func:`shared_distribution`).

    Parameters
    ----------
    positives : scipy.sparse.csr_matrix
        Training positives, users x items, canonical.
    n_shared : int
        Items drawn per batch.
    mode : {"uniform", "popularity"}
        How they are drawn.
    device : torch.device
        Where the draws happen.
    """

    def __init__(self, positives: sp.csr_matrix, n_shared: int, mode: str, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.n_shared = int(n_shared)
        self.n_items = positives.shape[1]
        cdf, log_q = shared_distribution(positives, mode)
        self.cdf = None if cdf is None else torch.as_tensor(cdf, device=self.device)
        self.log_q = None if log_q is None else torch.as_tensor(log_q, device=self.device)
        indptr, indices = _csr_tensors(positives, self.device)
        rows = torch.repeat_interleave(torch.arange(positives.shape[0], device=self.device), indptr[1:] - indptr[:-1])
        self._keys = rows * self.n_items + indices  # ascending: the matrix is canonical

    def draw(self, seed: int, batch: int) -> torch.Tensor:
        """The shared items of batch number ``batch`` of the epoch ``seed``, shape ``(n_shared,)``."""
        counters = batch * self.n_shared + torch.arange(self.n_shared, device=self.device)
        u = uniform01((seed ^ SHARED_SALT) & ((1 << 64) - 1), counters)
        if self.cdf is None:
            items = (u * self.n_items).long()
        else:
            items = torch.searchsorted(self.cdf, u, right=True)
        return items.clamp_(max=self.n_items - 1)

    def valid(self, users: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        """``(len(users), n_shared)`` booleans: False where the shared item is a training positive of the user."""
        if self._keys.numel() == 0:
            return torch.ones((users.numel(), shared.numel()), dtype=torch.bool, device=self.device)
        probe = users[:, None] * self.n_items + shared[None, :]
        at = torch.searchsorted(self._keys, probe).clamp_(max=self._keys.numel() - 1)
        return self._keys[at] != probe
