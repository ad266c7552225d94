"""Inverse-CDF sampling of items through a guide table (the exposure draws of the synthetic data)."""

from __future__ import annotations

import numpy as np

__all__ = ["guide_table", "sample_items"]


def guide_table(cdf: np.ndarray) -> np.ndarray:
    """Item index at each of ``G + 1`` equally spaced points of [0, 1]."""
    n_items = cdf.shape[0]
    n_cells = 1 << int(min(22, max(10, np.ceil(np.log2(32 * n_items)))))
    points = np.arange(n_cells + 1) / n_cells
    guide = np.searchsorted(cdf, points, side="right")
    return np.minimum(guide, n_items - 1)


def sample_items(item_guide: np.ndarray, item_cdf: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Item drawn by each uniform draw: inverse-CDF sampling through a guide table.

    A draw falling in a cell without a CDF step is resolved by lookup; only
    the few draws in cells containing a step need ``searchsorted``.  The cell
    count is a power of two, so ``draws * n_cells`` is exact.
    """
    n_cells = item_guide.shape[0] - 1
    cell = (draws * n_cells).astype(np.int64)
    items = item_guide[cell]
    ambiguous = np.flatnonzero(items != item_guide[cell + 1])
    found = np.searchsorted(item_cdf, draws[ambiguous], side="right")
    items[ambiguous] = np.minimum(found, item_cdf.shape[0] - 1)
    return items
