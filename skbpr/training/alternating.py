"""The ``"ials"`` loss: a confidence-weighted squared loss over all pairs, solved by alternating blocks.

The hybrid model scores ``s_ui = (Fu[u] @ U) . (Fi[i] @ V) + Fi[i] @ b``.
The objective is the implicit-ALS objective (Hu, Koren and Volinsky 2008, in
the form of Rendle et al. 2021) written for that model::

    L = sum over training positives of c_ui (1 - s_ui)^2
        + w0 * sum over ALL (u, i) pairs of s_ui^2
        + sum over table rows r of lambda_r ||W_r||^2

``c_ui`` is the positive's confidence (``weighting``), ``w0`` the weight of
every pair (``unobserved_weight``) and ``lambda_r = lambda * n_r^nu`` with
``n_r = (number of positives of the row's entity) + w0 * (size of the other
side)`` (summed through the feature weights for a feature row), so ``nu = 0``
is the plain L2 penalty and ``nu = 1`` the frequency-scaled one of Rendle et
al. (``reg_exponent``).

The all-pairs term is never enumerated: with the representations ``P = Fu @
U`` and ``Q = Fi @ [V, b]``, ``sum_ui s_ui^2 = <[P, 1]'[P, 1], Q'Q>``, two
Gramians of size ``(k + 1)^2``, so an epoch costs ``O(nnz k + (n_users +
n_items) k^2)``.

One epoch is one alternating sweep: the user table with the item table
fixed, then the item table (with its bias column) with the user table fixed.
Each half is a linear least-squares problem in the table, even with feature
matrices, and is solved by a few conjugate-gradient steps warm-started at the
current table (as implicit's and iALS++'s solvers do). Where the feature map
is the identity, the problem splits into one small system per row and each
row runs its own CG (step sizes per row, all rows at once); with features,
CG runs over the whole table, the Hessian-vector product going through
sparse products with the feature matrix and its transpose. Everything is
torch, so the same code runs on the CPU and on CUDA.
"""

from __future__ import annotations

import warnings

import torch

from skbpr.training.model import FeatureMap, HybridFactorization
from skbpr.training.problem import TrainingProblem

CG_STEPS = 3  # per block and sweep, warm-started (implicit's default)
FEATURE_CG_STEPS = 8  # one CG over a whole table converges more slowly than one per row


class LinearMap:
    """A feature map as sparse CSR matrices: ``F @ table`` and its adjoint ``F' @ values`` (identity: no-ops).

    Parameters
    ----------
    fmap : FeatureMap
        The feature rows of one side.
    """

    def __init__(self, fmap: FeatureMap) -> None:
        self.identity, self.n_rows, self.n_features = fmap.identity, fmap.n_rows, fmap.n_features
        if not fmap.identity:
            shape = (fmap.n_rows, fmap.n_features)
            with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" notice
                warnings.simplefilter("ignore", UserWarning)
                forward = torch.sparse_csr_tensor(fmap.indptr, fmap.indices, fmap.data, shape, check_invariants=False)
                self.forward = forward
                self.adjoint = forward.to_sparse_coo().t().coalesce().to_sparse_csr()
                adjoint = self.adjoint
                self.adjoint_squared = torch.sparse_csr_tensor(
                    adjoint.crow_indices(),
                    adjoint.col_indices(),
                    adjoint.values() ** 2,
                    adjoint.shape,
                    check_invariants=False,
                )

    def __call__(self, table: torch.Tensor) -> torch.Tensor:
        """``F @ table``: one representation per entity."""
        return table if self.identity else self.forward @ table

    def transpose(self, values: torch.Tensor) -> torch.Tensor:
        """``F' @ values``: per-entity values summed onto the table rows of their features."""
        return values if self.identity else self.adjoint @ values

    def transpose_squared(self, values: torch.Tensor) -> torch.Tensor:
        """``(F * F)' @ values``: the diagonal of ``F' D F`` for per-entity diagonals ``D`` (rows of ``values``)."""
        return values if self.identity else self.adjoint_squared @ values


class Entries:
    """The positives of one side in CSR order: row pointers over this side's entities, the other side, confidences.

    Parameters
    ----------
    own, other : LongTensor
        The positives' entity on this side and on the other (any order).
    conf : Tensor
        Their confidences.
    n_own, n_other : int
        Entities on each side.
    """

    def __init__(self, own: torch.Tensor, other: torch.Tensor, conf: torch.Tensor, n_own: int, n_other: int) -> None:
        order = torch.argsort(own, stable=True)
        self.own, self.other, self.conf = own[order], other[order], conf[order]
        counts = torch.bincount(self.own, minlength=n_own)
        self.crow = torch.zeros(n_own + 1, dtype=torch.int64, device=own.device)
        self.crow[1:] = torch.cumsum(counts, 0)
        self.counts = counts
        self.shape = (n_own, n_other)

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        """The sparse CSR matrix (this side x other side) of ``values`` on the positives' pattern."""
        with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" notice
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.other, values, self.shape, check_invariants=False)


