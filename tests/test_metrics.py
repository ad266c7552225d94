from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import check_scoring, ndcg_score, roc_auc_score

from skbpr.evaluation import chunk_metrics
from skbpr.metrics import (
    auc_score,
    auc_scorer,
    evaluate,
    evaluate_scores,
    evaluate_scores_per_user,
    hit_rate_at_k,
    hit_rate_scorer,
    implicit_auc_score,
    make_ranking_scorer,
    map_at_k,
    map_scorer,
    mrr_score,
    mrr_scorer,
    ndcg_at_k,
    ndcg_scorer,
    precision_at_k,
    precision_scorer,
    recall_at_k,
    recall_scorer,
)

ALL_KINDS = ("precision", "recall", "ndcg", "map", "hit_rate")


# ---------------------------------------------------------------------------
# brute-force reference: one user at a time, straight from the definitions
# ---------------------------------------------------------------------------


def reference_user(scores, test, exclude, negatives, ks):
    """Metrics of one user; None when the user has no test positive.

    Ranking: non-excluded items by score descending, ties by lower index.
    """
    n = len(scores)
    allowed = [i for i in range(n) if not exclude[i]]
    pos = {i for i in allowed if test[i]}
    if not pos:
        return None
    order = sorted(allowed, key=lambda i: (-scores[i], i))
    rank = {item: r for r, item in enumerate(order, start=1)}
    out = {}
    for k in ks:
        top = order[:k]
        hits = sum(1 for i in top if i in pos)
        out[f"precision@{k}"] = hits / k
        out[f"recall@{k}"] = hits / len(pos)
        out[f"hit_rate@{k}"] = float(hits > 0)
        dcg = sum(1 / math.log2(r + 1) for r, i in enumerate(top, 1) if i in pos)
        idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(pos), k) + 1))
        out[f"ndcg@{k}"] = dcg / idcg
        seen, ap = 0, 0.0
        for r, i in enumerate(top, 1):
            if i in pos:
                seen += 1
                ap += seen / r
        out[f"map@{k}"] = ap / min(len(pos), k)
    out["mrr"] = 1 / min(rank[i] for i in pos)

    def pair_auc(negs):
        if not negs:
            return math.nan
        total = 0.0
        for p in pos:
            for q in negs:
                if scores[p] > scores[q]:
                    total += 1
                elif scores[p] == scores[q]:
                    total += 0.5
        return total / (len(pos) * len(negs))

    out["auc"] = pair_auc([i for i in allowed if not test[i]])
    if negatives is not None:
        out["implicit_auc"] = pair_auc([i for i in allowed if negatives[i] and not test[i]])
    return out


def reference(scores, test, exclude, negatives, ks):
    users, rows = [], []
    for u in range(scores.shape[0]):
        res = reference_user(
            scores[u],
            test[u],
            exclude[u],
            None if negatives is None else negatives[u],
            ks,
        )
        if res is not None:
            users.append(u)
            rows.append(res)
    return np.array(users, dtype=np.int64), rows


def metric_names(ks, implicit=False):
    names = [f"{kind}@{k}" for k in ks for kind in ALL_KINDS] + ["mrr", "auc"]
    return names + (["implicit_auc"] if implicit else [])


def fn_of(scores):
    table = torch.as_tensor(scores)
    return lambda users: table[users]


