"""HybridBPR inside scikit-learn's model selection and Optuna, run for real."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline

from skbpr import HybridBPR, InteractionsEncoder
from skbpr.datasets import make_interactions
from skbpr.metrics import auc_scorer, ndcg_at_k, ndcg_scorer, precision_scorer
from skbpr.model_selection import PerUserKFold, train_test_split

FAST = {"n_components": 8, "epochs": 3, "batch_size": 512, "random_state": 0}
SCORING = {"ndcg@10": ndcg_scorer(10), "auc": auc_scorer()}


@pytest.fixture(scope="module")
def data():
    return make_interactions(300, 120, 4000, exposure_signal=2.0, random_state=0)


@pytest.fixture(scope="module")
def split(data):
    return train_test_split(data, test_size=0.2, random_state=0)


def _grid_search(train, n_jobs: int) -> GridSearchCV:
    grid = {"item_features_mode": ["identity", "both"], "negatives": ["uniform", "mixed", "implicit"]}
    search = GridSearchCV(
        HybridBPR(**FAST),
        grid,
        cv=PerUserKFold(3, random_state=0),
        scoring=SCORING,
        refit="ndcg@10",
        n_jobs=n_jobs,
    )
    return search.fit(train)


@pytest.mark.slow
def test_grid_search_parallel_matches_serial(split):
    train, test = split
    parallel = _grid_search(train, n_jobs=2)
    serial = _grid_search(train, n_jobs=1)
    results = parallel.cv_results_
    assert len(results["params"]) == 6
    for key in ("mean_test_ndcg@10", "std_test_ndcg@10", "mean_test_auc", "rank_test_ndcg@10", "split2_test_auc"):
        assert key in results
    assert np.all(np.isfinite(results["mean_test_ndcg@10"]))
    assert np.all((results["mean_test_auc"] > 0.5) & (results["mean_test_auc"] <= 1.0))
    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_allclose(results["mean_test_ndcg@10"], serial.cv_results_["mean_test_ndcg@10"], rtol=1e-6)
    np.testing.assert_allclose(results["mean_test_auc"], serial.cv_results_["mean_test_auc"], rtol=1e-6)
    assert parallel.best_params_["item_features_mode"] in ("identity", "both")
    best = int(np.argmax(results["mean_test_ndcg@10"]))
    assert parallel.best_index_ == best
    assert np.isfinite(parallel.score(test)) and parallel.score(test) > 0


def _record_threads(path: str):
    def callback(estimator, epoch, logs):
        with open(path, "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "threads": torch.get_num_threads()}) + "\n")

    return callback


@pytest.mark.slow
def test_parallel_workers_use_one_torch_thread_each(split, tmp_path):
    train, _ = split
    log = tmp_path / "threads.jsonl"
    search = GridSearchCV(
        HybridBPR(**{**FAST, "epochs": 1}, callbacks=[_record_threads(str(log))]),
        {"loss": ["bpr", "hinge"]},
        cv=PerUserKFold(2, random_state=0),
        scoring=ndcg_scorer(10),
        n_jobs=2,
        refit=False,
    )
    search.fit(train)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    workers = [r for r in records if r["pid"] != os.getpid()]
    assert len(workers) == 4
    assert {r["threads"] for r in workers} == {1}


@pytest.mark.slow
def test_randomized_search_and_cross_validate(split):
    train, _ = split
    search = RandomizedSearchCV(
        HybridBPR(**FAST),
        {"learning_rate": stats.loguniform(0.01, 0.3), "alpha": stats.loguniform(1e-4, 1e-1)},
        n_iter=3,
        cv=PerUserKFold(3, random_state=0),
        scoring=SCORING,
        refit="auc",
        n_jobs=2,
        random_state=0,
    ).fit(train)
    assert len(search.cv_results_["params"]) == 3
    assert 0.01 <= search.best_params_["learning_rate"] <= 0.3
    assert np.all(np.isfinite(search.cv_results_["mean_test_auc"]))

    scores = cross_validate(
        HybridBPR(**FAST),
        train,
        cv=PerUserKFold(3, random_state=0),
        scoring={"ndcg@10": ndcg_scorer(10), "p@5": precision_scorer(5)},
        n_jobs=2,
    )
    assert scores["test_ndcg@10"].shape == (3,)
    assert np.all(np.isfinite(scores["test_p@5"]))
    single = cross_val_score(HybridBPR(**FAST), train, cv=PerUserKFold(3, random_state=0))
    np.testing.assert_allclose(single, scores["test_ndcg@10"], rtol=1e-6)


def _events(data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The generated data as an events table with ratings and an item feature table."""
    pos = data.positives.tocoo()
    neg = data.negatives.tocoo()
    events = pd.DataFrame(
        {
            "user_id": np.r_[pos.row, neg.row] + 1000,
            "item_id": np.r_[pos.col, neg.col] + 5000,
            "rating": np.r_[np.full(pos.nnz, 5.0), np.full(neg.nnz, 2.0)],
        }
    )
    dense = data.item_features.toarray()
    items = pd.DataFrame(
        {"genre": np.argmax(dense[:, :4], axis=1).astype(str), "weight": dense[:, 4]},
        index=pd.Index(np.arange(data.n_items) + 5000, name="item_id"),
    )
    return events, items


