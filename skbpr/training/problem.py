"""One description of a fit's training problem, handed by the estimator to whichever engine runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import scipy.sparse as sp
import torch

from skbpr.training.model import FeatureMap


@dataclass(frozen=True)
class TrainingProblem:
    """The data and the update of one fit, independent of the engine.

    Parameters
    ----------
    users, items : LongTensor
        The training samples: one ``(user, item)`` positive each.
    positives : scipy.sparse.csr_matrix
        All training positives, users x items, canonical (uniform negatives
        are drawn outside them).
    negatives : scipy.sparse.csr_matrix or None
        Implicit negatives, users x items.
    sampling : {"uniform", "implicit", "mixed"}
        Where negatives come from.
    implicit_ratio : float
        Share of implicit draws in ``mixed`` sampling.
    user_map, item_map : FeatureMap
        Feature rows of users and items (or the identity).
    loss : {"bpr", "logistic", "hinge", "warp", "softmax", "ials"} or callable
    sigma, margin, alpha : float
        BPR sharpness (the softmax's inverse temperature), hinge/WARP margin,
        L2 weight on the representations a batch uses.
    draws_per_sample : int
        Negatives drawn per positive (WARP's candidates); unused with shared
        negatives.
    batch_size : int
        Positives per optimisation step (the loss is their mean).
    weights : Tensor or None, default=None
        Confidence of each sample (float32, finite, >= 0, same length as
        ``users``): it multiplies that sample's term of the batch-mean loss,
        so its value and its gradient with respect to the sample's scores,
        never the L2 terms. ``None``: every sample counts 1.
    unobserved_weight, reg_exponent : float, default=0.0
        ``loss="ials"`` only: the weight of every (user, item) pair's squared
        score and the exponent of the frequency-scaled L2 penalty (see
        :mod:`skbpr.training.alternating`); ``alpha`` is its lambda.
    shared_negatives : int, default=0
        ``S > 0``: every positive of a batch is scored against the same
        ``S`` items drawn for the batch (one dense product per batch) instead
        of negatives of its own; ``sampling`` must then be ``"uniform"``.
        0: per-positive negatives.
    shared_sampling : {"uniform", "popularity"}, default="uniform"
        How the shared items are drawn
        (:func:`skbpr.training.sampling.shared_distribution`).
    """

    users: torch.Tensor
    items: torch.Tensor
    positives: sp.csr_matrix
    negatives: sp.csr_matrix | None
    sampling: str
    implicit_ratio: float
    user_map: FeatureMap
    item_map: FeatureMap
    loss: str | Callable
    sigma: float
    margin: float
    alpha: float
    draws_per_sample: int
    batch_size: int
    weights: torch.Tensor | None = None
    unobserved_weight: float = 0.0
    reg_exponent: float = 0.0
    shared_negatives: int = 0
    shared_sampling: str = "uniform"

    @property
    def n_samples(self) -> int:
        """Training samples per epoch."""
        return self.users.numel()

    @property
    def n_items(self) -> int:
        """Items in the catalogue."""
        return self.positives.shape[1]