def assert_matches_reference(scores, test, exclude, negatives, ks, **kw):
    names = metric_names(ks, implicit=negatives is not None)
    users, got = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        test_negatives=None if negatives is None else sp.csr_matrix(negatives),
        metrics=names,
        **kw,
    )
    ref_users, ref_rows = reference(scores, test, exclude, negatives, ks)
    np.testing.assert_array_equal(users, ref_users)
    for name in names:
        expected = np.array([row[name] for row in ref_rows], dtype=float)
        np.testing.assert_allclose(got[name], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# hypothesis strategies
# ---------------------------------------------------------------------------


SMALL_INTS = st.integers(0, 3)


@st.composite
def problems(draw, values=SMALL_INTS):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    shape = (n_users, n_items)
    scores = draw(hnp.arrays(np.float64, shape, elements=values))
    test = draw(hnp.arrays(np.bool_, shape))
    exclude = draw(hnp.arrays(np.bool_, shape))
    negatives = draw(hnp.arrays(np.bool_, shape))
    ks = draw(st.lists(st.integers(1, 14), min_size=1, max_size=3, unique=True))
    chunk = draw(st.integers(1, 7))
    return scores, test, exclude, negatives, ks, chunk


@settings(max_examples=60, derandomize=True, deadline=None)
@given(problems())
def test_matches_bruteforce_with_integer_ties(problem):
    scores, test, exclude, negatives, ks, chunk = problem
    assert_matches_reference(scores, test, exclude, negatives, ks, chunk_size=chunk)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(problems(values=st.sampled_from([-math.inf, -1.5, 0.0, 2.0, math.inf])))
def test_matches_bruteforce_with_infinite_scores(problem):
    scores, test, exclude, negatives, ks, chunk = problem
    assert_matches_reference(scores, test, exclude, negatives, ks, chunk_size=chunk)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(problems())
def test_auc_matches_sklearn_roc_auc(problem):
    scores, test, exclude, _, _, chunk = problem
    users, got = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        metrics="auc",
        chunk_size=chunk,
    )
    for u, value in zip(users, got["auc"], strict=True):
        keep = ~exclude[u]
        labels = test[u][keep]
        if labels.all():
            assert math.isnan(value)
        else:
            assert value == pytest.approx(roc_auc_score(labels, scores[u][keep]))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 15))
def test_ndcg_matches_sklearn_without_ties(seed, k):
    rng = np.random.default_rng(seed)
    n_users, n_items = rng.integers(1, 6), rng.integers(2, 14)
    scores = rng.standard_normal((n_users, n_items))
    test = rng.random((n_users, n_items)) < 0.3
    exclude = rng.random((n_users, n_items)) < 0.3
    users, got = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        metrics=[f"ndcg@{k}"],
        chunk_size=2,
    )
    for u, value in zip(users, got[f"ndcg@{k}"], strict=True):
        keep = ~exclude[u]
        if keep.sum() < 2:
            continue
        expected = ndcg_score(test[u][keep][None].astype(float), scores[u][keep][None], k=k)
        assert value == pytest.approx(expected)


# ---------------------------------------------------------------------------
# behaviour on fixed data
# ---------------------------------------------------------------------------


def random_problem(seed=0, n_users=40, n_items=30, tie_range=None):
    rng = np.random.default_rng(seed)
    if tie_range is None:
        scores = rng.standard_normal((n_users, n_items))
    else:
        scores = rng.integers(0, tie_range, (n_users, n_items)).astype(float)
    test = rng.random((n_users, n_items)) < 0.15
    exclude = (rng.random((n_users, n_items)) < 0.3) & ~test
    negatives = (rng.random((n_users, n_items)) < 0.2) & ~test
    test[:3] = False  # users without test positives
    return scores, test, exclude, negatives


def test_chunk_size_does_not_change_results():
    scores, test, exclude, negatives = random_problem(tie_range=4)
    kw = dict(
        exclude=sp.csr_matrix(exclude),
        test_negatives=sp.csr_matrix(negatives),
        metrics=metric_names([1, 5, 10], implicit=True),
    )
    u1, small = evaluate_scores_per_user(fn_of(scores), sp.csr_matrix(test), chunk_size=1, **kw)
    u2, large = evaluate_scores_per_user(fn_of(scores), sp.csr_matrix(test), chunk_size=10_000, **kw)
    np.testing.assert_array_equal(u1, u2)
    for name in small:
        np.testing.assert_array_equal(small[name], large[name])


def test_users_without_test_positives_are_skipped_and_not_scored():
    scores, test, exclude, _ = random_problem()
    test[5] = exclude[5]  # only excluded positives: skipped as well
    seen = []

    def score_fn(users):
        seen.append(users.clone())
        return torch.as_tensor(scores)[users]

    users, values = evaluate_scores_per_user(
        score_fn, sp.csr_matrix(test), exclude=sp.csr_matrix(exclude), chunk_size=7
    )
    expected = np.flatnonzero((test & ~exclude).any(axis=1))
    np.testing.assert_array_equal(users, expected)
    np.testing.assert_array_equal(torch.cat(seen).numpy(), expected)
    assert {0, 1, 2, 5}.isdisjoint(users.tolist())
    mean = evaluate_scores(fn_of(scores), sp.csr_matrix(test), exclude=sp.csr_matrix(exclude))
    for name, arr in values.items():
        assert mean[name] == pytest.approx(arr.mean())