class Block:
    """One half of a sweep: the least-squares problem of one table with the other side fixed.

    The table ``X`` gives representations ``R = F @ X``; the other side's
    representations are ``O`` (and ``offset``, added to every score of an
    item: the item bias when the user table is solved). Scores are ``R[e] .
    O[o] + offset[o]``. The block's objective is the one of the module with
    everything but ``X`` fixed; its gradient is ``2 (H X - rhs)``. The sums
    over positives are sparse products on the positives' pattern (a sampled
    dense product, then a sparse-dense one), the sums over all pairs one
    product with the Gramian ``O'O``.

    Parameters
    ----------
    fmap : LinearMap
        This side's feature map.
    entries : Entries
        The positives, grouped by this side's entities.
    other_vecs : Tensor
        ``O``, shape ``(n_other, d)``.
    offset : Tensor or None
        Per other-side entity, added to its scores.
    unobserved_weight : float
        ``w0``.
    reg : Tensor
        ``lambda_r`` per table row.
    """

    def __init__(
        self,
        fmap: LinearMap,
        entries: Entries,
        other_vecs: torch.Tensor,
        offset: torch.Tensor | None,
        unobserved_weight: float,
        reg: torch.Tensor,
    ) -> None:
        self.fmap, self.entries, self.reg = fmap, entries, reg
        self.w0 = float(unobserved_weight)
        self.other_vecs = other_vecs
        self.other_t = other_vecs.T.contiguous()
        self.gram = self.other_t @ other_vecs
        conf = entries.conf.to(other_vecs.dtype)
        self.conf = conf
        target = conf if offset is None else conf * (1.0 - offset.index_select(0, entries.other))
        per_entity = entries.matrix(target) @ other_vecs
        if offset is not None:
            per_entity -= self.w0 * (offset @ other_vecs)[None, :]
        self.rhs = fmap.transpose(per_entity)
        self.pattern = entries.matrix(torch.zeros_like(conf))

    def hessian_product(self, direction: torch.Tensor) -> torch.Tensor:
        """``H @ direction`` for a table-shaped ``direction`` (half the objective's Hessian)."""
        rep = self.fmap(direction)
        along = torch.sparse.sampled_addmm(self.pattern, rep, self.other_t, beta=0.0).values() * self.conf
        out = self.entries.matrix(along) @ self.other_vecs
        out.addmm_(rep, self.gram, alpha=self.w0)
        return self.fmap.transpose(out).addcmul_(direction, self.reg[:, None])

    def gradient(self, table: torch.Tensor) -> torch.Tensor:
        """Gradient of the objective with respect to the table."""
        return 2.0 * (self.hessian_product(table) - self.rhs)

    def diagonal(self) -> torch.Tensor:
        """The diagonal of ``H``, table-shaped (the Jacobi preconditioner of the whole-table CG)."""
        other_sq = self.other_vecs * self.other_vecs
        per_entity = self.entries.matrix(self.conf) @ other_sq
        per_entity += self.w0 * torch.diagonal(self.gram)[None, :]
        return self.fmap.transpose_squared(per_entity) + self.reg[:, None]

    def solve(self, table: torch.Tensor, steps: int) -> None:
        """``steps`` conjugate-gradient steps on ``H X = rhs`` from the current ``table``, in place.

        Per row when the feature map is the identity (independent systems),
        over the whole table otherwise, preconditioned by the diagonal of
        ``H``: a feature shared by many entities has a curvature that many
        times an entity's own row's, which plain CG over the table would
        take many steps to balance.
        """
        per_row = self.fmap.identity

        def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (a * b).sum(dim=1, keepdim=True) if per_row else (a * b).sum()

        scale = None if per_row else 1.0 / self.diagonal().clamp_min(1e-30)
        residual = self.rhs - self.hessian_product(table)
        direction = residual.clone() if scale is None else residual * scale
        norm = dot(residual, direction)
        for _ in range(steps):
            product = self.hessian_product(direction)
            curvature = dot(direction, product)
            step = torch.where(curvature > 0, norm / curvature.clamp_min(1e-30), torch.zeros_like(norm))
            table.add_(direction * step)
            residual.sub_(product * step)
            preconditioned = residual if scale is None else residual * scale
            new_norm = dot(residual, preconditioned)
            ratio = torch.where(norm > 0, new_norm / norm.clamp_min(1e-30), torch.zeros_like(norm))
            direction = preconditioned + direction * ratio
            norm = new_norm


