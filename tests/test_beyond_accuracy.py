"""Beyond-accuracy metrics, per-user results and model comparisons against naive implementations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from skbpr import HybridBPR, Interactions, PopularityRecommender
from skbpr.datasets import make_interactions
from skbpr.metrics import (
    arp_at_k,
    compare_models,
    correct_p_values,
    coverage_at_k,
    evaluate,
    evaluate_scores,
    evaluate_scores_per_user,
    gini_at_k,
    ild_at_k,
    make_ranking_scorer,
    novelty_at_k,
)
from skbpr.model_selection import train_test_split

BEYOND = ("coverage", "gini", "arp", "novelty", "ild")


# ---------------------------------------------------------------------------
# naive reference: one user at a time, straight from the formulas
# ---------------------------------------------------------------------------
def naive_lists(scores, test, train, k):
    """Top-k of each user with a test positive outside train: by score descending, ties by lower index."""
    lists = {}
    for u in range(scores.shape[0]):
        candidates = [i for i in range(scores.shape[1]) if not train[u, i]]
        if not any(test[u, i] for i in candidates):
            continue
        lists[u] = sorted(candidates, key=lambda i: (-scores[u, i], i))[:k]
    return lists


def naive_metrics(lists, train, vectors, n_items):
    n_users = train.shape[0]
    n_i = train.sum(axis=0)
    counts = np.zeros(n_items)
    for items in lists.values():
        for i in items:
            counts[i] += 1
    x = np.sort(counts)
    n = n_items
    gini = sum((2 * (i + 1) - n - 1) * x[i] for i in range(n)) / (n * x.sum())
    arp = np.mean([np.mean([n_i[i] / n_users for i in items]) for items in lists.values()])
    novelty = np.mean([np.mean([-math.log2((n_i[i] + 1) / (n_users + 1)) for i in items]) for items in lists.values()])

    def cos(a, b):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))

    ilds = []
    for items in lists.values():
        pairs = [(a, b) for p, a in enumerate(items) for b in items[p + 1 :]]
        if pairs:
            ilds.append(np.mean([1 - cos(vectors[a], vectors[b]) for a, b in pairs]))
    return {
        "coverage": np.count_nonzero(counts) / n_items,
        "gini": gini,
        "arp": arp,
        "novelty": novelty,
        "ild": np.mean(ilds) if ilds else math.nan,
    }


def problem(seed, n_users=30, n_items=12, dense_train_users=5):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float64)  # many ties
    train = rng.random((n_users, n_items)) < 0.3
    train[:dense_train_users, : n_items - 3] = True  # fewer than k candidates for these users
    test = (rng.random((n_users, n_items)) < 0.25) & ~train
    test[0, n_items - 1] = True
    train[0, n_items - 1] = False
    vectors = rng.integers(0, 2, size=(n_items, 4)).astype(np.float64)  # zero rows likely
    return scores, test, train, vectors


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_beyond_metrics_match_naive_with_ties_and_short_lists(seed, k):
    scores, test, train, vectors = problem(seed)
    torch_scores = torch.from_numpy(scores)
    names = [f"{base}@{k}" for base in BEYOND if k > 1 or base != "ild"]
    got = evaluate_scores(
        lambda users: torch_scores[users],
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(train),
        metrics=names,
        item_vectors=vectors,
        chunk_size=7,
    )
    want = naive_metrics(naive_lists(scores, test, train, k), train, vectors, scores.shape[1])
    for base in BEYOND[: 4 if k == 1 else 5]:
        assert got[f"{base}@{k}"] == pytest.approx(want[base], rel=1e-12), base


def test_ild_of_single_item_lists_is_undefined():
    scores, test, train, vectors = problem(0)
    torch_scores = torch.from_numpy(scores)
    with pytest.warns(RuntimeWarning, match="'ild@1' is undefined for every evaluated user"):
        got = evaluate_scores(
            lambda users: torch_scores[users], sp.csr_matrix(test), exclude=sp.csr_matrix(train), metrics="ild@1",
            item_vectors=vectors,
        )  # fmt: skip
    assert math.isnan(got["ild@1"])


def test_infinite_scores_keep_candidates_in_the_lists():
    # User 0 has items 0 and 1 excluded and scores -inf on items 2..4: its top 3 are 5, 2, 3.
    scores = np.array([[5.0, 4.0, -np.inf, -np.inf, -np.inf, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    train = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    test = np.array([[0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]], dtype=bool)
    torch_scores = torch.from_numpy(scores)
    got = evaluate_scores(
        lambda users: torch_scores[users],
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(train),
        metrics=["coverage@3", "gini@3", "arp@3"],
    )
    want = naive_metrics(naive_lists(scores, test, train, 3), train, np.eye(6), 6)
    assert naive_lists(scores, test, train, 3)[0] == [5, 2, 3]
    assert got == pytest.approx({"coverage@3": want["coverage"], "gini@3": want["gini"], "arp@3": want["arp"]})


def test_metrics_of_the_same_pass_as_accuracy_and_chunk_independent():
    scores, test, train, vectors = problem(7)
    torch_scores = torch.from_numpy(scores)
    calls = []

    def score_fn(users):
        calls.append(len(users))
        return torch_scores[users]

    names = ["ndcg@3", "coverage@3", "novelty@3", "ild@3", "auc"]
    one = evaluate_scores(
        score_fn, sp.csr_matrix(test), exclude=sp.csr_matrix(train), metrics=names, item_vectors=vectors
    )
    n_evaluated = sum(calls)
    assert n_evaluated == len(evaluate_scores_per_user(score_fn, sp.csr_matrix(test), exclude=sp.csr_matrix(train))[0])
    many = evaluate_scores(
        score_fn, sp.csr_matrix(test), exclude=sp.csr_matrix(train), metrics=names, item_vectors=vectors, chunk_size=1
    )
    assert one == pytest.approx(many, rel=1e-12)


def test_item_counts_of_resampled_users_match_a_loop():
    from skbpr.evaluation.beyond import catalogue_value, item_counts

    rng = np.random.default_rng(0)
    lists = rng.integers(0, 9, size=(12, 3))
    lists[2, 2] = lists[5, 1:] = -1  # short lists
    resamples = rng.integers(0, 12, size=(4, 12))
    want = np.zeros((4, 9))
    for r, users in enumerate(resamples):
        for u in users:
            for item in lists[u]:
                if item >= 0:
                    want[r, item] += 1
    got = item_counts(lists, 9, resamples)
    assert got == pytest.approx(want)
    assert item_counts(lists, 9) == pytest.approx(np.bincount(lists[lists >= 0], minlength=9))
    assert catalogue_value("coverage", got) == pytest.approx((want > 0).mean(axis=1))


def test_per_user_reads_a_generator_of_metric_names_once():
    scores, test, train, _ = problem(1)
    torch_scores = torch.from_numpy(scores)
    users, values = evaluate_scores_per_user(
        lambda u: torch_scores[u],
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(train),
        metrics=(m for m in ["arp@3", "mrr"]),
    )
    assert list(values) == ["arp@3", "mrr"] and len(values["mrr"]) == len(users)


def test_estimator_functions_use_training_popularity_and_model_vectors():
    data = make_interactions(60, 25, 280, random_state=0)
    train, test = train_test_split(data, random_state=0)
    model = HybridBPR(8, epochs=2, random_state=0, n_threads=1, device="cpu").fit(train)
    vectors = model.item_representations()[0]
    scores = model.user_item_scores(torch.arange(data.n_users)).numpy()
    lists = naive_lists(scores, test.positives.toarray() > 0, train.positives.toarray() > 0, 5)
    want = naive_metrics(lists, train.positives.toarray() > 0, vectors, data.n_items)
    assert coverage_at_k(model, test, k=5) == pytest.approx(want["coverage"])
    assert gini_at_k(model, test, k=5) == pytest.approx(want["gini"])
    assert arp_at_k(model, test, k=5) == pytest.approx(want["arp"])
    assert novelty_at_k(model, test, k=5) == pytest.approx(want["novelty"])
    assert ild_at_k(model, test, k=5) == pytest.approx(want["ild"])  # the model's item representations
    genres = np.eye(data.n_items)[:, :3]
    assert ild_at_k(model, test, k=5, item_vectors=sp.csr_matrix(genres)) == pytest.approx(
        naive_metrics(lists, train.positives.toarray() > 0, genres, data.n_items)["ild"]
    )
    scorer = make_ranking_scorer("coverage@5")
    assert scorer(model, test) == pytest.approx(want["coverage"])
    assert make_ranking_scorer("ild@5", item_vectors=genres)(model, test) == pytest.approx(
        ild_at_k(model, test, k=5, item_vectors=genres)
    )


# ---------------------------------------------------------------------------
# per-user results
# ---------------------------------------------------------------------------
def test_per_user_frame_has_raw_ids_and_matches_the_means():
    frame = pd.DataFrame({"user": ["ann", "bob", "cy", "ann", "bob", "cy", "cy"], "item": list("xyzzxxy")})
    data = Interactions.from_frame(frame, user_col="user", item_col="item")
    train = data.positives.toarray()
    train[:, 0] = 0  # item x held out for ann, bob and cy
    test = data.positives.toarray() - train
    held_out = Interactions.from_matrices(test, user_ids=data.user_ids)
    model = PopularityRecommender().fit(train)
    per_user = evaluate(model, held_out, metrics=["ndcg@2", "arp@2", "hit_rate@1"], per_user=True)
    assert isinstance(per_user, pd.DataFrame)
    assert per_user.index.name == "user"
    assert list(per_user.index) == [data.user_ids[u] for u in np.flatnonzero(test.sum(axis=1))]
    assert list(per_user.columns) == ["ndcg@2", "arp@2", "hit_rate@1"]
    means = evaluate(model, held_out, metrics=["ndcg@2", "arp@2", "hit_rate@1"])
    assert per_user.mean().to_dict() == pytest.approx(means)
    indices = evaluate(model, test, metrics=["ndcg@2"], per_user=True)
    assert list(indices.index) == list(np.flatnonzero(test.sum(axis=1)))


def test_per_user_refuses_catalogue_metrics_and_non_bool():
    model = PopularityRecommender().fit(np.eye(4))
    with pytest.raises(ValueError, match="'coverage@2' describes all the lists together"):
        evaluate(model, np.eye(4)[::-1], metrics=["ndcg@2", "coverage@2"], per_user=True)
    with pytest.raises(TypeError, match="per_user must be a bool"):
        evaluate(model, np.eye(4)[::-1], per_user="yes")


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    train = np.eye(5)
    test = np.roll(np.eye(5), 1, axis=1)
    model = PopularityRecommender().fit(train)
    with pytest.raises(ValueError, match="unknown metric 'covrage@10'"):
        evaluate(model, test, metrics=["covrage@10"])
    with pytest.raises(
        ValueError, match=r"metrics must be cutoffs no larger than the catalogue of 5 items, got 'gini@6'"
    ):
        evaluate(model, test, metrics=["gini@6"])
    with pytest.raises(
        ValueError, match=r"item_vectors must be a matrix with one row per item \(5 rows\), got shape \(4, 2\)"
    ):
        evaluate(model, test, metrics=["ild@2"], item_vectors=np.ones((4, 2)))
    with pytest.raises(ValueError, match="'ild@2' needs item vectors: pass item_vectors="):
        evaluate(model, test, metrics=["ild@2"])  # popularity has no item representations
    with pytest.raises(ValueError, match="cannot be computed with n_sampled_negatives=3"):
        evaluate(model, test, metrics=["novelty@2"], n_sampled_negatives=3)
    with pytest.raises(ValueError, match="pass train="):
        evaluate_scores(lambda users: torch.zeros(len(users), 5), sp.csr_matrix(test), metrics=["arp@2"])


# ---------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    data = make_interactions(120, 40, 900, random_state=1)
    train, test = train_test_split(data, random_state=1)
    models = {
        "popularity": PopularityRecommender().fit(train),
        "bpr": HybridBPR(8, epochs=3, random_state=0, n_threads=1, device="cpu").fit(train),
        "bpr2": HybridBPR(8, epochs=3, random_state=1, n_threads=1, device="cpu").fit(train),
    }
    return models, train, test


@pytest.mark.parametrize("test_name", ["wilcoxon", "ttest"])
def test_compare_models_p_values_equal_scipy(fitted, test_name):
    models, _, test = fitted
    metrics = ["ndcg@10", "recall@5", "novelty@10", "coverage@10"]
    table = compare_models(
        models, test, metrics=metrics, baseline="bpr", test=test_name, random_state=0, n_bootstrap=200
    )
    assert list(table["model"]) == [m for m in models for _ in metrics]
    per_user = {name: evaluate(model, test, metrics=metrics[:3], per_user=True) for name, model in models.items()}
    scipy_test = stats.wilcoxon if test_name == "wilcoxon" else stats.ttest_rel
    p_values = []
    for row in table.itertuples():
        if row.metric == "coverage@10":
            assert row.mean == pytest.approx(evaluate(models[row.model], test, metrics=["coverage@10"])["coverage@10"])
            assert math.isnan(row.p_value)
            continue
        mine = per_user[row.model][row.metric].to_numpy()
        assert row.mean == pytest.approx(mine.mean())
        assert row.ci_low <= row.mean <= row.ci_high
        if row.model == "bpr":
            assert math.isnan(row.p_value) and math.isnan(row.diff)
            continue
        base = per_user["bpr"][row.metric].to_numpy()
        assert row.diff == pytest.approx((mine - base).mean())
        assert row.p_value == scipy_test(mine, base).pvalue
        p_values.append(row.p_value)
    assert len(p_values) == 6
    m = len(p_values)
    ordered = np.sort(p_values)
    holm = np.minimum(np.maximum.accumulate(ordered * (m - np.arange(m))), 1)
    assert np.sort(table["p_corrected"].dropna().to_numpy()) == pytest.approx(holm)


def test_compare_models_intervals_are_scipy_bootstrap_and_seeded(fitted):
    models, _, test = fitted
    first = compare_models(models, test, metrics=["ndcg@10", "gini@10"], random_state=3, n_bootstrap=300)
    again = compare_models(models, test, metrics=["ndcg@10", "gini@10"], random_state=3, n_bootstrap=300)
    pd.testing.assert_frame_equal(first, again)
    assert (first["ci_low"] < first["ci_high"]).all()
    # the baseline defaults to the first model; no correction leaves the p-values as they are
    plain = compare_models(models, test, metrics=["ndcg@10"], correction=None, n_bootstrap=50, random_state=0)
    assert plain.loc[plain["model"] == "popularity", "p_value"].isna().all()
    assert plain["p_corrected"].equals(plain["p_value"])
    bonferroni = compare_models(models, test, metrics=["ndcg@10"], correction="bonferroni", n_bootstrap=50)
    assert bonferroni["p_corrected"].dropna().to_numpy() == pytest.approx(
        np.minimum(bonferroni["p_value"].dropna().to_numpy() * 2, 1)
    )


def test_correct_p_values_holm_by_hand():
    assert correct_p_values([0.01, 0.04, 0.03, np.nan], "holm") == pytest.approx(
        [0.03, 0.06, 0.06, np.nan], nan_ok=True
    )
    assert correct_p_values([0.5, 0.6], "bonferroni") == pytest.approx([1.0, 1.0])


def test_compare_models_errors_before_any_work(fitted, monkeypatch):
    models, train, test = fitted
    calls = []
    for model in models.values():
        monkeypatch.setattr(
            model, "user_item_scores", lambda users, _f=model.user_item_scores: calls.append(1) or _f(users)
        )
    with pytest.raises(
        ValueError, match=r"baseline must be one of the models \('popularity', 'bpr', 'bpr2'\), got 'als'"
    ):
        compare_models(models, test, baseline="als")
    with pytest.raises(ValueError, match="unknown metric 'ndgc@10'"):
        compare_models(models, test, metrics=["ndcg@10", "ndgc@10"])
    with pytest.raises(ValueError, match="catalogue of 40 items, got 'ndcg@41'"):
        compare_models(models, test, metrics=["ndcg@41"])
    with pytest.raises(ValueError, match=r"item_vectors must be a matrix with one row per item \(40 rows\)"):
        compare_models(models, test, metrics=["ild@5"], item_vectors=np.ones((39, 3)))
    with pytest.raises(ValueError, match="test must be one of"):
        compare_models(models, test, test="mannwhitney")
    with pytest.raises(ValueError, match="correction must be one of"):
        compare_models(models, test, correction="fdr")
    # a model fitted on another split is evaluated on other users
    other_train, _ = train_test_split(make_interactions(120, 40, 900, random_state=1), random_state=2)
    others = dict(models, other=PopularityRecommender().fit(other_train))
    with pytest.raises(ValueError, match="models: 'other' is evaluated on .* users of X and 'popularity' on"):
        compare_models(others, test)
    assert calls == []
