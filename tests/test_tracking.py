"""MLflowCallback against real tracking stores: SQLite files and an MLflow server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from skbpr import HybridBPR, __version__
from skbpr.callbacks import MLflowCallback
from skbpr.datasets import make_interactions
from skbpr.model_selection import PerUserKFold, train_test_split
from skbpr.tracking.candidates import candidate_digest, reconcile_search_runs

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

FAST = {"n_components": 4, "epochs": 3, "batch_size": 256, "random_state": 0}
PAIRS = np.array([[0, 1], [2, 3], [5, 7], [59, 39]])


@pytest.fixture(scope="module")
def data():
    return make_interactions(60, 40, 400, random_state=0)


@pytest.fixture(autouse=True)
def isolated_mlflow(tmp_path, monkeypatch):
    """Each test in its own folder (default stores and artifacts land there), MLflow state reset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    # forget an experiment chosen with mlflow.set_experiment by an earlier test (another store)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(None)
    yield
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """An ``mlflow server`` subprocess (its own process group) on a free port."""

    def __init__(self, root) -> None:
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "server.log", "w")
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'srv.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(timeout=120)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer /health within {timeout} s")

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        self.log.close()


@pytest.fixture
def server(tmp_path_factory):
    srv = _Server(tmp_path_factory.mktemp("mlflow-server"))
    yield srv
    srv.stop()


def _fit(data, callback, *extra_callbacks, **params):
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    est = HybridBPR(**{**FAST, **params}, callbacks=[callback, *extra_callbacks])
    _fit.last = est
    return est.fit(train, eval_set=test)


def _fitted():
    """The copy of the callback that the last ``_fit`` recorded on (the parameter is left unchanged)."""
    return _fit.last.callbacks_[0]


def _check_run(client, run_id, est, epochs=FAST["epochs"]):
    run = client.get_run(run_id)
    params = run.data.params
    for name, value in est.get_params(deep=False).items():
        if name != "callbacks":
            assert params[name] == str(value), name
    assert params["callbacks"].startswith("[MLflowCallback")
    assert params["data.n_users"] == "60" and params["data.n_items"] == "40"
    assert params["data.n_positives"] == str(est.train_positives_.nnz)
    assert {"data.n_negatives", "data.n_user_features", "data.n_item_features"} <= set(params)
    assert params["fit.epochs"] == str(epochs)
    assert params["env.skbpr_version"] == __version__
    assert params["env.torch_version"] == __import__("torch").__version__
    assert params["env.device"] == "cpu"
    history = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))
    np.testing.assert_allclose(
        [m.value for m in sorted(history, key=lambda m: m.step)], [h["loss"] for h in est.history_], rtol=1e-6
    )
    assert len(client.get_metric_history(run_id, "val_ndcg_at_10")) == epochs
    assert run.data.metrics["final_loss"] == pytest.approx(est.history_[-1]["loss"])
    assert run.data.metrics["best_epoch"] == est.best_epoch_
    assert run.info.status == "FINISHED"
    return run


def _check_model(uri, run_id, est):
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    assert isinstance(loaded, HybridBPR)
    np.testing.assert_array_equal(loaded.predict(PAIRS), est.predict(PAIRS))
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(PAIRS)), est.predict(PAIRS), rtol=1e-6)


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, UserWarning)]


def test_import_skbpr_does_not_import_mlflow():
    code = "import sys, skbpr, skbpr.callbacks; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sqlite_store_records_params_metrics_and_model(data, tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    callback = MLflowCallback(tracking_uri=uri, experiment_name="unit", run_name="first")
    est = _fit(data, callback)
    assert _fitted().tracking_uri_ == uri
    client = MlflowClient(uri)
    run = _check_run(client, _fitted().run_id_, est)
    assert run.info.run_name == "first"
    assert client.get_experiment(run.info.experiment_id).name == "unit"
    assert "mlflow.parentRunId" not in run.data.tags
    _check_model(uri, _fitted().run_id_, est)
    loaded = mlflow.sklearn.load_model(_fitted().model_uri_)
    np.testing.assert_array_equal(loaded.predict(PAIRS), est.predict(PAIRS))