def test_excluded_items_never_counted():
    # excluded items carry the best scores (even NaN): results must equal
    # those of the problem with those items deleted from the catalogue
    scores, test, exclude, negatives = random_problem(seed=3)
    exclude[:, :5] = True
    scores[:, :4] = 1e9
    scores[:, 4] = np.nan
    negatives[:, :5] = True
    names = metric_names([3, 10], implicit=True)
    _, got = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        test_negatives=sp.csr_matrix(negatives),
        metrics=names,
    )
    _, cut = evaluate_scores_per_user(
        fn_of(scores[:, 5:]),
        sp.csr_matrix(test[:, 5:]),
        exclude=sp.csr_matrix(exclude[:, 5:]),
        test_negatives=sp.csr_matrix(negatives[:, 5:]),
        metrics=names,
    )
    for name in names:
        np.testing.assert_allclose(got[name], cut[name])


def test_test_positive_also_excluded_is_dropped():
    scores = np.array([[3.0, 2.0, 1.0, 0.0]])
    test = sp.csr_matrix(np.array([[1, 0, 1, 0]]))
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0]]))
    res = evaluate_scores(fn_of(scores), test, exclude=exclude, metrics=["recall@1", "mrr", "auc"])
    # ranking is [1, 2, 3]; the only positive left is item 2, at rank 2
    assert res == {"recall@1": 0.0, "mrr": 0.5, "auc": 0.5}


def test_tie_rule_lower_index_first():
    scores = np.zeros((1, 5))
    test = sp.csr_matrix(np.array([[0, 0, 1, 0, 1]]))
    res = evaluate_scores(
        fn_of(scores),
        test,
        metrics=["precision@3", "mrr", "map@2", "auc", "hit_rate@2"],
    )
    assert res["precision@3"] == pytest.approx(1 / 3)
    assert res["mrr"] == pytest.approx(1 / 3)
    assert res["map@2"] == 0.0
    assert res["hit_rate@2"] == 0.0
    assert res["auc"] == 0.5


def test_metric_values_by_hand():
    # ranking: items 0..5 in score order; positives at ranks 2 and 5
    scores = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    test = sp.csr_matrix(np.array([[0, 1, 0, 0, 1, 0]]))
    res = evaluate_scores(
        fn_of(scores),
        test,
        metrics=["ndcg@3", "precision@3", "recall@3", "map@5", "mrr", "auc"],
    )
    assert res["precision@3"] == pytest.approx(1 / 3)
    assert res["recall@3"] == pytest.approx(1 / 2)
    assert res["ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert res["map@5"] == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert res["mrr"] == pytest.approx(1 / 2)
    assert res["auc"] == pytest.approx((3 + 1) / 8)


def test_implicit_auc_by_hand():
    scores = np.array([[5.0, 4.0, 3.0, 3.0, 1.0, 0.0]])
    test = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 1]]))
    # item 5 is both a test positive and a test negative: it stays a positive
    negatives = sp.csr_matrix(np.array([[1, 0, 1, 0, 1, 1]]))
    res = evaluate_scores(fn_of(scores), test, test_negatives=negatives, metrics=["implicit_auc"])
    # positives 4, 3, 0 against negatives 5, 3, 1: (2 + 1.5 + 0) / 9
    assert res["implicit_auc"] == pytest.approx(3.5 / 9)
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]]))
    res = evaluate_scores(
        fn_of(scores),
        test,
        exclude=exclude,
        test_negatives=negatives,
        metrics=["implicit_auc", "neg_auc"],
    )
    assert res["implicit_auc"] == pytest.approx(3.5 / 6)
    assert res["neg_auc"] == res["implicit_auc"]


def test_implicit_auc_skips_users_without_negatives():
    scores = np.array([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    test = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]]))
    negatives = sp.csr_matrix(np.array([[0, 0, 1], [0, 0, 0]]))
    users, per_user = evaluate_scores_per_user(fn_of(scores), test, test_negatives=negatives, metrics=["implicit_auc"])
    np.testing.assert_array_equal(users, [0, 1])
    assert per_user["implicit_auc"][0] == 1.0
    assert math.isnan(per_user["implicit_auc"][1])
    res = evaluate_scores(fn_of(scores), test, test_negatives=negatives, metrics=["implicit_auc"])
    assert res["implicit_auc"] == 1.0


