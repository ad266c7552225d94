"""Users x items matrices given as input: the shape and dtype checks, with scikit-learn's messages."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp

from skbpr.data.conversion import check_float32_values

__all__ = ["check_interaction_matrix"]


def check_interaction_matrix(matrix: Any, name: str) -> Any:
    """Shape and dtype checks of a users x items matrix, with scikit-learn's messages.

    Values (NaN, negative entries) are checked by the container, which names
    the matrix as well.

    Parameters
    ----------
    matrix : array-like or sparse matrix of shape (n_users, n_items)
        Nonzero = interaction.
    name : str
        The argument, for the messages.

    Returns
    -------
    ndarray or sparse matrix

    Examples
    --------
    >>> from skbpr.data.interaction_matrix import check_interaction_matrix
    >>> check_interaction_matrix([[1, 0], [0, 2]], "X").shape
    (2, 2)
    >>> check_interaction_matrix([[1, -1]], "X")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Negative values in data passed to X, e.g. [-1]: ...
    """
    from sklearn.utils.validation import check_array

    finite_kw = (
        "ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array).parameters else "force_all_finite"
    )
    checked = check_array(
        matrix, accept_sparse=("csr", "csc", "coo"), dtype="numeric", input_name=name, **{finite_kw: False}
    )
    values = checked.data if sp.issparse(checked) else checked
    if values.dtype.kind in "fi" and values.size and np.nanmin(values) < 0:
        examples = np.unique(values[values < 0])[:5].tolist()
        raise ValueError(
            f"Negative values in data passed to {name}, e.g. {examples}: entries are interactions "
            "(nonzero = interaction) and must be >= 0"
        )
    if values.dtype.kind == "f" and values.dtype.itemsize > 4 and values.size:
        # float64 values that float32 (the container's dtype) would turn into 0 or inf, named as given
        check_float32_values(values, name)
    return checked
