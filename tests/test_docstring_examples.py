"""The Examples sections of the public docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "skbpr.base",
    "skbpr.baseline",
    "skbpr.callbacks",
    "skbpr.data.folds",
    "skbpr.datasets.lastfm",
    "skbpr.datasets.movielens",
    "skbpr.datasets.synthetic",
    "skbpr.estimator",
    "skbpr.interactions",
    "skbpr.metrics",
    "skbpr.model_selection",
    "skbpr.plotting",
    "skbpr.preprocessing",
    "skbpr.utils.signature",
    "skbpr.utils.validation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (see output)"
