"""The hybrid factorisation model: feature towers and item biases.

``score(u, i) = (Fu[u] @ U) . (Fi[i] @ V) + Fi[i] @ b``

``Fu`` and ``Fi`` are sparse feature matrices (identity columns included when
the feature mode asks for them). The item table stores ``V`` and ``b`` side
by side, ``n_item_features x (n_components + 1)``, so one gather yields an
item's vector and its bias.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn.functional import embedding_bag

FEATURE_MODES = ("identity", "features", "both")


def build_feature_matrix(features: sp.spmatrix | None, n_rows: int, mode: str) -> sp.csr_matrix | None:
    """Apply a feature mode: ``None`` means plain identity (one row per entity).

    Parameters
    ----------
    features : sparse matrix or None
        The given features, ``n_rows x n_features``.
    n_rows : int
        Number of users or items.
    mode : {"identity", "features", "both"}
        ``identity`` ignores the features, ``features`` uses them alone,
        ``both`` appends one identity column per row.
    """
    if mode == "identity" or features is None:
        return None
    if mode == "features":
        return sp.csr_matrix(features, dtype=np.float32)
    return sp.hstack([features, sp.identity(n_rows, dtype=np.float32, format="csr")], format="csr", dtype=np.float32)


class FeatureMap:
    """Rows of a sparse feature matrix on a torch device, or the identity.

    ``gather(table, rows)`` returns ``F[rows] @ table``; ``expand(rows, grads)``
    maps gradients of those products back to the table rows they touched.
    """

    def __init__(self, matrix: sp.csr_matrix | None, n_rows: int, device: torch.device) -> None:
        self.n_rows = n_rows
        self.identity = matrix is None
        self.n_features = n_rows if matrix is None else matrix.shape[1]
        if matrix is not None:
            matrix = sp.csr_matrix(matrix, dtype=np.float32)
            matrix.sum_duplicates()
            self.indptr = torch.as_tensor(matrix.indptr.astype(np.int64), device=device)
            self.indices = torch.as_tensor(matrix.indices.astype(np.int64), device=device)
            self.data = torch.as_tensor(matrix.data, device=device)

    def to(self, device: torch.device) -> FeatureMap:
        """Move the index arrays to ``device`` in place and return ``self``."""
        if not self.identity:
            self.indptr, self.indices, self.data = (t.to(device) for t in (self.indptr, self.indices, self.data))
        return self

    def _entries(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        start = self.indptr.index_select(0, rows)
        length = self.indptr.index_select(0, rows + 1) - start
        offsets = torch.cumsum(length, 0) - length
        total = int(length.sum())
        entry = torch.repeat_interleave(start - offsets, length, output_size=total)
        entry += torch.arange(total, device=rows.device)
        return self.indices.index_select(0, entry), self.data.index_select(0, entry), offsets, length

    def gather(self, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Representations ``F[rows] @ table``, shape ``(len(rows), table.shape[1])``."""
        if self.identity:
            return table.index_select(0, rows)
        cols, weights, offsets, _ = self._entries(rows)
        return embedding_bag(cols, table, offsets, mode="sum", per_sample_weights=weights)

    def table_gradients(self, rows: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adjoint of :meth:`gather`: table rows and their gradients for gradients ``grads`` of ``F[rows] @ table``.

        Each representation's gradient is scattered back to the table rows of
        its features, scaled by the feature weights (rows may repeat: the
        optimiser sums them).
        """
        if self.identity:
            return rows, grads
        cols, weights, _, length = self._entries(rows)
        owner = torch.repeat_interleave(
            torch.arange(rows.numel(), device=rows.device), length, output_size=cols.numel()
        )
        return cols, grads.index_select(0, owner) * weights[:, None]


class HybridFactorization(torch.nn.Module):
    """User and item feature embeddings with an item bias.

    Parameters
    ----------
    n_user_features, n_item_features : int
        Rows of the user and item tables.
    n_components : int
        Dimension of the latent space.
    init_std : float
        Standard deviation of the normal initialisation of the embeddings
        (biases start at zero).
    generator : torch.Generator, optional
        Source of the initial weights, for reproducibility.
    """

    def __init__(
        self,
        n_user_features: int,
        n_item_features: int,
        n_components: int,
        *,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_components = n_components
        user = torch.randn((n_user_features, n_components), generator=generator) * init_std
        item = torch.randn((n_item_features, n_components + 1), generator=generator) * init_std
        item[:, -1] = 0.0
        self.user_weight = torch.nn.Parameter(user, requires_grad=False)
        self.item_weight = torch.nn.Parameter(item, requires_grad=False)

    def user_vectors(self, users: FeatureMap, rows: torch.Tensor) -> torch.Tensor:
        """User representations for ``rows`` of the user feature map."""
        return users.gather(self.user_weight, rows)

    def item_vectors(self, items: FeatureMap, rows: torch.Tensor) -> torch.Tensor:
        """Item representations with the bias as the last column."""
        return items.gather(self.item_weight, rows)

    @staticmethod
    def scores(user_vecs: torch.Tensor, item_vecs: torch.Tensor) -> torch.Tensor:
        """All-pairs scores ``(n_users, n_items)`` from representations.

        One matrix product of ``[u, 1]`` with ``[v, b]``: the bias rides in
        the product (no separate pass over the large output) and the
        transposed item matrix is made contiguous for the GEMM.
        """
        ones = torch.ones((user_vecs.shape[0], 1), dtype=user_vecs.dtype, device=user_vecs.device)
        return torch.mm(torch.cat([user_vecs, ones], dim=1), item_vecs.T.contiguous())

    def forward(
        self, users: FeatureMap, items: FeatureMap, user_rows: torch.Tensor, item_rows: torch.Tensor
    ) -> torch.Tensor:
        """Scores of the pairs ``(user_rows[n], item_rows[n])``."""
        u = self.user_vectors(users, user_rows)
        v = self.item_vectors(items, item_rows)
        return (u * v[:, :-1]).sum(dim=1) + v[:, -1]