def test_metric_name_parsing():
    scores, test, exclude, _ = random_problem(seed=5)
    kw = dict(exclude=sp.csr_matrix(exclude))
    canonical = evaluate_scores(fn_of(scores), sp.csr_matrix(test), metrics=["ndcg@5", "hit_rate@3"], **kw)
    aliases = evaluate_scores(
        fn_of(scores),
        sp.csr_matrix(test),
        metrics=[" NDCG@5", "ndcg_at_5", "HitRate@3", "hit_rate_at_3"],
        **kw,
    )
    assert aliases[" NDCG@5"] == aliases["ndcg_at_5"] == canonical["ndcg@5"]
    assert aliases["HitRate@3"] == aliases["hit_rate_at_3"] == canonical["hit_rate@3"]
    single = evaluate_scores(fn_of(scores), sp.csr_matrix(test), metrics="mrr", **kw)
    assert list(single) == ["mrr"]


def test_no_evaluable_user_gives_nan_with_warning():
    scores = np.ones((2, 3))
    test = sp.csr_matrix((2, 3))
    with pytest.warns(RuntimeWarning, match="no user"):
        res = evaluate_scores(fn_of(scores), test, metrics=["auc", "ndcg@2"])
    assert all(math.isnan(v) for v in res.values())


def test_integer_scores_and_gpu_free_default_device():
    scores = np.array([[3, 1, 2]], dtype=np.int64)
    test = sp.csr_matrix(np.array([[0, 0, 1]]))
    res = evaluate_scores(fn_of(scores), test, metrics=["mrr"], device="cpu")
    assert res["mrr"] == 0.5


# ---------------------------------------------------------------------------
# sampled negatives
# ---------------------------------------------------------------------------


def sampled(scores, test, exclude, n, seed, chunk_size=1024):
    return evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        metrics=metric_names([1, 5]),
        n_sampled_negatives=n,
        random_state=seed,
        chunk_size=chunk_size,
    )


def test_sampled_mode_is_deterministic_and_chunk_independent():
    scores, test, exclude, _ = random_problem(seed=7, n_users=30, n_items=60)
    _, a = sampled(scores, test, exclude, 5, 42)
    _, b = sampled(scores, test, exclude, 5, 42)
    _, c = sampled(scores, test, exclude, 5, 42, chunk_size=4)
    _, d = sampled(scores, test, exclude, 5, 43)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[name], c[name])
    assert any(not np.array_equal(a[n], d[n], equal_nan=True) for n in a)


def test_sampled_mode_with_all_candidates_equals_full_catalogue():
    scores, test, exclude, _ = random_problem(seed=8, tie_range=3)
    n_candidates = (~(test | exclude)).sum(axis=1).max()
    _, full = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        metrics=metric_names([1, 5]),
    )
    for n in (n_candidates, n_candidates + 3, 10_000):
        _, got = sampled(scores, test, exclude, int(n), 0)
        for name in full:
            np.testing.assert_allclose(got[name], full[name])


def test_sampled_mode_never_samples_excluded_or_test_items():
    # excluded items score highest, test positives next, candidates lowest:
    # any sampled excluded/test item would push AUC below 1
    scores, test, exclude, _ = random_problem(seed=9, n_users=50, n_items=80)
    scores = np.where(exclude, 100.0, np.where(test, 10.0, 0.0))
    users, got = evaluate_scores_per_user(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        metrics=["auc", "mrr", "precision@1"],
        n_sampled_negatives=7,
        random_state=1,
    )
    assert len(users) > 0
    np.testing.assert_array_equal(got["auc"], 1.0)
    np.testing.assert_array_equal(got["mrr"], 1.0)


def test_sample_negatives_counts_support_and_uniformity():
    rng = np.random.default_rng(0)
    n_rows, n_items, n = 4000, 12, 3
    disallowed = torch.zeros((n_rows, n_items), dtype=torch.bool)
    disallowed[:, [0, 5, 6]] = True
    disallowed[:10, 2:] = True  # rows with a single candidate: item 1
    mask = chunk_metrics.sample_negatives(disallowed, n, rng)
    assert not (mask & disallowed).any()
    counts = mask.sum(dim=1)
    assert (counts[:10] == 1).all() and (counts[10:] == n).all()
    freq = mask[10:].float().mean(dim=0).numpy()
    allowed = np.setdiff1d(np.arange(n_items), [0, 5, 6])
    np.testing.assert_allclose(freq[allowed], n / len(allowed), atol=0.03)


