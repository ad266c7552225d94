"""scikit-learn scorers of ranking metrics: :class:`RankingScorer` and its factories."""

from __future__ import annotations

from typing import Any

from skbpr.evaluation.metrics import evaluate_metric
from skbpr.evaluation.names import cutoff_name, parse_metric

__all__ = [
    "RankingScorer",
    "auc_scorer",
    "hit_rate_scorer",
    "implicit_auc_scorer",
    "make_ranking_scorer",
    "map_scorer",
    "mrr_scorer",
    "ndcg_scorer",
    "precision_scorer",
    "recall_scorer",
]

_EVALUATE_KWARGS = frozenset({"exclude_train", "chunk_size", "n_sampled_negatives", "random_state", "item_vectors"})


class RankingScorer:
    """Scorer ``(estimator, X, y=None) -> float`` for one ranking metric.

    Usable as ``scoring=`` in scikit-learn model selection; greater is
    better for every metric. Build it with :func:`make_ranking_scorer`.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import RankingScorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = RankingScorer("mrr", exclude_train=False)
    >>> scorer
    make_ranking_scorer('mrr', exclude_train=False)
    >>> round(scorer(model, test), 4)
    0.5833
    """

    def __init__(self, metric: str, **kwargs: Any) -> None:
        parse_metric(metric)
        unknown = sorted(set(kwargs) - _EVALUATE_KWARGS)
        if unknown:
            raise TypeError(f"unexpected scorer argument(s) {unknown}; allowed are {sorted(_EVALUATE_KWARGS)}")
        self.metric = metric
        self.kwargs = dict(kwargs)

    def __call__(self, estimator: Any, X: Any, y: Any = None) -> float:
        return evaluate_metric(estimator, X, self.metric, **self.kwargs)

    def __repr__(self) -> str:
        args = [repr(self.metric)]
        args += [f"{key}={value!r}" for key, value in sorted(self.kwargs.items())]
        return f"make_ranking_scorer({', '.join(args)})"


def make_ranking_scorer(metric: str, **kwargs: Any) -> RankingScorer:
    """Scorer for ``metric`` (e.g. ``"ndcg@10"``), forwarding ``kwargs``
    (``exclude_train``, ``chunk_size``, ``n_sampled_negatives``,
    ``random_state``) to :func:`evaluate`.

    A scorer is called as ``scorer(estimator, X)``, the signature
    scikit-learn's ``scoring=`` expects.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import make_ranking_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = make_ranking_scorer("hit_rate@1")
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer(metric, **kwargs)


def ndcg_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for NDCG@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import ndcg_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = ndcg_scorer(k=2)
    >>> scorer
    make_ranking_scorer('ndcg@2')
    >>> round(scorer(model, test), 4)
    0.877
    """
    return RankingScorer(cutoff_name("ndcg", k), **kwargs)


def precision_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for precision@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import precision_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = precision_scorer(k=2)
    >>> scorer(model, test)
    0.5
    """
    return RankingScorer(cutoff_name("precision", k), **kwargs)


def recall_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for recall@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import recall_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = recall_scorer(k=1)
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer(cutoff_name("recall", k), **kwargs)


def map_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for MAP@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import map_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = map_scorer(k=2)
    >>> round(scorer(model, test), 4)
    0.8333
    """
    return RankingScorer(cutoff_name("map", k), **kwargs)


def hit_rate_scorer(k: int = 10, **kwargs: Any) -> RankingScorer:
    """Scorer for hit_rate@k.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import hit_rate_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = hit_rate_scorer(k=2)
    >>> scorer(model, test)
    1.0
    """
    return RankingScorer(cutoff_name("hit_rate", k), **kwargs)


def auc_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the full-catalogue AUC.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import auc_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = auc_scorer()
    >>> round(scorer(model, test), 4)
    0.6667
    """
    return RankingScorer("auc", **kwargs)


def mrr_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the mean reciprocal rank.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import PopularityRecommender
    >>> from skbpr.metrics import mrr_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = mrr_scorer()
    >>> round(scorer(model, test), 4)
    0.8333
    """
    return RankingScorer("mrr", **kwargs)


def implicit_auc_scorer(**kwargs: Any) -> RankingScorer:
    """Scorer for the AUC against held-out implicit negatives.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr import Interactions, PopularityRecommender
    >>> from skbpr.metrics import implicit_auc_scorer
    >>> train = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 1]])
    >>> test = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    >>> shown = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    >>> held_out = Interactions.from_matrices(test, negatives=shown)
    >>> model = PopularityRecommender().fit(train)
    >>> scorer = implicit_auc_scorer()
    >>> scorer(model, held_out)
    0.5
    """
    return RankingScorer("implicit_auc", **kwargs)
