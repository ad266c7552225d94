"""HybridBPR inside scikit-learn's model selection and Optuna, run for real.

Every search below fits real models in real joblib workers (no mocks), on a
small generated data set so that the whole file runs in well under two
minutes on two cores.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline

from skbpr import HybridBPR, InteractionsEncoder
from skbpr.datasets import make_interactions
from skbpr.metrics import auc_scorer, implicit_auc_scorer, ndcg_at_k, ndcg_scorer, precision_scorer
from skbpr.model_selection import PerUserKFold, train_test_split

FAST = {"n_components": 8, "epochs": 3, "batch_size": 512, "random_state": 0}
SCORING = {"ndcg@10": ndcg_scorer(10), "auc": auc_scorer()}
# Feature modes and sampling modes are ordinary hyperparameters: a grid searches them.
GRID = {"item_features_mode": ["identity", "features", "both"], "negatives": ["uniform", "mixed"]}
# Generator arguments shared with the Optuna script run in a separate process.
DATA_ARGS = {"n_item_features": 20, "exposure_signal": 2.0, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    generated = make_interactions(300, 120, 4000, **DATA_ARGS)
    # item_features_mode="features" needs every item to have a feature
    assert np.all(np.diff(generated.item_features.indptr) > 0)
    return generated


@pytest.fixture(scope="module")
def split(data):
    return train_test_split(data, test_size=0.2, random_state=0)


# --------------------------------------------------------------------------
# GridSearchCV on an Interactions container
# --------------------------------------------------------------------------
def _grid_search(train, n_jobs: int) -> GridSearchCV:
    search = GridSearchCV(
        HybridBPR(**FAST),
        GRID,
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
    n_candidates = len(ParameterGrid(GRID))
    assert n_candidates == 6

    expected = {"params", "mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}
    expected |= {f"param_{name}" for name in GRID}
    for metric in SCORING:
        expected |= {f"mean_test_{metric}", f"std_test_{metric}", f"rank_test_{metric}"}
        expected |= {f"split{k}_test_{metric}" for k in range(3)}
    assert set(results) == expected  # no train scores: return_train_score defaults to False
    for key in expected - {"params"}:
        assert np.shape(results[key]) == (n_candidates,), key
    for key in expected:
        if key.startswith(("mean_", "std_", "split")):
            assert np.all(np.isfinite(results[key].astype(float))), key
    assert np.all((results["mean_test_auc"] > 0.5) & (results["mean_test_auc"] <= 1.0))
    assert np.all((results["mean_test_ndcg@10"] > 0) & (results["mean_test_ndcg@10"] <= 1.0))
    assert {tuple(sorted(p.items())) for p in results["params"]} == {
        tuple(sorted(p.items())) for p in ParameterGrid(GRID)
    }

    # best candidate: in the grid, argmax of the refit metric, identical in serial and parallel
    assert parallel.best_params_ in list(ParameterGrid(GRID))
    assert parallel.best_index_ == int(np.argmax(results["mean_test_ndcg@10"]))
    assert parallel.best_params_ == serial.best_params_
    for metric in SCORING:
        for stat in ("mean", "std"):
            key = f"{stat}_test_{metric}"
            np.testing.assert_allclose(results[key], serial.cv_results_[key], rtol=0, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(results[f"rank_test_{metric}"], serial.cv_results_[f"rank_test_{metric}"])

    # the refit model was trained on the whole training part, and scores the held-out part
    best = parallel.best_estimator_
    assert best.train_positives_.nnz == train.n_positives
    assert best.get_params()["item_features_mode"] == parallel.best_params_["item_features_mode"]
    held_out = parallel.score(test)
    assert np.isfinite(held_out) and 0 < held_out <= 1
    assert held_out == pytest.approx(ndcg_at_k(best, test), abs=1e-12)


# --------------------------------------------------------------------------
# threads inside joblib workers
# --------------------------------------------------------------------------
def _record_threads(path: str):
    """An epoch callback appending the process id and torch's thread count to ``path``."""

    def callback(estimator, epoch, logs):
        with open(path, "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "threads": torch.get_num_threads()}) + "\n")

    return callback


def _threads_in_workers(train, log: Path) -> list[dict]:
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
    assert len(records) == 4  # 2 candidates x 2 folds x 1 epoch
    assert all(r["pid"] != os.getpid() for r in records)  # every fit ran in a worker
    return records


@pytest.mark.slow
def test_parallel_workers_do_not_oversubscribe(split, tmp_path):
    train, _ = split
    main_threads = torch.get_num_threads()

    # joblib's loky workers start with OMP_NUM_THREADS = cpu_count // n_jobs (unless the
    # variable is set in the parent), and torch reads it at import: n_threads=None keeps it.
    share = int(os.environ.get("OMP_NUM_THREADS", max(joblib.cpu_count() // 2, 1)))
    records = _threads_in_workers(train, tmp_path / "default.jsonl")
    assert {r["threads"] for r in records} == {share}
    if joblib.cpu_count() <= 2 and "OMP_NUM_THREADS" not in os.environ:
        assert share == 1  # two workers on two cores: one torch thread each

    # an explicit per-worker limit is honoured as well
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        records = _threads_in_workers(train, tmp_path / "limited.jsonl")
    assert {r["threads"] for r in records} == {1}

    assert torch.get_num_threads() == main_threads  # the parent process is left alone


# --------------------------------------------------------------------------
# RandomizedSearchCV and cross_validate
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_randomized_search_over_distributions(split):
    train, test = split
    distributions = {"learning_rate": stats.loguniform(0.01, 0.3), "alpha": stats.loguniform(1e-4, 1e-1)}
    search = RandomizedSearchCV(
        HybridBPR(**FAST),
        distributions,
        n_iter=3,
        cv=PerUserKFold(3, random_state=0),
        scoring=SCORING,
        refit="auc",
        n_jobs=2,
        random_state=0,
    ).fit(train)
    results = search.cv_results_
    assert len(results["params"]) == 3
    assert len({p["learning_rate"] for p in results["params"]}) == 3  # three distinct draws
    assert all(0.01 <= p["learning_rate"] <= 0.3 and 1e-4 <= p["alpha"] <= 0.1 for p in results["params"])
    assert np.all(np.isfinite(results["mean_test_auc"])) and np.all(np.isfinite(results["mean_test_ndcg@10"]))
    assert search.best_index_ == int(np.argmax(results["mean_test_auc"]))
    assert np.isfinite(search.score(test))  # refit="auc": the search scores with the AUC scorer


@pytest.mark.slow
def test_cross_validate_multi_metric(split):
    train, _ = split
    scores = cross_validate(
        HybridBPR(**FAST),
        train,
        cv=PerUserKFold(3, random_state=0),
        scoring={"ndcg@10": ndcg_scorer(10), "p@5": precision_scorer(5), "auc": auc_scorer()},
        return_train_score=False,
        n_jobs=2,
    )
    assert set(scores) == {"fit_time", "score_time", "test_ndcg@10", "test_p@5", "test_auc"}
    for key, values in scores.items():
        assert values.shape == (3,) and np.all(np.isfinite(values)), key
    # scoring=None falls back to HybridBPR.score, which is NDCG@10
    single = cross_val_score(HybridBPR(**FAST), train, cv=PerUserKFold(3, random_state=0))
    np.testing.assert_allclose(single, scores["test_ndcg@10"], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# Pipeline on an events DataFrame
# --------------------------------------------------------------------------
def _events(data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The generated data as an events table with ratings (5: positive, 2: skipped) and an item table."""
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
    train_rows, test_rows = train_test_split(events, test_size=0.2, random_state=0, groups=events["user_id"])
    pipe = make_pipeline(
        InteractionsEncoder(
            user_col="user_id", item_col="item_id", rating_col="rating", threshold=4, item_features=items
        ),
        HybridBPR(**FAST),
    )
    grid = {"hybridbpr__item_features_mode": ["identity", "features", "both"]}
    search = GridSearchCV(
        pipe,
        grid,
        cv=PerUserKFold(3, random_state=0),
        # with a DataFrame each test fold carries its own rows: its positives and its skipped items
        scoring={**SCORING, "implicit_auc": implicit_auc_scorer()},
        refit="ndcg@10",
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no row is unknown: every item is in the feature table
        search.fit(train_rows, groups=train_rows["user_id"])
    results = search.cv_results_
    assert len(results["params"]) == 3
    for metric in ("ndcg@10", "auc", "implicit_auc"):
        assert np.all(np.isfinite(results[f"mean_test_{metric}"])), metric
    assert search.best_params_ in list(ParameterGrid(grid))

    encoder, model = search.best_estimator_[0], search.best_estimator_[-1]
    # refit on every training row: the positive rows train, the skipped rows are implicit negatives
    is_positive = train_rows["rating"] >= 4
    assert model.train_positives_.nnz == int(is_positive.sum())
    assert encoder.transform(train_rows).negatives.nnz == int((~is_positive).sum())
    assert model.n_items_ == len(items) and model.n_users_ == data.n_users
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every held-out user and item is known
        held_out = search.score(test_rows)
    assert np.isfinite(held_out) and 0 < held_out <= 1


def test_pipeline_unknown_users_and_items(data):
    """Rows outside the encoder's id space are dropped with one warning; items known
    only from the feature table are in the id space and scored from their features."""
    events, items = _events(data)
    train_rows, test_rows = train_test_split(events, test_size=0.2, random_state=0, groups=events["user_id"])
    new_item = items.iloc[[0]].set_axis(pd.Index([999_999], name="item_id"))  # a twin of item 5000
    pipe = make_pipeline(
        InteractionsEncoder(rating_col="rating", threshold=4, item_features=pd.concat([items, new_item])),
        HybridBPR(**{**FAST, "item_features_mode": "features"}),
    ).fit(train_rows)
    encoder, model = pipe[0], pipe[-1]

    # in the id space although it has no event: scored from its features alone
    assert 999_999 in encoder.item_ids_ and model.n_items_ == len(items) + 1
    new_index = int(np.flatnonzero(encoder.item_ids_ == 999_999)[0])
    twin_index = int(np.flatnonzero(encoder.item_ids_ == 5000)[0])
    scores = model.predict(np.array([[0, new_index], [0, twin_index]]))
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)

    # an unknown user and an unknown item without features: their rows are dropped
    unknown = pd.DataFrame({"user_id": [123_456, 1000], "item_id": [5000, 777_777], "rating": [5.0, 5.0]})
    with pytest.warns(UserWarning, match=r"^2 of \d+ event rows have a user or item unknown"):
        with_unknown = ndcg_scorer(10)(pipe, pd.concat([test_rows, unknown], ignore_index=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        plain = ndcg_scorer(10)(pipe, test_rows)
    assert np.isfinite(plain) and with_unknown == plain
    # a new event of a feature-table item is kept
    kept = encoder.transform(pd.DataFrame({"user_id": [1000], "item_id": [999_999], "rating": [5.0]}))
    assert kept.n_positives == 1 and kept.pos_items[0] == new_index


# --------------------------------------------------------------------------
# early stopping
# --------------------------------------------------------------------------
def test_early_stopping_restores_best_epoch(split):
    train, valid = split
    model = HybridBPR(**{**FAST, "epochs": 20}, patience=2, eval_every=1)
    model.fit(train, eval_set=valid)
    assert all("val_ndcg@10" in h and "val_auc" in h for h in model.history_)
    values = [h["val_ndcg@10"] for h in model.history_]
    best = int(np.argmax(values))
    assert model.best_epoch_ == model.history_[best]["epoch"]
    # stopped after two evaluations without improvement
    assert len(values) < 20 and len(values) == model.best_epoch_ + 2
    assert max(values[-2:]) <= values[best]
    # the best weights were restored: the validation score is the best recorded one
    assert ndcg_at_k(model, valid) == pytest.approx(values[best], abs=1e-6)
    assert model.score(valid) == pytest.approx(values[best], abs=1e-6)


def test_validation_fraction_without_eval_set(split):
    train, _ = split
    model = HybridBPR(**FAST, validation_fraction=0.2, patience=2).fit(train)
    assert len(model.history_) >= 1
    assert all(np.isfinite(h["val_ndcg@10"]) for h in model.history_)
    # 20 % of each user's positives were held out from training
    assert 0.75 * train.n_positives < model.train_positives_.nnz < 0.85 * train.n_positives


# --------------------------------------------------------------------------
# Optuna
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_optuna_search_cv(split):
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, test = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)  # optuna's own deprecations, not ours
        search = integration.OptunaSearchCV(
            HybridBPR(**FAST),
            {
                "learning_rate": optuna.distributions.FloatDistribution(0.01, 0.3, log=True),
                "alpha": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
                "loss": optuna.distributions.CategoricalDistribution(["bpr", "warp"]),
            },
            cv=PerUserKFold(3, random_state=0),
            scoring=ndcg_scorer(10),
            n_trials=3,
            random_state=0,
        )
        search.fit(train)
    assert len(search.trials_) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in search.trials_)
    assert search.best_params_["loss"] in ("bpr", "warp")
    assert 0.01 <= search.best_params_["learning_rate"] <= 0.3
    assert np.isfinite(search.best_score_)
    assert np.isfinite(search.score(test))


STUDY_SCRIPT = textwrap.dedent(
    """
    import sys

    import optuna
    from sklearn.model_selection import cross_val_score

    from skbpr import HybridBPR
    from skbpr.datasets import make_interactions
    from skbpr.metrics import ndcg_scorer
    from skbpr.model_selection import PerUserKFold, train_test_split

    FAST = {fast!r}
    train, _ = train_test_split(make_interactions(300, 120, 4000, **{data_args!r}), test_size=0.2, random_state=0)


    def objective(trial):
        params = {{
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "item_features_mode": trial.suggest_categorical("item_features_mode", ["identity", "both"]),
        }}
        scores = cross_val_score(
            HybridBPR(**FAST, **params), train, cv=PerUserKFold(3, random_state=0), scoring=ndcg_scorer(10)
        )
        return float(scores.mean())


    def run(storage, n_trials):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=storage, study_name="skbpr", load_if_exists=True, direction="maximize"
        )
        study.optimize(objective, n_trials=n_trials)
        return study


    if __name__ == "__main__":
        run(sys.argv[1], int(sys.argv[2]))
    """
).format(fast=FAST, data_args=DATA_ARGS)


@pytest.mark.slow
def test_optuna_study_in_sqlite_resumes_in_another_process(tmp_path: Path):
    optuna = pytest.importorskip("optuna")
    script = tmp_path / "tune.py"
    script.write_text(STUDY_SCRIPT)
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    # first session: a separate process runs 2 trials and exits
    subprocess.run([sys.executable, str(script), storage, "2"], check=True, timeout=300)
    assert len(optuna.load_study(study_name="skbpr", storage=storage).trials) == 2

    # second session: the same script, here, picks the study up and runs 2 more
    resumed = runpy.run_path(str(script))["run"](storage, 2)
    trials = optuna.load_study(study_name="skbpr", storage=storage).trials
    assert len(resumed.trials) == len(trials) == 4
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(np.isfinite(t.value) and 0 < t.value <= 1 for t in trials)
    assert resumed.best_value == max(t.value for t in trials)
