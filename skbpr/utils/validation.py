"""One vocabulary for checking arguments, with one message format.

Every public entry point of skbpr checks what a user passes with these
helpers, before any work, and every failure reads ``"<name> must be <what>,
got <value>"``. The exception, :class:`InvalidParameterError`, is both a
``ValueError`` and a ``TypeError`` (as scikit-learn's own), so callers catch
it as either.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "InvalidParameterError",
    "check_bool",
    "check_choice",
    "check_indices",
    "check_number",
    "examples",
    "invalid",
]

_N_EXAMPLES = 5


class InvalidParameterError(ValueError, TypeError):
    """An argument of the wrong type or out of range; the message names it.

    ``parameter`` holds the argument's name (as given to :func:`invalid`), so
    that a caller can tell which one failed without reading the message.

    Examples
    --------
    >>> from skbpr.utils.validation import InvalidParameterError, check_number
    >>> try:
    ...     check_number(0, "epochs", integer=True, low=1)
    ... except InvalidParameterError as exc:
    ...     print(exc)
    epochs must be an integer >= 1, got 0
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


def invalid(name: str, what: str, value: Any, *, shown: str | None = None) -> InvalidParameterError:
    """The error for ``name``: ``"<name> must be <what>, got <value!r>"``.

    Parameters
    ----------
    name : str
        The argument, as the user wrote it.
    what : str
        What it must be ("an integer >= 1", "one of ('a', 'b')").
    value : object
        What was given.
    shown : str, optional
        How to show it instead of ``repr(value)`` (a shape, a dtype).

    Returns
    -------
    InvalidParameterError
        To ``raise``.

    Examples
    --------
    >>> from skbpr.utils.validation import invalid
    >>> str(invalid("k", "an integer in [1, 5]", 9))
    'k must be an integer in [1, 5], got 9'
    """
    got = repr(value) if shown is None else shown
    return InvalidParameterError(f"{name} must be {what}, got {got}", parameter=name)


def examples(values: Any) -> list:
    """Up to five distinct values, as plain Python objects, for an error message.

    Parameters
    ----------
    values : array-like
        The offending values.

    Returns
    -------
    list

    Examples
    --------
    >>> from skbpr.utils.validation import examples
    >>> examples([3, 3, -1, 7, 8, 9, 10])
    [3, -1, 7, 8, 9]
    """
    import pandas as pd

    return pd.unique(np.asarray(values, dtype=object).ravel())[:_N_EXAMPLES].tolist()


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def check_number(
    value: Any,
    name: str,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    also: str = "",
) -> Any:
    """``value`` as an ``int`` or ``float`` when it is one, finite and in range.

    Parameters
    ----------
    value : object
        What was given.
    name : str
        The argument, for the message.
    integer : bool, default=False
        Require an integer (``bool`` is not one); else any finite real number.
    low, high : float, optional
        Bounds, included unless ``low_open`` / ``high_open``.
    low_open, high_open : bool, default=False
        Exclude the bound.
    allow_none : bool, default=False
        Accept (and return) ``None``.
    also : str, default=""
        What else the caller accepts, for the message (``'or "auto"'``).

    Returns
    -------
    int, float or None

    Raises
    ------
    InvalidParameterError
        ``"<name> must be an integer >= 1, got 0"`` and the like.

    Examples
    --------
    >>> from skbpr.utils.validation import check_number
    >>> check_number(0.2, "test_size", low=0, high=1, low_open=True, high_open=True)
    0.2
    >>> check_number(2.5, "n_splits", integer=True, low=2)
    Traceback (most recent call last):
    ...
    skbpr.utils.validation.InvalidParameterError: n_splits must be an integer >= 2, got 2.5
    """
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    what = ("an integer" if integer else "a finite number") + _interval(low, high, low_open, high_open)
    if allow_none:
        what += " or None"
    if also:
        what += f" {also}"
    if isinstance(value, bool | np.bool_) or not isinstance(value, kind):
        raise invalid(name, what, value)
    number = int(value) if integer else float(value)
    if not math.isfinite(number):
        raise invalid(name, what, value)
    if low is not None and (number < low or (low_open and number == low)):
        raise invalid(name, what, value)
    if high is not None and (number > high or (high_open and number == high)):
        raise invalid(name, what, value)
    return number


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` when it is one of ``choices``.

    Parameters
    ----------
    value : object
        What was given.
    name : str
        The argument, for the message.
    choices : iterable
        The values allowed.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    InvalidParameterError
        ``"<name> must be one of (...), got <value>"``.

    Examples
    --------
    >>> from skbpr.utils.validation import check_choice
    >>> check_choice("adam", "optimizer", ("adagrad", "adam", "sgd"))
    'adam'
    >>> check_choice("rmsprop", "optimizer", ("adagrad", "adam", "sgd"))
    Traceback (most recent call last):
    ...
    skbpr.utils.validation.InvalidParameterError: optimizer must be one of ('adagrad', 'adam', 'sgd'), got 'rmsprop'
    """
    allowed = tuple(choices)
    try:
        ok = any(value == c and (type(value) is type(c) or _both_str(value, c)) for c in allowed)
    except Exception:  # an array or another value without a plain ==
        ok = False
    if not ok:
        raise invalid(name, f"one of {allowed}", value)
    return value


def _both_str(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str)


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool`` when it is ``True`` or ``False`` (numpy's too).

    Parameters
    ----------
    value : object
        What was given.
    name : str
        The argument, for the message.

    Returns
    -------
    bool

    Examples
    --------
    >>> from skbpr.utils.validation import check_bool
    >>> check_bool("no", "deterministic")
    Traceback (most recent call last):
    ...
    skbpr.utils.validation.InvalidParameterError: deterministic must be True or False, got 'no'
    """
    if not isinstance(value, bool | np.bool_):
        raise invalid(name, "True or False", value)
    return bool(value)


def check_indices(values: Any, name: str, bound: int, *, length: int | None = None) -> np.ndarray:
    """``values`` as a 1-D int64 array of indices in ``[0, bound)``.

    Parameters
    ----------
    values : int or array-like of int
        The indices; a scalar counts as one.
    name : str
        The argument, for the message.
    bound : int
        Indices must be below it.
    length : int, optional
        The length the array must have (one entry per positive).

    Returns
    -------
    ndarray of int64

    Raises
    ------
    InvalidParameterError
        For another shape or length, a non-integer dtype, or an index out of
        range (``"<name> must be indices in [0, bound), got [...]"``).

    Examples
    --------
    >>> from skbpr.utils.validation import check_indices
    >>> check_indices([2, 0], "users", 3)
    array([2, 0])
    >>> check_indices([1, 5], "users", 3)
    Traceback (most recent call last):
    ...
    skbpr.utils.validation.InvalidParameterError: users must be indices in [0, 3), got [5]
    """
    array = np.asarray(values)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise invalid(name, "a 1-D array of indices", array, shown=f"shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise invalid(name, f"of length {length} (one entry per positive)", array, shown=f"shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise invalid(name, "integer indices", array, shown=f"dtype {array.dtype}")
    # bounds in the given dtype: casting first turns uint64 2**64 - 1 into -1
    bad = array[(array < 0) | (array >= bound)]
    if bad.size:
        raise invalid(name, f"indices in [0, {bound})", examples(bad))
    return array.astype(np.int64, copy=False)
