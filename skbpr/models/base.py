"""What every skbpr recommender shares: its scikit-learn tags and its input checks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from skbpr.data.interaction_matrix import check_interaction_matrix

__all__ = ["RecommenderTagsMixin", "check_interaction_matrix", "ignore_target", "warn_if_weighted"]


class RecommenderTagsMixin:
    """Tags of an estimator fitted on a users x items matrix of interactions.

    The input is sparse or dense, non-negative (nonzero = interaction) and
    there is no target. Put the mixin before ``BaseEstimator``.
    """

    def __sklearn_tags__(self) -> Any:
        """scikit-learn >= 1.6 tags: sparse, nonnegative users x items input, no target."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        return tags

    def _more_tags(self) -> dict[str, Any]:
        """The same tags for scikit-learn < 1.6."""
        return {"X_types": ["2darray", "sparse"], "requires_positive_X": True, "requires_y": False}


def ignore_target(Rneg: Any) -> Any:
    """``None`` for a 1-D ``Rneg``: the target ``y`` that scikit-learn tools pass second.

    Implicit negatives are always a 2-D users x items matrix, so a 1-D array
    can only be such a ``y``, which an unsupervised ranking model ignores.

    Parameters
    ----------
    Rneg : object
        The second argument of ``fit``.

    Returns
    -------
    object or None

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.base import ignore_target
    >>> ignore_target(np.zeros(3)) is None, ignore_target(np.zeros((2, 3))).shape
    (True, (2, 3))
    """
    if Rneg is not None and not sp.issparse(Rneg) and np.ndim(Rneg) == 1:
        return None
    return Rneg


def warn_if_weighted(data: Any, owner: str, *, positives_used: bool = False, hint: str = "") -> None:
    """One ``UserWarning`` when positives or negatives carry values other than 1 that go unused.

    Parameters
    ----------
    data : Interactions
        The training data.
    owner : str
        Name of the estimator, for the message.
    positives_used : bool, default=False
        Whether the owner uses the positives' values (then only the
        negatives' are checked).
    hint : str, default=""
        Appended to the message: how to use the values.

    Examples
    --------
    >>> import warnings
    >>> from skbpr import Interactions
    >>> from skbpr.base import warn_if_weighted
    >>> data = Interactions([0, 1], [1, 0], n_users=2, n_items=2, pos_values=[1.0, 3.0])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_weighted(data, "HybridBPR")
    >>> "positives (e.g. [3.0])" in str(caught[0].message)
    True
    """
    found = []
    values = np.asarray(data.pos_values)
    if not positives_used and values.size and np.any(values != 1):
        found.append(f"positives (e.g. {np.unique(values[values != 1])[:3].tolist()})")
    negatives = data.negatives
    if negatives is not None and negatives.nnz and np.any(negatives.data != 1):
        found.append(f"negatives (e.g. {np.unique(negatives.data[negatives.data != 1])[:3].tolist()})")
    if found:
        warnings.warn(
            f"the {' and '.join(found)} hold values other than 1 (weights, counts or merged duplicates); "
            f"{owner} does not use interaction weights: the values are treated as binary, "
            "every nonzero entry is one interaction" + (f"; {hint}" if hint else ""),
            UserWarning,
            stacklevel=3,
        )
