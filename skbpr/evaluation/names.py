"""Metric names: ``"auc"``, ``"ndcg@10"``, ``"recall_at_5"``... parsed into :class:`MetricName`."""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BEYOND_ACCURACY",
    "CATALOGUE_METRICS",
    "DEFAULT_METRICS",
    "MetricName",
    "cutoff_name",
    "parse_metric",
    "parse_metrics",
]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "precision@10", "recall@10", "auc")

#: Metrics of the recommended lists rather than of the hits: ``coverage@k`` and ``gini@k`` describe
#: all the lists together (one value, no per-user value); ``arp@k``, ``novelty@k`` and ``ild@k`` are means
#: over users of a per-user value.
BEYOND_ACCURACY: tuple[str, ...] = ("coverage", "gini", "arp", "novelty", "ild")
CATALOGUE_METRICS: tuple[str, ...] = ("coverage", "gini")

_CUTOFF_METRICS = ("ndcg", "precision", "recall", "map", "hit_rate", *BEYOND_ACCURACY)
_PLAIN_METRICS = ("auc", "mrr", "implicit_auc")
_ALIASES = {"hitrate": "hit_rate", "neg_auc": "implicit_auc"}
_METRIC_RE = re.compile(r"(?P<base>[a-z_]+?)(?:@|_at_)(?P<k>[+-]?\d+)")
_VALID_FORMS = (
    "'auc', 'mrr', 'implicit_auc', 'ndcg@k', 'precision@k', 'recall@k', 'map@k', 'hit_rate@k', "
    "'coverage@k', 'gini@k', 'arp@k', 'novelty@k', 'ild@k'"
)


@dataclass(frozen=True)
class MetricName:
    """A parsed metric name: its base (``"ndcg"``) and cutoff (``10``, or ``None``).

    Examples
    --------
    >>> from skbpr.metrics import parse_metric
    >>> parse_metric("NDCG_at_10")
    MetricName(base='ndcg', k=10)
    >>> parse_metric("hitrate@5").name
    'hit_rate@5'
    """

    base: str
    k: int | None = None

    @property
    def name(self) -> str:
        """The canonical name, ``base@k`` or ``base``."""
        return self.base if self.k is None else f"{self.base}@{self.k}"

    @property
    def beyond_accuracy(self) -> bool:
        """Whether the metric describes the recommended lists (coverage, gini, arp, novelty, ild)."""
        return self.base in BEYOND_ACCURACY

    @property
    def per_user(self) -> bool:
        """Whether the metric has a value per user (all but ``coverage@k`` and ``gini@k``)."""
        return self.base not in CATALOGUE_METRICS


def parse_metric(metric: Any) -> MetricName:
    """Parse a metric name (``"auc"``, ``"ndcg@10"``, ``"recall_at_5"``...).

    Parameters
    ----------
    metric : str
        The name, in any case; ``@k`` or ``_at_k`` gives the cutoff.

    Returns
    -------
    MetricName

    Raises
    ------
    ValueError
        For an unknown name, a missing or invalid cutoff.

    Examples
    --------
    >>> from skbpr.metrics import parse_metric
    >>> parse_metric("auc")
    MetricName(base='auc', k=None)
    """
    if not isinstance(metric, str):
        raise TypeError(f"metric names must be strings, got {metric!r} of type {type(metric).__name__}")
    text = metric.strip().lower()
    match = _METRIC_RE.fullmatch(text)
    if match is not None:
        base = _ALIASES.get(match["base"], match["base"])
        k = int(match["k"])
        if base in _PLAIN_METRICS:
            raise ValueError(f"metric {metric!r}: {base!r} does not take a cutoff; use {base!r}")
        if base not in _CUTOFF_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid forms are {_VALID_FORMS}")
        if k <= 0:
            raise ValueError(f"metric {metric!r}: the cutoff k must be >= 1, got {k}")
        return MetricName(base, k)
    base = _ALIASES.get(text, text)
    if base in _PLAIN_METRICS:
        return MetricName(base)
    if base in _CUTOFF_METRICS:
        raise ValueError(f"metric {metric!r} needs a cutoff, e.g. '{base}@10'")
    if "@" in text:
        raise ValueError(f"metric {metric!r}: the cutoff k must be a positive integer, e.g. 'ndcg@10'")
    raise ValueError(f"unknown metric {metric!r}; valid forms are {_VALID_FORMS}")


def parse_metrics(metrics: Any) -> list[tuple[str, MetricName]]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a metric name or a sequence of names, got {metrics!r}")
    parsed = [(name, parse_metric(name)) for name in metrics]
    if not parsed:
        raise ValueError("metrics must name at least one metric, got an empty sequence")
    return parsed


def cutoff_name(base: str, k: Any) -> str:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be a positive integer, got {k!r}")
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return f"{base}@{int(k)}"
