from __future__ import annotations

import warnings

import numpy as np
import pytest

from skbpr.datasets import make_interactions
from skbpr.interactions import Interactions


@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_interactions(1000, 500, 20000, random_state=0)


def _top_share(counts: np.ndarray, fraction: float = 0.1) -> float:
    counts = np.sort(counts)[::-1]
    return counts[: max(1, int(fraction * counts.size))].sum() / counts.sum()


def _gap_ratio(matrix: np.ndarray, feature: np.ndarray, rng: np.random.Generator) -> float:
    """How far apart the mean residual profiles of the two groups are,
    relative to random groups of the same sizes (about 1 for noise)."""
    residual = matrix - matrix.mean(axis=0)

    def gap(mask: np.ndarray) -> float:
        return float(np.linalg.norm(residual[mask].mean(axis=0) - residual[~mask].mean(axis=0)))

    return gap(feature) / np.mean([gap(rng.permutation(feature)) for _ in range(20)])


def test_shapes_and_names(data: Interactions) -> None:
    assert (data.n_users, data.n_items) == (1000, 500)
    assert abs(data.n_positives - 20000) < 0.05 * 20000
    assert data.n_negatives > 0
    assert data.user_features.shape == (1000, 10)
    assert data.item_features.shape == (500, 10)
    assert list(data.user_feature_names[:2]) == ["user_feature_0", "user_feature_1"]
    assert list(data.item_feature_names[-1:]) == ["item_feature_9"]
    assert set(np.unique(data.user_features.data)) == {1.0}


@pytest.mark.parametrize("shape", [(100, 50, 500), (300, 200, 3000), (5000, 2000, 100000), (1000, 1000, 100000)])
def test_target_positive_count(shape: tuple[int, int, int]) -> None:
    positives = make_interactions(*shape, random_state=3).positives
    assert positives.shape == shape[:2]
    assert abs(positives.nnz - shape[2]) <= 0.1 * shape[2]


def test_negatives_disjoint_from_positives() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overlap would warn "positives win"
        data = make_interactions(2000, 800, 40000, negative_rate=1.0, random_state=1)
    pos, neg = data.positives, data.negatives
    assert neg.nnz > 0.2 * pos.nnz
    assert pos.multiply(neg).nnz == 0
    for matrix in (pos, neg):  # rows sorted, no duplicates
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        same_row = rows[1:] == rows[:-1]
        assert (np.diff(matrix.indices)[same_row] > 0).all()


def test_negative_rate_zero_gives_no_negatives() -> None:
    assert make_interactions(200, 100, 1000, negative_rate=0.0, random_state=0).n_negatives == 0


def test_deterministic_under_random_state() -> None:
    a = make_interactions(300, 120, 3000, random_state=7)
    b = make_interactions(300, 120, 3000, random_state=7)
    c = make_interactions(300, 120, 3000, random_state=8)
    assert a.equals(b)
    assert not a.equals(c)
    d = make_interactions(300, 120, 3000, random_state=np.random.RandomState(7))
    e = make_interactions(300, 120, 3000, random_state=np.random.RandomState(7))
    assert d.equals(e)
    f = make_interactions(300, 120, 3000, random_state=np.random.default_rng(7))
    assert f.n_positives > 0


def test_popularity_skew() -> None:
    skewed_data = make_interactions(2000, 1000, 40000, popularity_skew=1.2, random_state=0)
    flat_data = make_interactions(2000, 1000, 40000, popularity_skew=0.0, random_state=0)
    skewed, flat = skewed_data.positives, flat_data.positives
    skewed_share = _top_share(np.asarray(skewed.sum(axis=0)).ravel())
    flat_share = _top_share(np.asarray(flat.sum(axis=0)).ravel())
    assert skewed_share > 0.45
    assert flat_share < 0.25
    # negatives are exposures too: they lean towards popular items
    negatives, flat_neg = skewed_data.negatives, flat_data.negatives
    assert _top_share(np.asarray(negatives.sum(axis=0)).ravel()) > 1.2 * _top_share(
        np.asarray(flat_neg.sum(axis=0)).ravel()
    )


def _pair_gap(matrix: np.ndarray, features: np.ndarray) -> float:
    """Mean residual cosine of rows agreeing on all ``features`` columns minus
    that of rows agreeing on at most one."""
    residual = matrix - matrix.mean(axis=0)
    norms = np.linalg.norm(residual, axis=1) + 1e-12
    cosine = (residual @ residual.T) / np.outer(norms, norms)
    upper = np.triu_indices(matrix.shape[0], 1)
    agree = (features[:, None, :] == features[None, :, :]).sum(axis=2)[upper]
    cosine = cosine[upper]
    return float(cosine[agree == features.shape[1]].mean() - cosine[agree <= 1].mean())