def test_a_fit_that_fails_ends_its_run_as_failed_without_a_model(data, tmp_path):
    import torch

    uri = f"sqlite:///{tmp_path / 'failed.db'}"
    callback = MLflowCallback(tracking_uri=uri, experiment_name="unit")

    def explode(pos, neg):
        return (neg.mean(dim=1) - pos).mean() * torch.inf

    with pytest.raises(FloatingPointError, match="epoch 1"):
        _fit(data, callback, loss=explode)
    run = MlflowClient(uri).get_run(_fitted().run_id_)
    assert run.info.status == "FAILED"
    assert _fitted().model_uri_ is None


def test_default_store_is_mlflow_default_and_active_run_gets_a_child(data, tmp_path):
    callback = MLflowCallback(log_model=False)
    est = _fit(data, callback, epochs=2)
    assert _fitted().tracking_uri_ == mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    _check_run(MlflowClient(), _fitted().run_id_, est, epochs=2)
    with mlflow.start_run(run_name="outer") as outer:
        _fit(data, callback, epochs=2)
        assert mlflow.active_run().info.run_id == outer.info.run_id  # the joined run stays open
    child = MlflowClient().get_run(_fitted().run_id_)
    assert child.data.tags["mlflow.parentRunId"] == outer.info.run_id
    assert child.info.experiment_id == outer.info.experiment_id
    assert child.info.status == "FINISHED"


def test_nested_false_records_into_the_active_run(data, tmp_path):
    callback = MLflowCallback(tracking_uri=f"sqlite:///{tmp_path / 'j.db'}", nested=False, log_model=False)
    mlflow.set_tracking_uri(callback.tracking_uri)
    with mlflow.start_run() as outer:
        est = _fit(data, callback, epochs=2)
        assert _fitted().run_id_ == outer.info.run_id
        assert MlflowClient().get_run(outer.info.run_id).info.status == "RUNNING"
    _check_run(MlflowClient(), outer.info.run_id, est, epochs=2)


@pytest.mark.slow
def test_http_server_records_params_metrics_and_model(data, server):
    callback = MLflowCallback(tracking_uri=server.uri, fallback_uri="sqlite:///never.db")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est = _fit(data, callback)
    assert _fitted().tracking_uri_ == server.uri
    assert not os.path.exists("never.db")
    _check_run(MlflowClient(server.uri), _fitted().run_id_, est)
    _check_model(server.uri, _fitted().run_id_, est)


@pytest.mark.slow
def test_parallel_grid_search_records_one_child_per_fit(data, tmp_path):
    from sklearn.model_selection import GridSearchCV

    uri = f"sqlite:///{tmp_path / 'sweep.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("sweep")
    est = HybridBPR(**{**FAST, "epochs": 2}, callbacks=[MLflowCallback()])
    grid = {"learning_rate": [0.05, 0.1]}
    with mlflow.start_run(run_name="sweep") as parent:
        search = GridSearchCV(est, grid, cv=PerUserKFold(2, random_state=0), n_jobs=2, error_score="raise")
        search.fit(data)
    client = MlflowClient(uri)
    runs = client.search_runs([parent.info.experiment_id], max_results=100)
    assert len(runs) == 6
    children = [r for r in runs if r.info.run_id != parent.info.run_id]
    assert all(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    folds = sorted(
        (r.data.tags["skbpr.cv_candidate"], r.data.tags["skbpr.cv_split"], r.data.params["learning_rate"])
        for r in children
        if "skbpr.cv_split" in r.data.tags
    )
    assert folds == [("0", "0", "0.05"), ("0", "1", "0.05"), ("1", "0", "0.1"), ("1", "1", "0.1")]
    refit = [r for r in children if r.data.tags.get("skbpr.cv_refit") == "true"]
    assert len(refit) == 1
    assert refit[0].data.params["learning_rate"] == str(search.best_params_["learning_rate"])
    for run in children:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1, 2]
    best = mlflow.sklearn.load_model(f"runs:/{refit[0].info.run_id}/model")
    np.testing.assert_array_equal(best.predict(PAIRS), search.best_estimator_.predict(PAIRS))


