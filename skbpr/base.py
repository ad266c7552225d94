"""What every skbpr recommender declares to scikit-learn."""

from __future__ import annotations

from typing import Any


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
