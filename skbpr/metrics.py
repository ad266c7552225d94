"""Full-catalogue ranking metrics and scorers for implicit-feedback recommenders.

Gathered here, where users import them, from their homes:
:mod:`skbpr.evaluation.names` (metric names), :mod:`skbpr.evaluation.ranking`
(metrics of scores, with the protocol), :mod:`skbpr.evaluation.metrics`
(metrics of a fitted recommender), :mod:`skbpr.evaluation.beyond`
(beyond-accuracy metrics of the lists), :mod:`skbpr.evaluation.compare`
(comparisons with intervals and paired tests) and
:mod:`skbpr.evaluation.scorers` (scikit-learn scorers).
"""

from skbpr.evaluation.compare import compare_models, correct_p_values
from skbpr.evaluation.metrics import (
    arp_at_k,
    auc_score,
    coverage_at_k,
    evaluate,
    gini_at_k,
    hit_rate_at_k,
    ild_at_k,
    implicit_auc_score,
    map_at_k,
    mrr_score,
    ndcg_at_k,
    novelty_at_k,
    precision_at_k,
    recall_at_k,
)
from skbpr.evaluation.names import BEYOND_ACCURACY, DEFAULT_METRICS, MetricName, parse_metric
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
    "BEYOND_ACCURACY",
    "DEFAULT_METRICS",
    "MetricName",
    "RankingScorer",
    "arp_at_k",
    "auc_scorer",
    "auc_score",
    "compare_models",
    "correct_p_values",
    "coverage_at_k",
    "evaluate",
    "evaluate_scores",
    "evaluate_scores_per_user",
    "gini_at_k",
    "hit_rate_at_k",
    "hit_rate_scorer",
    "ild_at_k",
    "implicit_auc_score",
    "implicit_auc_scorer",
    "make_ranking_scorer",
    "map_at_k",
    "map_scorer",
    "mrr_score",
    "mrr_scorer",
    "ndcg_at_k",
    "ndcg_scorer",
    "novelty_at_k",
    "parse_metric",
    "precision_at_k",
    "precision_scorer",
    "recall_at_k",
    "recall_scorer",
]