def _models_by_run(client, experiment_id):
    """Source run id -> number of logged models, over one experiment."""
    counts: dict[str, int] = {}
    for model in client.search_logged_models(experiment_ids=[experiment_id]):
        counts[model.source_run_id] = counts.get(model.source_run_id, 0) + 1
    return counts


def test_grid_search_logs_a_model_for_the_refit_only(data, tmp_path):
    from sklearn.model_selection import GridSearchCV

    uri = f"sqlite:///{tmp_path / 'search.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment("search-models")
    est = HybridBPR(**{**FAST, "epochs": 2}, callbacks=[MLflowCallback()])  # log_model="auto"
    with mlflow.start_run(run_name="search") as parent:
        search = GridSearchCV(est, {"learning_rate": [0.05, 0.1]}, cv=PerUserKFold(2, random_state=0), n_jobs=1)
        search.fit(data)
    client = MlflowClient(uri)
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    folds = [r for r in children if "skbpr.cv_split" in r.data.tags]
    refit = [r for r in children if r.data.tags.get("skbpr.cv_refit") == "true"]
    assert (len(folds), len(refit)) == (4, 1)
    assert all(r.info.status == "FINISHED" for r in children)
    models = _models_by_run(client, experiment.experiment_id)
    assert models == {refit[0].info.run_id: 1}  # no fold run has a model, the refit run has one
    assert not any(k.startswith("_") for r in children for k in r.data.tags)  # the fold marker is no tag
    best = mlflow.sklearn.load_model(f"runs:/{refit[0].info.run_id}/model")
    np.testing.assert_array_equal(best.predict(PAIRS), search.best_estimator_.predict(PAIRS))
    fitted = search.best_estimator_.callbacks_[0]
    assert fitted.model_uri_ is not None and fitted.run_id_ == refit[0].info.run_id


@pytest.mark.parametrize(("log_model", "expected"), [("auto", 0), (True, 2), (False, 0)])
def test_cross_val_score_logs_fold_models_only_when_asked(data, tmp_path, log_model, expected):
    from sklearn.model_selection import cross_val_score

    uri = f"sqlite:///{tmp_path / 'cv.db'}"
    callback = MLflowCallback(tracking_uri=uri, experiment_name="cv", log_model=log_model)
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[callback])
    cross_val_score(est, data, cv=PerUserKFold(2, random_state=0))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cv")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    assert sum(_models_by_run(client, experiment.experiment_id).values()) == expected


def test_plain_fit_logs_a_model_by_default_and_not_with_false(data, tmp_path):
    uri = f"sqlite:///{tmp_path / 'plain.db'}"
    assert MLflowCallback().log_model == "auto"
    _fit(data, MLflowCallback(tracking_uri=uri, experiment_name="plain"))
    assert _fitted().model_uri_ is not None
    _fit(data, MLflowCallback(tracking_uri=uri, experiment_name="plain", log_model=False))
    assert _fitted().model_uri_ is None
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("plain")
    assert sum(_models_by_run(client, experiment.experiment_id).values()) == 1


@pytest.mark.parametrize("name", ["log_model", "nested"])
@pytest.mark.parametrize("bad", ["yes", 1, None, "Auto"])
def test_bad_log_model_and_nested_are_refused(name, bad):
    with pytest.raises(ValueError, match=rf"{name} must be one of \('auto', True, False\), got {re.escape(repr(bad))}"):
        MLflowCallback(**{name: bad})


