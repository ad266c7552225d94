"""Interaction weights as confidences: the transform from raw weights to the multiplier of each positive's loss.

A positive's weight (a play count, a purchase quantity, the sum of merged
duplicates) becomes its confidence ``c = t(w) / mean(t(w))``: the transform
``t`` tames the range of raw counts (Last.fm play counts span 1 to 352,698),
and dividing by the mean over the training positives keeps the average
multiplier at 1, so a learning rate means the same with and without weights.
The mean is a model's unit: ``fit`` (or the ``partial_fit`` that starts a
model) measures it, ``confidence_scale_``, and later ``partial_fit`` batches
are divided by it rather than by their own mean, so that a batch of equal
weights keeps the confidence those weights had.
The confidence multiplies the positive's term of the batch-mean loss (its
value and its gradient, :mod:`skbpr.losses`), never the L2 terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

WEIGHTINGS = ("none", "log", "linear")

Weighting = str | Callable[[np.ndarray], Any]


def check_weighting(weighting: Any) -> None:
    """Raise ``ValueError`` unless ``weighting`` is one of :data:`WEIGHTINGS` or a callable.

    Parameters
    ----------
    weighting : object
        The value of :class:`~skbpr.HybridBPR`'s ``weighting`` parameter.

    Examples
    --------
    >>> from skbpr.training.weighting import check_weighting
    >>> check_weighting("log")
    >>> check_weighting("sqrt")
    Traceback (most recent call last):
    ...
    ValueError: weighting must be one of ('none', 'log', 'linear') or a callable, got 'sqrt'
    """
    if callable(weighting):
        return
    if not isinstance(weighting, str) or weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS} or a callable, got {weighting!r}")


def confidences(
    values: Any, weighting: Weighting, scale: float | None = None, *, return_scale: bool = False
) -> np.ndarray | tuple[np.ndarray, float]:
    """The confidence of each positive from its raw weight: ``t(w) / mean(t(w))``, float32.

    Parameters
    ----------
    values : array-like of shape (n_positives,)
        Raw interaction weights, finite and > 0 (as :class:`~skbpr.Interactions`
        holds them).
    weighting : {"none", "log", "linear"} or callable
        The transform ``t``: ``"none"``, every confidence 1 (weights ignored);
        ``"log"``, ``t(w) = log(1 + w)``; ``"linear"``, ``t(w) = w``; a
        callable gets the float64 weights and returns ``t(w)``, an array of
        the same shape, finite and >= 0, not all 0.
    scale : float or None, default=None
        The normaliser: ``None`` divides by the mean of ``t(w)`` over
        ``values``; a number (the scale another call returned, as a model's
        first fit measured it) divides by that number instead, so that later
        batches keep the first batch's unit. Finite and > 0.
    return_scale : bool, default=False
        Also return the normaliser used.

    Returns
    -------
    confidences : ndarray of float32, shape (n_positives,)
        ``t(w) / scale``: mean 1 when ``scale`` is ``None`` (every one exactly
        1 when ``t(w)`` is constant, as on binary data, and with ``"none"``).
    scale : float
        Only with ``return_scale``: the normaliser, ``mean(t(w))`` or the
        ``scale`` given (1.0 for ``"none"`` or no values).

    Raises
    ------
    ValueError
        When ``weighting`` is none of the above, a callable returns values
        of another shape, non-finite, negative or all zero, ``scale`` is not
        finite and > 0, or a weight divided by ``scale`` overflows float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.training.weighting import confidences
    >>> confidences([1, 1, 1], "log")
    array([1., 1., 1.], dtype=float32)
    >>> np.round(confidences([1, 9, 99], "log"), 3)
    array([0.274, 0.909, 1.818], dtype=float32)
    >>> confidences([1, 3], "linear")
    array([0.5, 1.5], dtype=float32)
    >>> confidences([1, 4], np.sqrt)
    array([0.6666667, 1.3333334], dtype=float32)

    A later batch keeps the unit of the first (weights 1 and 3: mean 2):

    >>> first, scale = confidences([1, 3], "linear", return_scale=True)
    >>> scale
    2.0
    >>> confidences([3, 3], "linear", scale)
    array([1.5, 1.5], dtype=float32)
    """
    check_weighting(weighting)
    number = isinstance(scale, int | float | np.floating) and not isinstance(scale, bool)
    if scale is not None and not (number and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0 or None, got {scale!r}")
    w = np.asarray(values, dtype=np.float64).ravel()
    t = _transform(w, weighting)
    if t is None:  # "none", or no positive
        out = np.ones(w.size, dtype=np.float32)
        return (out, 1.0 if scale is None else float(scale)) if return_scale else out
    top = t.max()
    if scale is None:
        if t.min() == top:
            out, scale = np.ones(w.size, dtype=np.float32), float(top)
        else:
            t = t / top  # in [0, 1]: the mean cannot overflow
            mean = t.mean()
            out, scale = (t / mean).astype(np.float32), float(mean * top)
    else:
        with np.errstate(over="ignore"):
            out = (t / float(scale)).astype(np.float32)
        if not np.isfinite(out).all():
            where = np.flatnonzero(~np.isfinite(out))[:3]
            raise ValueError(
                f"weights {w[where].tolist()} divided by the confidence scale {scale!r} (the mean of t(w) the "
                "first fit measured) overflow float32, the training dtype: these weights are far outside the "
                "range the model was first fitted on; call fit to normalise them anew"
            )
    return (out, float(scale)) if return_scale else out


def _transform(w: np.ndarray, weighting: Weighting) -> np.ndarray | None:
    """``t(w)`` in float64, checked; ``None`` for ``"none"`` or no weights."""
    named = isinstance(weighting, str)
    if (named and weighting == "none") or w.size == 0:
        return None
    if named and weighting == "log":
        return np.log1p(w)
    if named and weighting == "linear":
        return w
    name = getattr(weighting, "__name__", type(weighting).__name__)
    out = weighting(w.copy())
    try:
        t = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"weighting callable {name} must return numbers, one per positive, got {type(out).__name__}"
        ) from exc
    if t.shape != w.shape:
        raise ValueError(
            f"weighting callable {name} must return one value per positive, shape {w.shape}, got shape {t.shape}"
        )
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        raise ValueError(
            f"weighting callable {name} must return finite values >= 0, got {t[bad][:3].tolist()} "
            f"for weights {w[bad][:3].tolist()}"
        )
    if not t.any():
        raise ValueError(f"weighting callable {name} returned 0 for every positive: no positive would count")
    return t
