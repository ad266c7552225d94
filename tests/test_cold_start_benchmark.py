"""The cold-start benchmark's protocol pieces: the hold-out split, the baselines, the name words."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cold_start.py"


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location("cold_start_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


# 4 users x 5 items
POSITIVES = sp.csr_matrix(
    np.array(
        [
            [1, 1, 0, 0, 1],
            [1, 0, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 0, 0, 1, 1],
        ],
        dtype=np.float32,
    )
)


def test_item_split_holds_out_whole_items(cs) -> None:
    features = sp.csr_matrix(np.eye(5, dtype=np.float32))
    problem = cs.split(POSITIVES, features, "item", seed=3, name="t", desc="t")
    cold = np.flatnonzero(problem.cold_features.sum(axis=0).A1)  # identity features: column = item
    assert cold.size == 1  # 20 % of 5 items
    warm = np.setdiff1d(np.arange(5), cold)
    assert (problem.train.n_users, problem.train.n_items) == (4, 4)
    assert (problem.train.positives.toarray() == POSITIVES.toarray()[:, warm]).all()
    assert (problem.test.toarray() == POSITIVES.toarray()[:, cold]).all()
    assert (problem.train.item_features.toarray() == np.eye(5)[warm]).all()
    assert problem.train.user_features is None


def test_user_split_holds_out_whole_users(cs) -> None:
    features = sp.csr_matrix(np.arange(1, 5, dtype=np.float32)[:, None])
    problem = cs.split(POSITIVES, features, "user", seed=0, name="t", desc="t")
    cold_values = problem.cold_features.toarray().ravel()
    cold = (cold_values - 1).astype(int)
    assert cold.size == 1  # 20 % of 4 users, rounded
    warm = np.setdiff1d(np.arange(4), cold)
    assert (problem.train.positives.toarray() == POSITIVES.toarray()[warm]).all()
    assert (problem.test.toarray() == POSITIVES.toarray()[cold]).all()
    assert (problem.train.user_features.toarray().ravel() == warm + 1).all()


def _problem(cs, side: str, train_features: np.ndarray, cold_features: np.ndarray, test: np.ndarray):
    from skbpr import Interactions

    coo = POSITIVES.tocoo()
    key = "item_features" if side == "item" else "user_features"
    train = Interactions(coo.row, coo.col, n_users=4, n_items=5, **{key: sp.csr_matrix(train_features)})
    return cs.Problem("t", side, "t", train, sp.csr_matrix(cold_features, dtype=np.float32), sp.csr_matrix(test))


def test_item_popularity_by_feature(cs) -> None:
    # item counts: [3, 2, 2, 2, 2]; feature 0 on items 0, 1 (mean 2.5), feature 1 on items 2, 3, 4 (mean 2)
    train_features = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=np.float32)
    cold = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    problem = _problem(cs, "item", train_features, cold, np.ones((4, 4)))
    scores = cs.popularity_scores(problem, by_feature=True)
    # a feature no training item has, or no feature, falls back on the mean count 2.2
    assert scores.shape == (4, 4)
    np.testing.assert_allclose(scores, np.tile([2.5, 2.25, 2.2, 2.2], (4, 1)), rtol=1e-6)
    with pytest.raises(ValueError, match="not available"):
        cs.popularity_scores(problem, by_feature=False)


def test_user_popularity_by_feature(cs) -> None:
    # users 0, 1 have feature 0; users 2, 3 feature 1
    train_features = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    cold = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.float32)
    problem = _problem(cs, "user", train_features, cold, np.ones((3, 5)))
    scores = cs.popularity_scores(problem, by_feature=True)
    share0 = np.array([2, 1, 1, 0, 1]) / 2  # items liked by users 0 and 1
    share1 = np.array([1, 1, 1, 2, 1]) / 2
    counts = np.array([3, 2, 2, 2, 2]) / 4
    np.testing.assert_allclose(scores, np.stack([share0, (share0 + share1) / 2, counts]), rtol=1e-6)
    np.testing.assert_allclose(cs.popularity_scores(problem, by_feature=False), np.tile([3, 2, 2, 2, 2], (3, 1)))


def test_name_words_and_none_column(cs) -> None:
    titles = np.array(["The Beatles", "Beatles Tribute", "Björk", "the the", ""], dtype=object)
    matrix, names = cs.name_words(titles, min_items=2)
    assert names.tolist() == ["word=beatles", "word=the"]
    assert matrix.toarray().tolist() == [[1, 1], [1, 0], [0, 0], [0, 1], [0, 0]]
    filled, filled_names = cs.with_none_column(matrix, names)
    assert filled_names.tolist() == ["word=beatles", "word=the", "<none>"]
    assert filled.toarray()[:, 2].tolist() == [0, 0, 1, 0, 1]
    same, same_names = cs.with_none_column(filled, filled_names)
    assert same.shape == filled.shape and same_names.tolist() == filled_names.tolist()


def test_synthetic_run_writes_tables(cs, tmp_path: Path) -> None:
    out = tmp_path / "cold.json"
    systems = ["random", "popularity by feature", "skbpr features"]
    result = cs.main(["--sets", "synthetic-item", "--seeds", "0", "--systems", *systems, "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["summary"] == result["summary"]
    assert [e["system"] for e in saved["summary"]] == systems
    by_system = {e["system"]: e for e in saved["summary"]}
    assert by_system["random"]["n_candidates"] == 80  # 20 % of 400 items
    # features planted by the generator carry the items' factors: far better than chance
    assert by_system["skbpr features"]["ndcg@10"] > by_system["random"]["ndcg@10"] + 0.03
    assert "| synthetic (20 columns) | skbpr features |" in saved["markdown"]
