"""Searches on a Dask cluster (127.0.0.1, two worker processes) and MLflow stores written by many processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate

from skbpr import HybridBPR
from skbpr.callbacks import MLflowCallback
from skbpr.cli import main
from skbpr.datasets import make_interactions
from skbpr.metrics import auc_scorer, ndcg_scorer
from skbpr.model_selection import PerUserKFold

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install skbpr[dask])")

from skbpr.distributed.search import check_scheduler, dask_backend  # noqa: E402
from skbpr.distributed.stores import is_database_uri, prepare_tracking_store  # noqa: E402

SCORING = {"ndcg@5": ndcg_scorer(5), "auc": auc_scorer()}
GRID = {"loss": ["bpr", "warp"], "n_components": [4, 8]}


@pytest.fixture(scope="module")
def data():
    return make_interactions(120, 60, 1400, random_state=0)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each; every socket on 127.0.0.1, no dashboard."""
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        scheduler_port=0,
        silence_logs=40,
        death_timeout=60,
    ) as local:
        yield local
    # the context manager closed the scheduler and both workers


def _model(**params):
    return HybridBPR(epochs=3, random_state=0, n_threads=1, batch_size=256, **params)


def _folds():
    return PerUserKFold(2, random_state=0)


def _same_results(a: dict, b: dict) -> None:
    keys = {k for k in a if "time" not in k}
    assert keys == {k for k in b if "time" not in k}
    for key in sorted(keys):
        if key == "params":
            assert a[key] == b[key]
        else:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_cluster_listens_on_loopback_only(cluster):
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    workers = cluster.scheduler_info["workers"]
    assert len(workers) == 2 and all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert {w["nthreads"] for w in workers.values()} == {1}


def test_grid_search_on_dask_equals_loky(cluster, data):
    local = GridSearchCV(_model(), GRID, cv=_folds(), scoring=SCORING, refit="ndcg@5", n_jobs=2).fit(data)
    with dask_backend(cluster.scheduler_address) as client:
        remote = GridSearchCV(_model(), GRID, cv=_folds(), scoring=SCORING, refit="ndcg@5", n_jobs=-1).fit(data)
        assert len(client.scheduler_info()["workers"]) == 2
    _same_results(local.cv_results_, remote.cv_results_)
    assert local.best_params_ == remote.best_params_
    np.testing.assert_array_equal(
        local.best_estimator_.recommend([0, 1], k=5)[0], remote.best_estimator_.recommend([0, 1], k=5)[0]
    )


def test_randomized_search_and_cross_validate_on_dask_equal_loky(cluster, data):
    space = {"loss": ["bpr", "warp", "logistic"], "learning_rate": [0.05, 0.1, 0.2]}

    def search():
        return RandomizedSearchCV(_model(), space, n_iter=3, cv=_folds(), scoring=SCORING, refit=False, random_state=1)

    local = search().set_params(n_jobs=2).fit(data)
    local_cv = cross_validate(_model(), data, cv=_folds(), scoring=SCORING, n_jobs=2)
    with dask_backend(cluster.scheduler_address):
        remote = search().set_params(n_jobs=-1).fit(data)
        remote_cv = cross_validate(_model(), data, cv=_folds(), scoring=SCORING, n_jobs=-1)
    _same_results(local.cv_results_, remote.cv_results_)
    for key in ("test_ndcg@5", "test_auc"):
        np.testing.assert_array_equal(local_cv[key], remote_cv[key])


