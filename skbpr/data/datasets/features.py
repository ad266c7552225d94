"""Multi-hot feature blocks of the data set readers (tags, genres, friends, demographics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["multi_hot"]


def multi_hot(
    rows: np.ndarray, labels: Any, n_rows: int, prefix: str, vocabulary: list[str] | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """One column per label, 1 where a (row, label) pair occurs (repeated pairs count once).

    Parameters
    ----------
    rows : ndarray of int
        Row of each pair.
    labels : array-like
        Label of each pair; missing labels and labels outside ``vocabulary`` are skipped.
    n_rows : int
        Number of rows of the matrix.
    prefix : str
        Columns are named ``"<prefix>=<label>"``.
    vocabulary : list of str, optional
        The columns, in this order; default the sorted distinct labels.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix of float32, shape (n_rows, n_labels)
    names : ndarray of str (object), shape (n_labels,)
    """
    if vocabulary is None:
        codes, names = pd.factorize(labels, sort=True)
    else:
        codes, names = pd.Categorical(labels, categories=vocabulary).codes, vocabulary
    keep = codes >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], codes[keep])),
        shape=(n_rows, len(names)),
    )
    matrix.data[:] = 1.0  # the constructor summed repeated pairs
    return matrix, np.array([f"{prefix}={name}" for name in names], dtype=object)