class AlternatingSolver:
    """Epochs of the ``"ials"`` loss: alternating block solves, with the interface of an engine.

    Parameters
    ----------
    problem : TrainingProblem
        The positives (``users``, ``items``, ``weights``: their confidences),
        the feature maps, ``alpha`` (lambda), ``unobserved_weight`` and
        ``reg_exponent``.
    model : HybridFactorization
        Weights, updated in place.
    cg_steps : int or None, default=None
        Conjugate-gradient steps per block and sweep; ``None``:
        :data:`CG_STEPS` for an identity map, :data:`FEATURE_CG_STEPS` with
        features.
    """

    def __init__(self, problem: TrainingProblem, model: HybridFactorization, *, cg_steps: int | None = None) -> None:
        self.problem, self.model = problem, model
        self.user_map, self.item_map = LinearMap(problem.user_map), LinearMap(problem.item_map)
        self.users, self.items = problem.users, problem.items
        dtype = model.user_weight.dtype
        self.conf = (
            torch.ones(self.users.numel(), dtype=dtype, device=self.users.device)
            if problem.weights is None
            else problem.weights.to(dtype)
        )
        self.w0 = float(problem.unobserved_weight)
        self.cg_steps = cg_steps
        n_users, n_items = self.user_map.n_rows, self.item_map.n_rows
        self.by_user = Entries(self.users, self.items, self.conf, n_users, n_items)
        self.by_item = Entries(self.items, self.users, self.conf, n_items, n_users)
        self.user_reg = self._row_reg(self.user_map, self.by_user.counts, n_items, dtype)
        self.item_reg = self._row_reg(self.item_map, self.by_item.counts, n_users, dtype)

    def _row_reg(self, fmap: LinearMap, counts: torch.Tensor, n_other: int, dtype: torch.dtype) -> torch.Tensor:
        """``lambda * n_r^nu`` per table row (see the module); ``counts``: positives per entity."""
        lam, nu = float(self.problem.alpha), float(self.problem.reg_exponent)
        device = counts.device
        if nu == 0.0:
            return torch.full((fmap.n_features,), lam, dtype=dtype, device=device)
        counts = counts.to(torch.float64) + self.w0 * n_other
        per_row = fmap.transpose(counts[:, None].to(dtype))[:, 0]
        return (lam * per_row.clamp_min(0.0) ** nu).to(dtype)

    def _steps(self, fmap: LinearMap) -> int:
        if self.cg_steps is not None:
            return self.cg_steps
        return CG_STEPS if fmap.identity else FEATURE_CG_STEPS

    def user_block(self) -> Block:
        """The user table's block, with the current item table fixed."""
        q = self.item_map(self.model.item_weight.data)
        k = self.model.n_components
        return Block(self.user_map, self.by_user, q[:, :k].contiguous(), q[:, k].contiguous(), self.w0, self.user_reg)

    def item_block(self) -> Block:
        """The item table's block (vectors and bias), with the current user table fixed."""
        p = self.user_map(self.model.user_weight.data)
        p1 = torch.cat([p, torch.ones((p.shape[0], 1), dtype=p.dtype, device=p.device)], dim=1)
        return Block(self.item_map, self.by_item, p1, None, self.w0, self.item_reg)

    def objective(self) -> float:
        """The objective of the module at the current weights (float64), through Gramians."""
        p = self.user_map(self.model.user_weight.data)
        q = self.item_map(self.model.item_weight.data)
        p1 = torch.cat([p, torch.ones((p.shape[0], 1), dtype=p.dtype, device=p.device)], dim=1)
        pattern = self.by_user.matrix(torch.zeros_like(self.by_user.conf))
        scores = torch.sparse.sampled_addmm(pattern, p1, q.T.contiguous(), beta=0.0).values().double()
        fit = (self.by_user.conf.double() * (1.0 - scores) ** 2).sum()
        pairs = ((p1.T @ p1).double() * (q.T @ q).double()).sum()
        return float(fit + self.w0 * pairs + self._penalty())

    def _penalty(self) -> torch.Tensor:
        user, item = self.model.user_weight.data.double(), self.model.item_weight.data.double()
        return (self.user_reg.double() * (user * user).sum(dim=1)).sum() + (
            self.item_reg.double() * (item * item).sum(dim=1)
        ).sum()

    def epoch(self, seed: int) -> float:
        """One sweep (user table, then item table); the objective per positive after it.

        ``seed`` is unused: the sweep draws nothing.
        """
        del seed
        self.user_block().solve(self.model.user_weight.data, self._steps(self.user_map))
        self.item_block().solve(self.model.item_weight.data, self._steps(self.item_map))
        return self.objective() / max(self.users.numel(), 1)


def objective(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    conf: torch.Tensor,
    unobserved_weight: float,
) -> torch.Tensor:
    """The data terms of the objective from representations, the all-pairs sum through Gramians.

    Parameters
    ----------
    user_vecs : Tensor of shape (n_users, k)
        ``Fu @ U``.
    item_vecs : Tensor of shape (n_items, k + 1)
        ``Fi @ [V, b]``.
    users, items : LongTensor
        The positives.
    conf : Tensor
        Their confidences.
    unobserved_weight : float
        ``w0``.

    Returns
    -------
    Tensor
        ``sum_pos c (1 - s)^2 + w0 * sum_all s^2`` (no L2 terms).
    """
    ones = torch.ones((user_vecs.shape[0], 1), dtype=user_vecs.dtype, device=user_vecs.device)
    p1 = torch.cat([user_vecs, ones], dim=1)
    s = (p1.index_select(0, users) * item_vecs.index_select(0, items)).sum(dim=1)
    return (conf * (1.0 - s) ** 2).sum() + unobserved_weight * ((p1.T @ p1) * (item_vecs.T @ item_vecs)).sum()