@pytest.mark.slow
def test_pipeline_on_events_frame_tuned_by_grid_search(data):
    events, items = _events(data)
    positives = events[events["rating"] >= 4].reset_index(drop=True)
    pipe = make_pipeline(InteractionsEncoder(rating_col="rating", threshold=4, item_features=items), HybridBPR(**FAST))
    search = GridSearchCV(
        pipe,
        {"hybridbpr__item_features_mode": ["identity", "features", "both"]},
        cv=PerUserKFold(3, random_state=0),
        scoring=SCORING,
        refit="ndcg@10",
        n_jobs=2,
    )
    search.fit(positives, groups=positives["user_id"])
    assert np.all(np.isfinite(search.cv_results_["mean_test_ndcg@10"]))
    assert len(search.cv_results_["params"]) == 3
    model = search.best_estimator_[-1]
    # every item of the feature table is in the id space, with or without events
    assert model.n_items_ == len(items)

    # a new item seen only in the feature table is scored from its features
    fresh = items.iloc[:1].copy()
    fresh.index = pd.Index([999_999], name="item_id")
    pipe2 = make_pipeline(
        InteractionsEncoder(rating_col="rating", threshold=4, item_features=pd.concat([items, fresh])),
        HybridBPR(**{**FAST, "item_features_mode": "features"}),
    ).fit(positives)
    encoder, fitted = pipe2[0], pipe2[-1]
    new_index = int(np.flatnonzero(encoder.item_ids_ == 999_999)[0])
    twin_index = int(np.flatnonzero(encoder.item_ids_ == items.index[0])[0])
    scores = fitted.predict(np.array([[0, new_index], [0, twin_index]]))
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)


def test_early_stopping_restores_best_epoch(split):
    train, valid = split
    model = HybridBPR(**{**FAST, "epochs": 12, "learning_rate": 0.3}, patience=2, eval_every=1)
    model.fit(train, eval_set=valid)
    values = [h["val_ndcg@10"] for h in model.history_]
    assert len(values) == len(model.history_) <= 12
    best = int(np.argmax(values))
    assert model.best_epoch_ == model.history_[best]["epoch"]
    assert ndcg_at_k(model, valid) == pytest.approx(values[best], abs=1e-6)
    if len(values) < 12:  # stopped early: the last two evaluations did not improve
        assert max(values[-2:]) <= values[best]


def test_validation_fraction_without_eval_set(split):
    train, _ = split
    model = HybridBPR(**{**FAST, "epochs": 3}, validation_fraction=0.2, eval_metric="auc").fit(train)
    assert all("val_auc" in h for h in model.history_)
    assert model.train_positives_.nnz < train.n_positives


@pytest.mark.slow
def test_optuna_search_cv(split):
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, test = split
    search = integration.OptunaSearchCV(
        HybridBPR(**FAST),
        {
            "learning_rate": optuna.distributions.FloatDistribution(0.01, 0.3, log=True),
            "loss": optuna.distributions.CategoricalDistribution(["bpr", "warp"]),
        },
        cv=PerUserKFold(3, random_state=0),
        scoring=ndcg_scorer(10),
        n_trials=3,
        random_state=0,
    )
    search.fit(train)
    assert len(search.trials_) == 3
    assert search.best_params_["loss"] in ("bpr", "warp")
    assert np.isfinite(search.score(test))


@pytest.mark.slow
def test_optuna_study_in_sqlite_resumes(split, tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, _ = split
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def objective(trial):
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "item_features_mode": trial.suggest_categorical("item_features_mode", ["identity", "both"]),
        }
        scores = cross_val_score(
            HybridBPR(**FAST, **params), train, cv=PerUserKFold(3, random_state=0), scoring=ndcg_scorer(10)
        )
        return float(scores.mean())

    def study():
        return optuna.create_study(
            storage=storage,
            study_name="skbpr",
            load_if_exists=True,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=0),
        )

    first = study()
    first.optimize(objective, n_trials=2)
    del first  # an interrupted session: only the SQLite file remains
    resumed = study()
    assert len(resumed.trials) == 2
    resumed.optimize(objective, n_trials=2)
    assert len(study().trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in resumed.trials)
    assert np.isfinite(resumed.best_value)