def test_random_and_optuna_searches_record_one_child_per_fit(data, tmp_path):
    import optuna
    from scipy import stats
    from sklearn.model_selection import RandomizedSearchCV, cross_val_score

    uri = f"sqlite:///{tmp_path / 'searches.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("searches")
    est = HybridBPR(**{**FAST, "epochs": 2}, callbacks=[MLflowCallback(log_model=False)])
    client = MlflowClient(uri)

    with mlflow.start_run(run_name="random") as parent:
        RandomizedSearchCV(
            est, {"learning_rate": stats.loguniform(0.01, 0.3)}, n_iter=2, cv=PerUserKFold(2, random_state=0),
            n_jobs=2, random_state=0, refit=False,
        ).fit(data)  # fmt: skip
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 4
    assert len({r.data.params["learning_rate"] for r in children}) == 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        lr = trial.suggest_float("learning_rate", 0.01, 0.3, log=True)
        return cross_val_score(est.set_params(learning_rate=lr), data, cv=PerUserKFold(2, random_state=0)).mean()

    with mlflow.start_run(run_name="optuna") as study_run:
        optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)).optimize(
            objective, n_trials=2
        )
    children = client.search_runs(
        [study_run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{study_run.info.run_id}'"
    )
    assert len(children) == 4
    assert all(r.info.status == "FINISHED" for r in children)


def _children(client, parent):
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )


@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_grid_search_fold_runs_carry_the_digest_of_their_candidate(data, tmp_path, n_jobs):
    from sklearn.model_selection import GridSearchCV

    uri = f"sqlite:///{tmp_path / 'digest.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("digest")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    grid = {"learning_rate": [0.05, 0.1], "weighting": ["log", "none"]}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*cv_candidate", category=UserWarning)
        with mlflow.start_run(run_name="search") as parent:
            search = GridSearchCV(est, grid, cv=PerUserKFold(2, random_state=0), n_jobs=n_jobs, error_score="raise")
            search.fit(data)
    children = _children(MlflowClient(uri), parent)
    folds = [r for r in children if "skbpr.cv_split" in r.data.tags]
    refit = [r for r in children if r.data.tags.get("skbpr.cv_refit") == "true"]
    assert (len(folds), len(refit)) == (8, 1)
    expected = [candidate_digest(search.estimator, p) for p in search.cv_results_["params"]]
    assert len(set(expected)) == 4  # one digest per candidate
    for run in folds:
        candidate = int(run.data.tags["skbpr.cv_candidate"])
        assert run.data.tags["skbpr.cv_params_digest"] == expected[candidate]
        assert run.data.params["learning_rate"] == str(search.cv_results_["params"][candidate]["learning_rate"])
        assert "skbpr.cv_candidate_unverified" not in run.data.tags
    assert sorted((r.data.tags["skbpr.cv_candidate"], r.data.tags["skbpr.cv_split"]) for r in folds) == [
        (str(c), str(s)) for c in range(4) for s in range(2)
    ]
    assert refit[0].data.tags["skbpr.cv_params_digest"] == candidate_digest(search.estimator, search.best_params_)
    assert len({r.data.tags["skbpr.cv_search"] for r in [*folds, *refit]}) == 1  # one search


def _fit_in_order(data, base, grid, order, folds):
    """What a search does, cloning its base in ``order`` of (candidate, split) rather than cv_results_'s."""
    for candidate, split in order:
        train, _ = folds[split]
        clone(base).set_params(**grid[candidate]).fit(data[train])


def test_a_search_that_clones_out_of_order_warns_and_marks_the_runs(data, tmp_path):
    uri = f"sqlite:///{tmp_path / 'order.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("order")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    grid = [{"learning_rate": 0.05}, {"learning_rate": 0.1}]
    folds = list(PerUserKFold(2, random_state=0).split(data))
    base = clone(est)  # the search's base, as GridSearchCV makes it
    # clones 0 and 1 are numbered candidate 0, clones 2 and 3 candidate 1: the second clone holds candidate 1
    with mlflow.start_run(run_name="shuffled") as parent:
        with pytest.warns(UserWarning, match=r"both tagged skbpr.cv_candidate=\d .*unverified=true") as record:
            _fit_in_order(data, base, grid, [(0, 0), (1, 1), (1, 0), (0, 1)], folds)
    messages = [str(w.message) for w in record if "cv_candidate" in str(w.message)]
    assert len(messages) == 2  # candidate 0 at the second fit, candidate 1 at the fourth
    assert re.search(r"cv_candidate=0 .*learning_rate='0.1' here, '0.05' there", messages[0])
    assert re.search(r"cv_candidate=1 .*learning_rate='0.05' here, '0.1' there", messages[1])
    runs = {r.info.run_id: r for r in _children(MlflowClient(uri), parent)}
    assert len(runs) == 4 and all(r.data.tags.get("skbpr.cv_candidate_unverified") == "true" for r in runs.values())
    assert all(sum(run_id in message for run_id in runs) == 2 for message in messages)  # each names two runs
    for run in runs.values():  # the digest names each run's true candidate whatever its number says
        true = grid.index({"learning_rate": float(run.data.params["learning_rate"])})
        assert run.data.tags["skbpr.cv_params_digest"] == candidate_digest(est, grid[true])


