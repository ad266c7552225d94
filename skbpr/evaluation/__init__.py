"""Evaluation: ranking metrics and scorers, beyond-accuracy metrics, model comparisons, and per-user splitters.

:mod:`skbpr.evaluation.metrics` (with :mod:`~skbpr.evaluation.beyond` and
:mod:`~skbpr.evaluation.compare`) and :mod:`skbpr.evaluation.splitters`; users
import them as :mod:`skbpr.metrics` and :mod:`skbpr.model_selection`.
"""
