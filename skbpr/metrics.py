"""Full-catalogue ranking metrics and scorers for implicit-feedback recommenders.

Gathered here, where users import them, from their homes:
:mod:`skbpr.evaluation.names` (metric names), :mod:`skbpr.evaluation.ranking`
(metrics of scores, with the protocol), :mod:`skbpr.evaluation.metrics`
(metrics of a fitted recommender) and :mod:`skbpr.evaluation.scorers`
(scikit-learn scorers).
"""

from skbpr.evaluation.metrics import (
    auc_score,
    evaluate,
    hit_rate_at_k,
    implicit_auc_score,
    map_at_k,
    mrr_score,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from skbpr.evaluation.names import DEFAULT_METRICS, MetricName, parse_metric
from skbpr.evaluation.ranking import evaluate_scores, evaluate_scores_per_user
from skbpr.evaluation.scorers import (
    RankingScorer,
    auc_scorer,
    hit_rate_scorer,
    implicit_auc_scorer,
    make_ranking_scorer,
    map_scorer,
    mrr_scorer,
    ndcg_scorer,
    precision_scorer,
    recall_scorer,
)

__all__ = [
    "DEFAULT_METRICS",
    "MetricName",
    "RankingScorer",
    "auc_scorer",
    "auc_score",
    "evaluate",
    "evaluate_scores",
    "evaluate_scores_per_user",
    "hit_rate_at_k",
    "hit_rate_scorer",
    "implicit_auc_score",
    "implicit_auc_scorer",
    "make_ranking_scorer",
    "map_at_k",
    "map_scorer",
    "mrr_score",
    "mrr_scorer",
    "ndcg_at_k",
    "ndcg_scorer",
    "parse_metric",
    "precision_at_k",
    "precision_scorer",
    "recall_at_k",
    "recall_scorer",
]