def test_the_same_split_twice_under_one_candidate_number_warns(data, tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'twice.db'}")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    folds = list(PerUserKFold(2, random_state=0).split(data))
    with mlflow.start_run():
        with pytest.warns(UserWarning, match=r"both tagged skbpr.cv_candidate=0 .*but the same split 0"):
            _fit_in_order(data, clone(est), [{}], [(0, 0), (0, 0)], folds)


def _reconcile(uri, parent, estimator, candidates, **kwargs):
    """Run the after-search check through a recorder joined to ``parent``, as ``skbpr sweep`` does."""
    from skbpr.tracking.recorder import RunRecorder

    recorder = RunRecorder(
        uri, f"sqlite:///{parent.info.run_id}-fallback.db", experiment_name="unused", join_run_id=parent.info.run_id
    )
    recorder.start({}, {})
    return reconcile_search_runs(recorder, parent.info.run_id, estimator, candidates, **kwargs)


def test_runs_numbered_in_the_wrong_order_are_renumbered_from_cv_results(data, tmp_path):
    # candidates cloned in reverse, splits in order: each number's runs agree with each other, so nothing at fit
    # time can tell the numbers are swapped; the digest still names the true candidate, and the check after the
    # search renumbers the runs from it
    uri = f"sqlite:///{tmp_path / 'renumber.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("renumber")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    grid = [{"learning_rate": 0.05}, {"learning_rate": 0.1}]
    with mlflow.start_run() as parent:
        _fit_in_order(data, clone(est), grid, [(1, 0), (1, 1), (0, 0), (0, 1)], list(PerUserKFold(2).split(data)))
    for run in _children(MlflowClient(uri), parent):
        numbered = int(run.data.tags["skbpr.cv_candidate"])
        assert run.data.tags["skbpr.cv_params_digest"] == candidate_digest(est, grid[1 - numbered])
        assert "skbpr.cv_candidate_unverified" not in run.data.tags
    with pytest.warns(
        UserWarning, match=r"4 fold run\(s\) were numbered as another candidate .*cv_candidate_renumbered"
    ):
        assert _reconcile(uri, parent, est, grid) == 4
    for run in _children(MlflowClient(uri), parent):
        tags = run.data.tags
        assert grid[int(tags["skbpr.cv_candidate"])] == {"learning_rate": float(run.data.params["learning_rate"])}
        assert tags["skbpr.cv_candidate_renumbered"] == str(1 - int(tags["skbpr.cv_candidate"]))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=UserWarning)
        assert _reconcile(uri, parent, est, grid) == 0  # once right, nothing more to renumber


def test_find_runs_reads_every_page_of_the_store(tmp_path):
    # a search with more runs than one page holds is checked whole, not its first page
    from skbpr.tracking.recorder import RunRecorder

    uri = f"sqlite:///{tmp_path / 'pages.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("pages")
    parent = client.create_run(experiment)
    for i in range(5):
        client.create_run(experiment, tags={"mlflow.parentRunId": parent.info.run_id, "i": str(i)})
    recorder = RunRecorder(uri, f"sqlite:///{tmp_path / 'fallback.db'}", experiment_name="pages",
                           join_run_id=parent.info.run_id)  # fmt: skip
    recorder.start({}, {})
    query = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    found = recorder.find_runs(query, page_size=2)
    assert sorted(r.data.tags["i"] for r in found) == ["0", "1", "2", "3", "4"]
    assert len({r.info.run_id for r in found}) == 5