def test_mlflow_child_runs_nest_under_the_parent_from_dask_workers(cluster, data, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.set_experiment("dask-search")
        model = _model(callbacks=[MLflowCallback(tracking_uri=uri, experiment_name="dask-search", log_model=False)])
        with mlflow.start_run(run_name="search") as parent, dask_backend(cluster.scheduler_address):
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # a fallback store would warn
                GridSearchCV(model, {"loss": ["bpr", "warp"]}, cv=_folds(), scoring=SCORING, refit="ndcg@5",
                             n_jobs=-1).fit(data)  # fmt: skip
    finally:
        mlflow.set_tracking_uri(previous)
    runs = MlflowClient(uri).search_runs([experiment.experiment_id])
    children = [r for r in runs if r.info.run_id != parent.info.run_id]
    assert len(children) == 2 * 2 + 1  # 2 candidates x 2 folds on the workers, and the refit here
    assert {r.data.tags.get("mlflow.parentRunId") for r in children} == {parent.info.run_id}
    assert {r.info.status for r in children} == {"FINISHED"}
    folds = sorted((r.data.tags["skbpr.cv_candidate"], r.data.tags["skbpr.cv_split"]) for r in children[:] if
                   "skbpr.cv_split" in r.data.tags)  # fmt: skip
    assert folds == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert sum(r.data.tags.get("skbpr.cv_refit") == "true" for r in children) == 1


def test_batch_recommendations_on_dask_worker_processes(cluster, data):
    import dask.dataframe as dd
    from dask.distributed import Client

    from skbpr.distributed.batch import BatchRecommender

    model = _model().fit(data)
    rec = BatchRecommender(model, k=4)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        frame = dd.from_pandas(pd.DataFrame({"user": np.arange(data.n_users)}), npartitions=5)
        out = client.compute(frame.map_partitions(rec, meta=rec.meta)).result()
    items, scores = model.recommend(np.arange(data.n_users), k=4)
    assert out["item"].tolist() == items.ravel().tolist()
    np.testing.assert_array_equal(out["score"].to_numpy(), scores.ravel().astype(np.float64))


# --------------------------------------------------------------------------
# skbpr sweep --scheduler
# --------------------------------------------------------------------------
SWEEP = {
    "model": {"n_components": 8},
    "training": {"epochs": 3, "batch_size": 256, "random_state": 0, "n_threads": 1},
    "data": {"source": "synthetic", "n_users": 80, "n_items": 40, "n_interactions": 600, "random_state": 0},
    "sweep": {"training.loss": ["bpr", "warp"], "cv": 2},
}


def _table(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank "))
    return lines[start : start + 3]


@pytest.mark.slow
def test_sweep_command_on_a_scheduler_equals_the_local_sweep(cluster, tmp_path, capsys):
    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    config = {**SWEEP, "mlflow": {"tracking_uri": uri, "experiment_name": "cli-dask"}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["sweep", "--config", str(path), "--scheduler", cluster.scheduler_address]) == 0
    remote = capsys.readouterr().out
    assert f"n_jobs=-1, on the Dask scheduler {cluster.scheduler_address}" in remote
    local_config = {**SWEEP, "mlflow": {"enabled": False}}
    local_path = tmp_path / "local.yaml"
    local_path.write_text(yaml.safe_dump(local_config), encoding="utf-8")
    assert main(["sweep", "--config", str(local_path)]) == 0
    assert _table(remote) == _table(capsys.readouterr().out)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cli-dask")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.data.tags.get("skbpr.kind") == "sweep"]
    assert len(parent) == 1
    fold_runs = [r for r in runs if "skbpr.cv_split" in r.data.tags]
    assert len(fold_runs) == 4 and {r.data.tags["mlflow.parentRunId"] for r in fold_runs} == {parent[0].info.run_id}


def test_sweep_scheduler_from_the_config_and_bad_addresses(tmp_path, capsys):
    config = {**SWEEP, "mlflow": {"enabled": False}, "sweep": {**SWEEP["sweep"], "scheduler": "localhost:8786"}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["sweep", "--config", str(path)]) == 2
    assert "sweep.scheduler: expected a Dask scheduler address such as 'tcp://HOST:8786'" in capsys.readouterr().err
    assert main(["sweep", "--config", str(path), "--scheduler", "8786"]) == 2
    assert "--scheduler '8786': expected a Dask scheduler address" in capsys.readouterr().err
    assert check_scheduler("tls://10.1.2.3:8786") == "tls://10.1.2.3:8786"
    with pytest.raises(ValueError, match="scheduler must be a Dask scheduler address"):
        check_scheduler(None)


# --------------------------------------------------------------------------
# MLflow stores written by many processes
# --------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, time
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    uri, name, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    for n in range(2):
        run = client.create_run(experiment.experiment_id, run_name=f"writer-{index}-{n}")
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (step + 1), now, step) for step in range(5)]
        client.log_batch(run.info.run_id, metrics=metrics, params=[Param("writer", str(index))])
        client.set_terminated(run.info.run_id)
    """
)


@pytest.mark.slow
def test_concurrent_writers_on_a_fresh_sqlite_store_prepared_once(tmp_path):
    from mlflow import MlflowClient

    path = tmp_path / "fresh" / "mlflow.db"
    path.parent.mkdir()
    uri = prepare_tracking_store("sqlite:///" + str(path))
    assert path.is_file() and is_database_uri(uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("writers")
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "ERROR"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, uri, "writers", str(i)], env=env, stderr=subprocess.PIPE)
        for i in range(3)
    ]
    errors = [proc.communicate(timeout=120)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 3, errors
    runs = client.search_runs([experiment_id], max_results=100)
    assert sorted(r.info.run_name for r in runs) == sorted(f"writer-{i}-{n}" for i in range(3) for n in range(2))
    assert all(len(client.get_metric_history(r.info.run_id, "loss")) == 5 for r in runs)


@pytest.mark.slow
def test_search_workers_on_a_fresh_sqlite_store_need_no_fallback(tmp_path, data, monkeypatch):
    """No active run: two loky workers are the first to write; the callback's copy created the schema."""
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # a fallback store would appear here
    uri = "sqlite:///" + str(tmp_path / "fresh.db")
    model = _model(callbacks=[MLflowCallback(tracking_uri=uri, experiment_name="fresh", log_model=False)])
    GridSearchCV(model, {"loss": ["bpr", "warp"]}, cv=_folds(), scoring=SCORING, refit=False, n_jobs=2).fit(data)
    assert not (tmp_path / "mlflow-fallback.db").exists()
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("fresh").experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}


def test_prepare_leaves_other_stores_alone(tmp_path):
    assert prepare_tracking_store("http://127.0.0.1:9") == "http://127.0.0.1:9"  # no connection attempted
    with pytest.raises(OSError, match="is not a directory"):
        (tmp_path / "file").write_text("x")
        prepare_tracking_store("sqlite:///" + str(tmp_path / "file" / "mlflow.db"))
