"""Evaluation: ranking metrics and scorers, and per-user splitters.

:mod:`skbpr.evaluation.metrics` and :mod:`skbpr.evaluation.splitters`; users
import them as :mod:`skbpr.metrics` and :mod:`skbpr.model_selection`.
"""