def test_a_clean_search_reconciles_without_a_change_and_clears_doubts(data, tmp_path):
    from sklearn.model_selection import GridSearchCV

    uri = f"sqlite:///{tmp_path / 'clean.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("clean")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    with mlflow.start_run() as parent:
        search = GridSearchCV(est, {"learning_rate": [0.05, 0.1]}, cv=PerUserKFold(2, random_state=0)).fit(data)
        other = GridSearchCV(est, {"alpha": [0.0]}, cv=PerUserKFold(2, random_state=0), refit=False).fit(data)
    client = MlflowClient(uri)
    search_id = search.best_estimator_.callbacks[0].search_id
    assert search_id is not None and other.estimator.callbacks[0].search_id is None  # the user's callback: no search
    folds = [r for r in _children(client, parent) if "skbpr.cv_split" in r.data.tags]
    assert sorted(r.data.tags["skbpr.cv_search"] == search_id for r in folds) == [False, False, True, True, True, True]
    doubted = next(r for r in folds if r.data.tags["skbpr.cv_search"] == search_id)
    client.set_tag(doubted.info.run_id, "skbpr.cv_candidate_unverified", "true")  # as a fit-time clash leaves it
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=UserWarning)  # the other search's runs are not this one's
        assert _reconcile(uri, parent, est, search.cv_results_["params"], search_id=search_id) == 0
    assert client.get_run(doubted.info.run_id).data.tags["skbpr.cv_candidate_unverified"] == "false"
    with pytest.warns(UserWarning, match=r"2 fold run\(s\) have parameters of no single candidate"):
        _reconcile(uri, parent, est, search.cv_results_["params"])  # without the id: the other search's 2 runs


def test_two_searches_under_one_parent_are_not_siblings(data, tmp_path):
    from sklearn.model_selection import GridSearchCV

    uri = f"sqlite:///{tmp_path / 'two.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("two")
    est = HybridBPR(**{**FAST, "epochs": 1}, callbacks=[MLflowCallback(log_model=False)])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*cv_candidate", category=UserWarning)
        with mlflow.start_run() as parent:
            for grid in ({"learning_rate": [0.05]}, {"learning_rate": [0.1]}):
                GridSearchCV(est, grid, cv=PerUserKFold(2, random_state=0), refit=False).fit(data)
    runs = _children(MlflowClient(uri), parent)
    assert len(runs) == 4 and len({r.data.tags["skbpr.cv_search"] for r in runs}) == 2
    assert not any("skbpr.cv_candidate_unverified" in r.data.tags for r in runs)


def test_candidate_digest_refuses_keys_that_are_not_parameters():
    with pytest.raises(ValueError, match=r"keys \['hybridbpr__alpha'\] that are not parameters of HybridBPR"):
        candidate_digest(HybridBPR(), {"hybridbpr__alpha": 0.1})


def test_unreachable_server_falls_back_with_one_warning(data, tmp_path):
    closed = f"http://127.0.0.1:{_free_port()}"
    fallback = f"sqlite:///{tmp_path / 'fallback.db'}"
    callback = MLflowCallback(tracking_uri=closed, fallback_uri=fallback)
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = _fit(data, callback)
    assert time.monotonic() - start < 60
    found = _fallback_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    assert closed in str(found[0].message) and fallback in str(found[0].message)
    assert _fitted().tracking_uri_ == fallback
    run = _check_run(MlflowClient(fallback), _fitted().run_id_, est)
    assert run.data.tags["skbpr.intended_tracking_uri"] == closed
    _check_model(fallback, _fitted().run_id_, est)