def test_sampled_mode_matches_reference_on_the_sampled_set():
    scores, test, exclude, _ = random_problem(seed=11, tie_range=3)
    users, got = sampled(scores, test, exclude, 4, 5)
    # recompute the same sample, then treat the unsampled candidates as excluded
    not_candidate = torch.from_numpy((test | exclude)[users])
    mask = chunk_metrics.sample_negatives(not_candidate, 4, np.random.default_rng(5)).numpy()
    full_exclude = exclude.copy()
    full_exclude[users] |= ~(mask | (test & ~exclude)[users])
    ref_users, rows = reference(scores, test, full_exclude, None, [1, 5])
    np.testing.assert_array_equal(users, ref_users)
    for name in got:
        np.testing.assert_allclose(got[name], [r[name] for r in rows])


# ---------------------------------------------------------------------------
# argument errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric, match",
    [
        ("foo", "'foo'"),
        ("ndcg", "'ndcg' needs a cutoff"),
        ("ndcg@0", "'ndcg@0'"),
        ("recall@-2", "'recall@-2'"),
        ("auc@5", "'auc@5'"),
        ("mrr@10", "'mrr@10'"),
        ("precision@x", "'precision@x'"),
        ("precision@2.5", "'precision@2.5'"),
        ("bleu@10", "'bleu@10'"),
    ],
)
def test_bad_metric_names(metric, match):
    test = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match=match):
        evaluate_scores(fn_of(np.zeros((3, 3))), test, metrics=[metric])
    with pytest.raises(ValueError, match=match):
        make_ranking_scorer(metric)