def test_informative_user_features_shape_the_positives(data: Interactions) -> None:
    pos = data.positives.toarray()
    rng = np.random.default_rng(0)
    feats = data.user_features.toarray().astype(bool)
    gaps = [_gap_ratio(pos, feats[:, j], rng) for j in range(10)]
    # columns 0-3 are informative, 4-9 pure noise
    assert min(gaps[:4]) > 1.5 * max(gaps[4:])
    assert max(gaps[4:]) < 1.5


@pytest.mark.parametrize("side", ["user", "item"])
def test_rows_sharing_informative_features_share_positives(data: Interactions, side: str) -> None:
    pos = data.positives.toarray()
    matrix, feats = (pos, data.user_features) if side == "user" else (pos.T, data.item_features)
    feats = feats.toarray()
    informative = _pair_gap(matrix, feats[:, :4])
    noise = _pair_gap(matrix, feats[:, 4:8])
    assert informative > 0.01
    assert informative > 3 * abs(noise)


def test_feature_counts() -> None:
    data = make_interactions(
        200, 100, 1000, n_user_features=0, n_item_features=3, n_informative_features=5, random_state=0
    )
    assert data.user_features is None and data.user_feature_names is None
    assert data.item_features.shape == (100, 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_items": 2.5}, "n_items"),
        ({"n_interactions": -1}, "n_interactions"),
        ({"n_users": 10, "n_items": 10, "n_interactions": 50}, "n_interactions"),
        ({"n_components": 0}, "n_components"),
        ({"n_user_features": -1}, "n_user_features"),
        ({"popularity_skew": -0.1}, "popularity_skew"),
        ({"negative_rate": 1.5}, "negative_rate"),
        ({"noise": "high"}, "noise"),
        ({"exposure_signal": True}, "exposure_signal"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_invalid_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make_interactions(**kwargs)


def test_target_count_is_reached_on_a_larger_case() -> None:
    data = make_interactions(5000, 2000, 100000, random_state=0)
    assert 90000 < data.n_positives < 110000


# ---------------------------------------------------------------- planted structure, end to end


@pytest.fixture(scope="module")
def exposure_split():
    """Exposure carries signal: what a user is shown and skips says something."""
    from skbpr.model_selection import train_test_split

    data = make_interactions(1000, 300, 30000, exposure_signal=1.0, negative_rate=1.0, noise=0.25, random_state=0)
    return train_test_split(data, test_size=0.2, random_state=0)


@pytest.mark.slow
def test_hybrid_bpr_beats_popularity_on_planted_factors(exposure_split):
    from skbpr import HybridBPR, PopularityRecommender
    from skbpr.metrics import ndcg_at_k

    train, test = exposure_split
    popularity = ndcg_at_k(PopularityRecommender().fit(train), test)
    model = ndcg_at_k(HybridBPR(32, epochs=15, random_state=0, n_threads=1).fit(train), test)
    assert model > popularity + 0.02


def _split_negatives(train, test, fraction: float, seed: int):
    """Hold out a share of the implicit negatives too, so they can be scored unseen."""
    import scipy.sparse as sp

    neg = train.negatives.tocoo()
    held = np.random.default_rng(seed).random(neg.nnz) < fraction

    def part(mask):
        return sp.csr_matrix((neg.data[mask], (neg.row[mask], neg.col[mask])), shape=neg.shape)

    def rebuild(c, negatives):
        return Interactions(
            c.pos_users, c.pos_items, n_users=c.n_users, n_items=c.n_items, negatives=negatives,
            user_features=c.user_features, item_features=c.item_features,
        )  # fmt: skip

    return rebuild(train, part(~held)), rebuild(test, part(held))


@pytest.mark.slow
def test_implicit_negatives_beat_uniform_when_exposure_carries_signal(exposure_split):
    """Mixed negatives rank held-out positives above held-out skipped items better than uniform."""
    from skbpr import HybridBPR
    from skbpr.metrics import evaluate

    train, test = _split_negatives(*exposure_split, fraction=0.3, seed=0)
    scores = {
        mode: evaluate(
            HybridBPR(32, epochs=15, negatives=mode, random_state=0, n_threads=1).fit(train),
            test,
            metrics=["implicit_auc", "auc"],
        )
        for mode in ("uniform", "mixed")
    }
    assert scores["mixed"]["implicit_auc"] > scores["uniform"]["implicit_auc"] + 0.008, scores
    assert scores["mixed"]["auc"] > scores["uniform"]["auc"], scores