class _HalfAliveServer:
    """Answers ``/health`` at once; the API either never answers or trickles its answer a byte at a time."""

    def __init__(self, mode: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stop = self.stop_event = threading.Event()
        self.api_requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                if self.path.rstrip("/") == "/health":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                self._stall()

            do_POST = do_GET  # noqa: N815

            def _stall(self):
                outer.api_requests += 1
                if mode == "trickle":  # each byte well within any socket timeout, the answer never complete
                    answer = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"'
                    for byte in answer + b" " * 100_000:
                        if stop.wait(0.05):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:  # "silent": reads the request, never answers
                    stop.wait(120)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An SQLite tracking store with MLflow's tables and no runs, made once (creating the tables takes seconds)."""
    path = tmp_path_factory.mktemp("empty-store") / "empty.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_half_alive_server_falls_back_after_the_request_deadline(data, tmp_path, monkeypatch, empty_store, mode):
    """Health answers, the API does not (or a byte at a time): the fit moves to the fallback store, bounded."""
    import shutil

    monkeypatch.setenv("SKBPR_TRACKING_DEADLINE", "1")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _HalfAliveServer(mode)
    shutil.copyfile(empty_store, tmp_path / "fallback.db")
    fallback = f"sqlite:///{tmp_path / 'fallback.db'}"
    callback = MLflowCallback(tracking_uri=server.uri, fallback_uri=fallback, log_model=False)
    outcome = {}

    def fit():
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            outcome["est"] = _fit(data, callback)
        outcome["warnings"] = _fallback_warnings(record)

    worker = threading.Thread(target=fit, daemon=True)
    try:
        start = time.monotonic()
        worker.start()
        worker.join(60)  # without a deadline, MLflow waited on such a server for minutes
        assert not worker.is_alive(), f"the fit was still waiting on the {mode} server after 60 s"
        assert time.monotonic() - start < 30
    finally:
        server.close()
    assert server.api_requests >= 1
    found = outcome["warnings"]
    assert len(found) == 1, [str(w.message) for w in found]
    message = str(found[0].message)
    assert f"MLflow tracking at {server.uri} failed" in message
    assert f"to {server.uri} did not complete within 1 s" in message
    assert f"training continues and the run's records (params, metrics so far and to come) go to {fallback}" in message
    assert _fitted().tracking_uri_ == fallback
    run = _check_run(MlflowClient(fallback), _fitted().run_id_, outcome["est"])
    assert run.data.tags["skbpr.intended_tracking_uri"] == server.uri


def test_tracking_deadline_must_be_a_positive_number(monkeypatch):
    from skbpr.tracking.stores import request_deadline

    monkeypatch.delenv("SKBPR_TRACKING_DEADLINE", raising=False)
    assert request_deadline() == 30.0
    monkeypatch.setenv("SKBPR_TRACKING_DEADLINE", "2.5")
    assert request_deadline() == 2.5
    for bad in ("0", "-1", "nan", "soon"):
        monkeypatch.setenv("SKBPR_TRACKING_DEADLINE", bad)
        with pytest.raises(ValueError, match=f"DEADLINE must be a positive number of seconds, got '{bad}'"):
            request_deadline()


@pytest.mark.parametrize("fallback_kind", ["sqlite under a file", "sqlite path is a folder", "folder under a file"])
def test_server_down_and_fallback_unusable_records_nothing_and_says_so(data, tmp_path, fallback_kind):
    (tmp_path / "plain.txt").write_text("a regular file, so nothing can be created under it")
    (tmp_path / "folder.db").mkdir()
    fallback = {
        "sqlite under a file": f"sqlite:///{tmp_path / 'plain.txt' / 'fallback.db'}",
        "sqlite path is a folder": f"sqlite:///{tmp_path / 'folder.db'}",  # MLflow retried opening it for ~100 s
        "folder under a file": str(tmp_path / "plain.txt" / "mlruns"),
    }[fallback_kind]
    closed = f"http://127.0.0.1:{_free_port()}"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    callback = MLflowCallback(tracking_uri=closed, fallback_uri=fallback)
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = _fit(data, callback)
    assert time.monotonic() - start < 30  # generous: a fit of 3 tiny epochs and two probes
    assert len(est.history_) == FAST["epochs"]  # the fit completed
    found = _fallback_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    message = str(found[0].message)
    assert closed in message and fallback in message and "nothing of this run is recorded" in message
    fitted = est.callbacks_[0]
    assert fitted.tracking_uri_ is None and fitted.run_id_ is None and fitted.model_uri_ is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no store created anywhere


def test_server_answering_5xx_counts_as_down(data, tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            self.send_error(503)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}"
        fallback = f"sqlite:///{tmp_path / 'fallback.db'}"
        callback = MLflowCallback(tracking_uri=uri, fallback_uri=fallback, log_model=False)
        with pytest.warns(UserWarning, match="answered HTTP 503"):
            _fit(data, callback, epochs=1)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    fitted = _fitted()
    assert fitted.tracking_uri_ == fallback
    assert MlflowClient(fallback).get_run(fitted.run_id_).data.params["epochs"] == "1"


def test_default_fallback_location(data, tmp_path):
    callback = MLflowCallback(tracking_uri=f"http://127.0.0.1:{_free_port()}", log_model=False)
    with pytest.warns(UserWarning, match="mlflow-fallback.db"):
        _fit(data, callback, epochs=1)
    assert _fitted().tracking_uri_ == f"sqlite:///{tmp_path / 'mlflow-fallback.db'}"
    assert MlflowClient(_fitted().tracking_uri_).get_run(_fitted().run_id_).data.params["epochs"] == "1"


@pytest.mark.slow
def test_server_dying_mid_fit_falls_back_without_losing_records(data, server, tmp_path):
    fallback = f"sqlite:///{tmp_path / 'fallback.db'}"
    callback = MLflowCallback(tracking_uri=server.uri, fallback_uri=fallback)

    def kill_server(estimator, epoch, logs):
        if epoch == 1:
            server.kill()

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = _fit(data, callback, kill_server)
    found = _fallback_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    assert server.uri in str(found[0].message) and fallback in str(found[0].message)
    assert _fitted().tracking_uri_ == fallback
    assert est.predict(PAIRS).shape == (len(PAIRS),)
    run = _check_run(MlflowClient(fallback), _fitted().run_id_, est)
    assert run.data.tags["skbpr.intended_tracking_uri"] == server.uri
    assert "skbpr.intended_run_id" in run.data.tags
    _check_model(fallback, _fitted().run_id_, est)


def test_copies_carry_the_active_run_as_parent(tmp_path):
    import copy
    import pickle

    callback = MLflowCallback()
    assert pickle.loads(pickle.dumps(callback)).parent_run_id is None
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'p.db'}")
    with mlflow.start_run() as run:
        copied, pickled = copy.deepcopy(callback), pickle.loads(pickle.dumps(callback))
    assert copied.parent_run_id == pickled.parent_run_id == run.info.run_id
    assert pickled._parent_uri == mlflow.get_tracking_uri()
    assert callback.parent_run_id is None  # the original is left alone
    with pytest.raises(ValueError, match="nested"):
        MLflowCallback(nested="always")