def test_argument_errors():
    test = sp.csr_matrix(np.eye(3))
    fn = fn_of(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="metric names"):
        evaluate_scores(fn, test, metrics=[5])
    with pytest.raises(ValueError, match="empty"):
        evaluate_scores(fn, test, metrics=[])
    with pytest.raises(TypeError, match="test"):
        evaluate_scores(fn, np.eye(3))
    with pytest.raises(TypeError, match="score_fn"):
        evaluate_scores(None, test)
    with pytest.raises(ValueError, match="exclude"):
        evaluate_scores(fn, test, exclude=sp.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="test_negatives"):
        evaluate_scores(fn, test, metrics=["implicit_auc"])
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_scores(fn, test, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        evaluate_scores(fn, test, chunk_size=2.5)
    with pytest.raises(ValueError, match="n_sampled_negatives"):
        evaluate_scores(fn, test, n_sampled_negatives=0)
    with pytest.raises(TypeError, match="random_state"):
        evaluate_scores(fn, test, n_sampled_negatives=2, random_state="x")
    with pytest.raises(ValueError, match="device"):
        evaluate_scores(fn, test, device="nodevice")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            evaluate_scores(fn, test, device="cuda")
    with pytest.raises(ValueError, match="shape"):
        evaluate_scores(lambda u: torch.zeros(len(u), 2), test)
    with pytest.raises(TypeError, match="torch.Tensor"):
        evaluate_scores(lambda u: np.zeros((len(u), 3)), test)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(lambda u: torch.full((len(u), 3), math.nan), test)


# ---------------------------------------------------------------------------
# estimator-facing API and scorers
# ---------------------------------------------------------------------------


class FixedRecommender:
    """Stand-in fitted recommender over a fixed score matrix."""

    def __init__(self, scores, train):
        self.scores = np.asarray(scores)
        self.train = train

    def fit(self, X=None, y=None):
        self.train_positives_ = sp.csr_matrix(self.train)
        self.device_ = torch.device("cpu")
        return self

    def get_params(self, deep=True):
        return {"scores": self.scores, "train": self.train}

    def user_item_scores(self, users):
        return torch.as_tensor(self.scores)[users]


class HeldOut:
    def __init__(self, positives, negatives=None):
        self.positives = positives
        self.negatives = negatives


@pytest.fixture
def fitted():
    scores, test, exclude, negatives = random_problem(seed=21)
    est = FixedRecommender(scores, sp.csr_matrix(exclude)).fit()
    X = HeldOut(sp.csr_matrix(test), sp.csr_matrix(negatives))
    return est, X, scores, test, exclude, negatives


def test_evaluate_uses_train_as_exclude(fitted):
    est, X, scores, test, exclude, negatives = fitted
    names = metric_names([5], implicit=True)
    got = evaluate(est, X, metrics=names)
    expected = evaluate_scores(
        fn_of(scores),
        sp.csr_matrix(test),
        exclude=sp.csr_matrix(exclude),
        test_negatives=sp.csr_matrix(negatives),
        metrics=names,
    )
    assert got == expected
    no_exclude = evaluate(est, X, metrics=["auc"], exclude_train=False)
    assert no_exclude["auc"] == pytest.approx(
        evaluate_scores(fn_of(scores), sp.csr_matrix(test), metrics=["auc"])["auc"]
    )


def test_evaluate_drops_train_items_from_negatives():
    scores = np.array([[3.0, 2.0, 1.0, 0.0]])
    est = FixedRecommender(scores, sp.csr_matrix(np.array([[1, 0, 0, 0]]))).fit()
    X = HeldOut(
        sp.csr_matrix(np.array([[0, 1, 0, 0]])),
        sp.csr_matrix(np.array([[1, 0, 0, 1]])),
    )
    for exclude_train in (True, False):
        res = evaluate(est, X, metrics=["implicit_auc"], exclude_train=exclude_train)
        assert res["implicit_auc"] == 1.0
    with pytest.raises(ValueError, match="X.negatives"):
        evaluate(est, HeldOut(X.positives), metrics=["implicit_auc"])


def test_convenience_functions(fitted):
    est, X, *_ = fitted
    all_ = evaluate(
        est,
        X,
        metrics=["auc", "mrr", "ndcg@3", "precision@3", "recall@3", "map@3", "hit_rate@3", "implicit_auc", "ndcg@10"],
    )
    assert auc_score(est, X) == all_["auc"]
    assert mrr_score(est, X) == all_["mrr"]
    assert implicit_auc_score(est, X) == all_["implicit_auc"]
    assert ndcg_at_k(est, X) == all_["ndcg@10"]
    assert ndcg_at_k(est, X, k=3) == all_["ndcg@3"]
    assert precision_at_k(est, X, k=3) == all_["precision@3"]
    assert recall_at_k(est, X, k=3) == all_["recall@3"]
    assert map_at_k(est, X, k=3) == all_["map@3"]
    assert hit_rate_at_k(est, X, k=3) == all_["hit_rate@3"]
    with pytest.raises(ValueError, match="k"):
        ndcg_at_k(est, X, k=0)
    with pytest.raises(TypeError, match="k"):
        recall_at_k(est, X, k=2.0)


def test_estimator_errors(fitted):
    est, X, *_ = fitted
    with pytest.raises(TypeError, match="user_item_scores"):
        evaluate(object(), X)
    with pytest.raises(ValueError, match="not fitted"):
        evaluate(FixedRecommender(est.scores, est.train), X)
    with pytest.raises(TypeError, match="X"):
        evaluate(est, object())
    with pytest.raises(ValueError, match="shape"):
        evaluate(est, HeldOut(sp.csr_matrix((2, 2))))


def test_pipeline_transforms_X(fitted):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    est, X, *_ = fitted
    swapped = HeldOut(X.negatives, X.positives)
    flip = FunctionTransformer(lambda Z: HeldOut(Z.negatives, Z.positives))
    pipe = Pipeline([("flip", flip), ("rec", est)])
    assert evaluate(pipe, swapped) == evaluate(est, X)


def test_scorers_values_repr_and_pickle(fitted):
    est, X, *_ = fitted
    scorers = {
        "ndcg": ndcg_scorer(k=5),
        "auc": auc_scorer(),
        "precision": precision_scorer(),
        "recall": recall_scorer(k=3),
        "map": map_scorer(k=4),
        "mrr": mrr_scorer(),
        "hit": hit_rate_scorer(k=2),
        "sampled": make_ranking_scorer("ndcg@5", n_sampled_negatives=5, random_state=0),
    }
    assert repr(scorers["ndcg"]) == "make_ranking_scorer('ndcg@5')"
    assert repr(scorers["sampled"]) == ("make_ranking_scorer('ndcg@5', n_sampled_negatives=5, random_state=0)")
    assert scorers["auc"](est, X) == auc_score(est, X)
    assert scorers["ndcg"](est, X, None) == ndcg_at_k(est, X, k=5)
    assert scorers["recall"](est, X) == recall_at_k(est, X, k=3)
    for name, scorer in scorers.items():
        clone = pickle.loads(pickle.dumps(scorer))
        assert repr(clone) == repr(scorer)
        assert clone(est, X) == scorer(est, X), name
    multi = check_scoring(est, scoring=scorers)
    values = multi(est, X)
    assert values == {name: s(est, X) for name, s in scorers.items()}
    with pytest.raises(TypeError, match="bogus"):
        make_ranking_scorer("auc", bogus=1)
