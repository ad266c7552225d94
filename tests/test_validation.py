"""The one validation vocabulary: messages, exception types, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from skbpr.utils.validation import (
    InvalidParameterError,
    check_bool,
    check_choice,
    check_indices,
    check_number,
)


def test_error_is_both_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0, {"integer": True, "low": 1}, "x must be an integer >= 1, got 0"),
        (True, {"integer": True, "low": 1}, "x must be an integer >= 1, got True"),
        (2.0, {"integer": True}, "x must be an integer, got 2.0"),
        (0.0, {"low": 0, "low_open": True}, "x must be a finite number > 0, got 0.0"),
        (float("nan"), {}, "x must be a finite number, got nan"),
        (1.0, {"low": 0, "high": 1, "low_open": True, "high_open": True}, r"x must be a finite number in \(0, 1\)"),
        ("3", {"integer": True, "allow_none": True}, "x must be an integer or None, got '3'"),
    ],
)
def test_check_number_rejects(value, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        check_number(value, "x", **kwargs)


def test_check_number_accepts_and_converts():
    assert check_number(np.int32(3), "x", integer=True, low=1) == 3
    assert type(check_number(np.int32(3), "x", integer=True)) is int
    assert check_number(1, "x", low=0, high=1) == 1.0
    assert check_number(None, "x", allow_none=True) is None


def test_check_choice_and_bool():
    assert check_choice(np.str_("b"), "mode", ("a", "b")) == "b"
    with pytest.raises(InvalidParameterError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_choice("c", "mode", ("a", "b"))
    with pytest.raises(InvalidParameterError, match="mode must be one of"):
        check_choice(np.array(["a"]), "mode", ("a", "b"))
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(InvalidParameterError, match="flag must be True or False, got 1"):
        check_bool(1, "flag")


def test_check_indices():
    assert check_indices(np.uint8(2), "users", 3).tolist() == [2]
    with pytest.raises(InvalidParameterError, match=r"users must be indices in \[0, 3\), got \[18446744073709551615\]"):
        check_indices(np.array([2**64 - 1], dtype=np.uint64), "users", 3)
    with pytest.raises(InvalidParameterError, match="users must be integer indices, got dtype float64"):
        check_indices([0.0], "users", 3)
    with pytest.raises(InvalidParameterError, match=r"users must be of length 2 .*got shape \(1,\)"):
        check_indices([0], "users", 3, length=2)
    with pytest.raises(InvalidParameterError, match=r"users must be a 1-D array of indices, got shape \(1, 1\)"):
        check_indices([[0]], "users", 3)
