"""Compare fitted recommenders on the same held-out users: means, bootstrap intervals, paired tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from skbpr.evaluation.beyond import catalogue_value, item_counts
from skbpr.evaluation.metrics import evaluate_lists_of, prepare_evaluation
from skbpr.evaluation.names import DEFAULT_METRICS, MetricName, parse_metrics
from skbpr.evaluation.ranking import ListResults
from skbpr.utils.validation import check_choice, check_number, invalid

__all__ = ["COMPARISON_COLUMNS", "compare_models", "correct_p_values", "paired_p_value"]

#: The columns of :func:`compare_models`' table, in order.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "model",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "n_users",
    "diff",
    "p_value",
    "p_corrected",
)


def correct_p_values(p_values: Any, method: str | None) -> np.ndarray:
    """Family-wise corrected p-values (``"holm"``, ``"bonferroni"`` or ``None``); NaN entries are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.metrics import correct_p_values
    >>> correct_p_values([0.01, 0.04, 0.03, np.nan], "holm")
    array([0.03, 0.06, 0.06,  nan])
    >>> correct_p_values([0.01, 0.04, 0.03], "bonferroni")
    array([0.03, 0.12, 0.09])
    """
    check_choice(method, "correction", ("holm", "bonferroni", None))
    p = np.asarray(p_values, dtype=np.float64)
    out = p.copy()
    known = np.flatnonzero(~np.isnan(p))
    m = len(known)
    if method is None or m == 0:
        return out
    if method == "bonferroni":
        out[known] = np.minimum(p[known] * m, 1.0)
        return out
    order = known[np.argsort(p[known], kind="stable")]
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(stepped, 1.0)
    return out


def _check_models(models: Any, baseline: Any) -> tuple[list[str], str]:
    if not isinstance(models, Mapping):
        raise invalid("models", "a dict of names to fitted recommenders", models, shown=type(models).__name__)
    names = list(models)
    if not names:
        raise invalid("models", "a dict of at least one fitted recommender", models)
    if any(not isinstance(name, str) for name in names):
        raise invalid("models", "a dict keyed by model names (strings)", names)
    if baseline is None:
        return names, names[0]
    if baseline not in models:
        raise invalid("baseline", f"one of the models {tuple(names)}", baseline)
    return names, baseline


def _evaluated_users(estimator: Any, X: Any, exclude_train: bool) -> np.ndarray:
    test = sp.csr_matrix(X.positives).astype(bool)
    if exclude_train:
        test = test > sp.csr_matrix(estimator.train_positives_).astype(bool)
    return np.flatnonzero(np.diff(test.indptr) > 0)


def _bootstrap(
    statistic: Any, data: tuple[np.ndarray, ...], n_bootstrap: int, confidence: float, seed: int, bias_corrected: bool
) -> tuple[float, float]:
    n = len(data[0])
    result = stats.bootstrap(
        data,
        statistic,
        n_resamples=n_bootstrap,
        batch=max(1, 2**22 // n),  # resamples at once: bounds the (batch, n) arrays
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    if bias_corrected:
        bias = float(np.mean(result.bootstrap_distribution)) - float(statistic(data[0]))
        low, high = low - bias, high - bias
    return low, high


def compare_models(
    models: Mapping[str, Any],
    X: Any,
    *,
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    baseline: str | None = None,
    test: str = "wilcoxon",
    correction: str | None = "holm",
    n_bootstrap: int = 1000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    exclude_train: bool = True,
    item_vectors: Any = None,
    chunk_size: int = 1024,
) -> pd.DataFrame:
    """Compare fitted recommenders on the same held-out users, with intervals and paired tests.

    Each model is evaluated once (:func:`~skbpr.metrics.evaluate`'s single
    ranking pass); per model and metric the table gives the mean over users,
    a percentile bootstrap confidence interval over users
    (:func:`scipy.stats.bootstrap`), and against the baseline the mean
    difference, the paired test's p-value on the per-user values
    (:func:`scipy.stats.wilcoxon` or :func:`scipy.stats.ttest_rel`) and that
    p-value corrected over all the comparisons of the table.

    Parameters
    ----------
    models : dict of str to fitted recommender
        The models, by name, all fitted on the same items and evaluated on
        the same users of ``X``.
    X : Interactions or sparse matrix of shape (n_users, n_items)
        Held-out positives, as :func:`~skbpr.metrics.evaluate` takes them.
    metrics : str or sequence of str
        Metric names (accuracy and beyond-accuracy), each cutoff no larger
        than the catalogue.
    baseline : str, optional
        The model the others are tested against (default the first).
    test : {"wilcoxon", "ttest"}, default="wilcoxon"
        The paired test: Wilcoxon signed-rank (``scipy.stats.wilcoxon``, pairs
        with a zero difference dropped) or paired t-test
        (``scipy.stats.ttest_rel``), two-sided, over the users where both
        values are defined.
    correction : {"holm", "bonferroni", None}, default="holm"
        Family-wise correction over every p-value of the table.
    n_bootstrap : int, default=1000
        Bootstrap resamples of the users for the confidence intervals.
    confidence_level : float, default=0.95
        Level of the intervals.
    random_state : int, Generator or None
        Seed of the bootstrap resampling.
    exclude_train, item_vectors, chunk_size
        As in :func:`~skbpr.metrics.evaluate`.

    Returns
    -------
    pandas.DataFrame
        One row per model and metric, columns ``model``, ``metric``, ``mean``,
        ``ci_low``, ``ci_high``, ``n_users`` (users where the metric is
        defined), ``diff`` (mean of the per-user differences with the
        baseline, on the users where both are defined), ``p_value`` and
        ``p_corrected`` (NaN for the baseline). ``coverage@k`` and
        ``gini@k`` have no per-user values: their interval resamples the
        users' lists, shifted by the bootstrap estimate of the bias (a
        resample repeats some lists and misses others, so it covers less of
        the catalogue than the lists themselves), ``diff`` is
        the difference of the values and they get no p-value.

    Raises
    ------
    ValueError
        Before any evaluation: a baseline that is not a model, models
        evaluated on different users (fitted on other training positives
        or other data), an unknown metric, a cutoff larger than the
        catalogue, ``item_vectors`` with the wrong number of rows.

    Examples
    --------
    >>> from skbpr import HybridBPR, PopularityRecommender
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.metrics import compare_models
    >>> from skbpr.model_selection import train_test_split
    >>> train, test = train_test_split(make_interactions(200, 80, 3000, random_state=0), random_state=0)
    >>> models = {
    ...     "popularity": PopularityRecommender().fit(train),
    ...     "bpr": HybridBPR(16, epochs=10, random_state=0, n_threads=1, device="cpu").fit(train),
    ... }
    >>> table = compare_models(models, test, metrics=["ndcg@10", "coverage@10"], random_state=0)
    >>> list(table.columns)
    ['model', 'metric', 'mean', 'ci_low', 'ci_high', 'n_users', 'diff', 'p_value', 'p_corrected']
    >>> table[["model", "metric"]].values.tolist()
    [['popularity', 'ndcg@10'], ['popularity', 'coverage@10'], ['bpr', 'ndcg@10'], ['bpr', 'coverage@10']]
    """
    names, baseline = _check_models(models, baseline)
    check_choice(test, "test", ("wilcoxon", "ttest"))
    check_choice(correction, "correction", ("holm", "bonferroni", None))
    n_bootstrap = check_number(n_bootstrap, "n_bootstrap", integer=True, low=1)
    confidence_level = check_number(confidence_level, "confidence_level", low=0, high=1, low_open=True, high_open=True)
    if isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(2**32))
    else:
        seed = check_number(random_state, "random_state", integer=True, low=0, allow_none=True)
    if not isinstance(metrics, str):
        metrics = list(metrics)
    parsed = parse_metrics(metrics)

    # Every check of every model before the first ranking pass.
    users = None
    for name in names:
        estimator, data, _ = prepare_evaluation(
            models[name], X, metrics=metrics, exclude_train=exclude_train, item_vectors=item_vectors, all_cutoffs=True
        )
        evaluated = _evaluated_users(estimator, data, exclude_train)
        if users is None:
            users, first = evaluated, name
        elif not np.array_equal(users, evaluated):
            raise ValueError(
                f"models: {name!r} is evaluated on {len(evaluated)} users of X and {first!r} on {len(users)}, "
                f"{len(np.setxor1d(users, evaluated))} of them not shared: the models must be fitted on the "
                "same training positives (the same split) to be compared on the same users"
            )

    results: dict[str, ListResults] = {
        name: evaluate_lists_of(
            models[name],
            X,
            metrics=metrics,
            exclude_train=exclude_train,
            item_vectors=item_vectors,
            chunk_size=chunk_size,
        )
        for name in names
    }
    rows = []
    for i, name in enumerate(names):
        for j, (metric, m) in enumerate(dict(parsed).items()):
            seed_ij = None if seed is None else seed + 7919 * i + j
            rows.append(_row(name, metric, m, results, baseline, test, n_bootstrap, confidence_level, seed_ij))
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    table["p_corrected"] = correct_p_values(table["p_value"].to_numpy(), correction)
    return table


def _row(
    name: str,
    metric: str,
    parsed: MetricName,
    results: dict[str, ListResults],
    baseline: str,
    test: str,
    n_bootstrap: int,
    confidence: float,
    seed: int | None,
) -> dict[str, Any]:
    mine, base = results[name], results[baseline]
    row: dict[str, Any] = {"model": name, "metric": metric, "diff": np.nan, "p_value": np.nan}
    if not parsed.per_user:
        lists, n_items = mine.lists[parsed.k], mine.n_items
        row["mean"] = mine.catalogue[metric]
        row["n_users"] = len(mine.users)

        def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
            return catalogue_value(parsed.base, item_counts(lists, n_items, idx.astype(np.int64)))

        # A resample repeats some users' lists and misses others, which lowers coverage: the percentile
        # interval is shifted by the bootstrap estimate of that bias (mean of the resamples - the value).
        row["ci_low"], row["ci_high"] = _interval(
            statistic, np.arange(len(mine.users)), n_bootstrap, confidence, seed, bias_corrected=True
        )
        if name != baseline:
            row["diff"] = mine.catalogue[metric] - base.catalogue[metric]
        return row
    values = mine.per_user[metric]
    defined = values[~np.isnan(values)]
    row["mean"] = float(defined.mean()) if len(defined) else np.nan
    row["n_users"] = len(defined)
    row["ci_low"], row["ci_high"] = _interval(np.mean, defined, n_bootstrap, confidence, seed)
    if name != baseline:
        other = base.per_user[metric]
        both = ~np.isnan(values) & ~np.isnan(other)
        a, b = values[both], other[both]
        if len(a):
            row["diff"] = float(np.mean(a - b))
            row["p_value"] = paired_p_value(a, b, test)
    return row


def _interval(
    statistic: Any,
    sample: np.ndarray,
    n_bootstrap: int,
    confidence: float,
    seed: int | None,
    bias_corrected: bool = False,
) -> tuple:
    if len(sample) < 2 or np.all(sample == sample[0]):
        value = float(np.mean(sample)) if len(sample) and statistic is np.mean else np.nan
        if statistic is not np.mean and len(sample):
            value = float(statistic(sample[None, :])[0])
        return value, value  # every resample gives the same value
    low, high = _bootstrap(statistic, (sample,), n_bootstrap, confidence, seed, bias_corrected)
    return float(low), float(high)


def paired_p_value(a: np.ndarray, b: np.ndarray, test: str) -> float:
    """Two-sided p-value of the paired ``test`` (``"wilcoxon"`` or ``"ttest"``) of ``a`` against ``b``.

    1.0 when every pair is equal (scipy has no p-value then: no evidence of a difference).

    Examples
    --------
    >>> import numpy as np
    >>> from skbpr.evaluation.compare import paired_p_value
    >>> round(paired_p_value(np.array([0.5, 0.7, 0.9, 0.4]), np.array([0.4, 0.5, 0.6, 0.3]), "ttest"), 4)
    0.0354
    """
    if np.all(a == b):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(a, b).pvalue)
    return float(stats.ttest_rel(a, b).pvalue)
