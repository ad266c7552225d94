"""The Examples sections of the public docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "skbpr.cli.output",
    "skbpr.cli.tune",
    "skbpr.data.datasets.lastfm",
    "skbpr.data.datasets.movielens",
    "skbpr.data.datasets.synthetic",
    "skbpr.data.equality",
    "skbpr.data.events",
    "skbpr.data.folds",
    "skbpr.data.interaction_matrix",
    "skbpr.data.interactions",
    "skbpr.data.positions",
    "skbpr.data.preprocessing",
    "skbpr.distributed.batch",
    "skbpr.distributed.search",
    "skbpr.distributed.tune",
    "skbpr.evaluation.metrics",
    "skbpr.evaluation.names",
    "skbpr.evaluation.ranking",
    "skbpr.evaluation.scorers",
    "skbpr.evaluation.holdout",
    "skbpr.evaluation.splitters",
    "skbpr.models.base",
    "skbpr.models.hybrid",
    "skbpr.models.popularity",
    "skbpr.models.serving",
    "skbpr.tracking.callbacks",
    "skbpr.tracking.candidates",
    "skbpr.tracking.plots",
    "skbpr.tracking.shared_store",
    "skbpr.tracking.stores",
    "skbpr.training.callbacks",
    "skbpr.training.defaults",
    "skbpr.training.weighting",
    "skbpr.utils.files",
    "skbpr.utils.signature",
    "skbpr.utils.validation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (see output)"