def test_callback_records_the_beyond_accuracy_metrics_it_asks_for(data, tmp_path):
    from skbpr.metrics import evaluate

    uri = f"sqlite:///{tmp_path / 'beyond.db'}"
    callback = MLflowCallback(tracking_uri=uri, log_model=False, metrics=["coverage@10", "novelty@10", "ild@5"])
    est = _fit(data, callback)
    assert "metrics=['coverage@10', 'novelty@10', 'ild@5']" in repr(callback)
    client = MlflowClient(uri)
    run_id = _fitted().run_id_
    for key in ("val_coverage_at_10", "val_novelty_at_10", "val_ild_at_5"):
        assert len(client.get_metric_history(run_id, key)) == FAST["epochs"], key
    _, test = train_test_split(data, test_size=0.2, random_state=0)
    final = evaluate(est, test, metrics=["coverage@10", "novelty@10", "ild@5"])
    metrics = client.get_run(run_id).data.metrics
    assert metrics["final_val_coverage_at_10"] == pytest.approx(final["coverage@10"])
    assert metrics["final_val_novelty_at_10"] == pytest.approx(final["novelty@10"])
    assert metrics["final_val_ild_at_5"] == pytest.approx(final["ild@5"])
    with pytest.raises(ValueError, match="unknown metric 'covrage@10'"):
        MLflowCallback(metrics=["covrage@10"])
    with pytest.raises(ValueError, match="eval_metric='coverage@10' describes the lists"):
        _fit(data, MLflowCallback(tracking_uri=uri), eval_metric="coverage@10")
