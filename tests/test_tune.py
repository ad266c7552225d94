"""``skbpr tune``: Optuna studies created once and run by several worker processes.

SQLite and journal storages always run; PostgreSQL runs where its server
binaries are installed (the test starts its own server on 127.0.0.1 and
stops it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402

from skbpr.cli import main  # noqa: E402
from skbpr.distributed.tune import create_study, make_storage, run_worker  # noqa: E402

CONFIG = {
    "model": {"n_components": 4},
    "training": {"epochs": 2, "batch_size": 256, "random_state": 0, "n_threads": 1},
    "data": {"source": "synthetic", "n_users": 60, "n_items": 30, "n_interactions": 300, "random_state": 0},
    "mlflow": {"enabled": False},
    "sweep": {"training.loss": ["bpr", "warp", "logistic"], "model.n_components": [4, 8], "cv": 2},
}
WORKER_TIMEOUT = 300


def _config(tmp_path: Path, name: str = "tune.yaml", **sections: dict) -> str:
    config = {key: dict(value) for key, value in CONFIG.items()}
    for section, values in sections.items():
        config[section].update(values)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def _worker(config: str, storage: str, n_trials: int, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "skbpr", "tune", "--worker", "--config", config, "--storage", storage]
    command += ["--study", "s", "--n-trials", str(n_trials), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(procs: list[subprocess.Popen]) -> None:
    outputs = [proc.communicate(timeout=WORKER_TIMEOUT) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-3000:]


def _two_workers_finish_their_trials(tmp_path: Path, storage: str) -> None:
    config = _config(tmp_path)
    assert main(["tune", "--config", config, "--storage", storage, "--study", "s", "--create-only"]) == 0
    _finish([_worker(config, storage, 2, "--seed", "1"), _worker(config, storage, 3, "--seed", "2")])
    study = optuna.load_study(study_name="s", storage=make_storage(storage, heartbeat_interval=None))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3, 4]  # 2 + 3 trials, unique numbers
    assert all(set(t.params) == {"training.loss", "model.n_components"} for t in study.trials)
    assert all(0 < t.value <= 1 for t in study.trials)
    assert study.best_trial.user_attrs["mean_auc"] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_on_a_precreated_study_run_n1_plus_n2_trials(tmp_path, kind):
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'study.log'}"
    _two_workers_finish_their_trials(tmp_path, storage)


@pytest.mark.slow
def test_tune_command_starts_workers_and_prepares_the_mlflow_store(tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _config(tmp_path, mlflow={"enabled": True, "tracking_uri": uri, "experiment_name": "tune"})
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["tune", "--config", config, "--storage", storage, "--n-workers", "2", "--n-trials", "2", "--seed", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 worker process(es) started, 2 trials each" in out and "trials: 4 complete" in out
    assert "best trial " in out
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tune").experiment_id], max_results=100)
    assert len(runs) == 4 * 2  # every fold fit of every trial, none lost
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted({r.info.run_name for r in runs}) == ["trial-0", "trial-1", "trial-2", "trial-3"]
    assert not (tmp_path / "mlflow-fallback.db").exists()


def test_tune_reads_its_configuration_from_a_pipe_and_gives_the_workers_a_copy(tmp_path, capsys):
    """``skbpr tune --config <(...)``: the pipe is read once; the worker processes read a copy of it."""
    import threading

    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    text = Path(_config(tmp_path)).read_text(encoding="utf-8")
    writer = threading.Thread(target=fifo.write_text, args=(text,), daemon=True)
    writer.start()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    try:
        assert main(["tune", "--config", str(fifo), "--storage", storage, "--n-trials", "1", "--seed", "0"]) == 0
    finally:
        if writer.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)
    assert "trials: 1 complete" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="skbpr", storage=storage).trials) == 1


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_killed_worker_trial_becomes_fail_and_is_retried(tmp_path):
    import threading

    import numpy as np
    import pandas as pd

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    beats = ["--heartbeat-interval", "1", "--grace-period", "2"]
    # the trial's data is a pipe: a worker's trial waits on it until the test writes the events, so
    # the first worker's trial runs until it is killed, and the retry, with the same configuration, ends
    os.mkfifo(tmp_path / "events.csv")
    endless = _config(tmp_path, "endless.yaml", data={"source": "file", "path": "events.csv"})
    assert main(["tune", "--config", endless, "--storage", storage, "--study", "s", "--create-only", *beats]) == 0
    observer = make_storage(storage, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="s", storage=observer)
    worker = _worker(endless, storage, 1, *beats)
    try:
        _wait_for(lambda: [t.state for t in study.get_trials()] == [TrialState.RUNNING], 180, "a running trial")
        time.sleep(1.5)  # heartbeats have been recorded
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    assert study.get_trials()[0].state == TrialState.RUNNING  # nothing noticed the death yet
    time.sleep(3)  # past the grace period
    optuna.storages.fail_stale_trials(study)  # what every worker does before a trial
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == trials[0].params
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", optuna.storages.RetryFailedTrialCallback)
    assert retry.retried_trial_number(trials[1]) == 0
    # a live worker with the same configuration runs the queued copy first
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"user_id": rng.integers(0, 60, 500), "item_id": rng.integers(0, 30, 500)})
    text = events.drop_duplicates().to_csv(index=False)
    writer = threading.Thread(target=(tmp_path / "events.csv").write_text, args=(text,), daemon=True)
    writer.start()
    _finish([_worker(endless, storage, 1, *beats)])
    writer.join(timeout=30)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == trials[0].params


def test_tune_errors_exit_2_before_any_work(tmp_path, capsys):
    config = _config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    cases = [
        (["--storage", "study.db"], "--storage 'study.db': storage must be 'journal:<path>' or a database URL"),
        (["--storage", storage, "--n-trials", "0"], "--n-trials: expected an integer >= 1, got 0"),
        (["--storage", storage, "--n-workers", "0"], "--n-workers: expected an integer >= 1, got 0"),
        (["--storage", storage, "--grace-period", "0"], "--grace-period: expected a positive integer, got 0"),
        (["--storage", storage, "--worker", "--study", "missing"], "--study 'missing': no such study"),
    ]
    for extra, message in cases:
        assert main(["tune", "--config", config, *extra]) == 2
        assert message in capsys.readouterr().err
    no_grid = tmp_path / "nogrid.yaml"
    no_grid.write_text(yaml.safe_dump({k: v for k, v in CONFIG.items() if k != "sweep"}), encoding="utf-8")
    assert main(["tune", "--config", str(no_grid), "--storage", storage]) == 2
    assert "sweep: expected at least one searched key" in capsys.readouterr().err


def test_storage_and_worker_functions(tmp_path):
    with pytest.raises(ValueError, match="heartbeat_interval must be an integer >= 1 or None, got 0"):
        make_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat_interval=0)
    with pytest.raises(ValueError, match="max_retry must be an integer >= 0 or None"):
        make_storage(f"sqlite:///{tmp_path / 'x.db'}", max_retry=-1)
    with pytest.raises(ValueError, match="storage must be a file path after 'journal:'"):
        make_storage("journal:")
    storage = make_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat_interval=3, grace_period=7, max_retry=0)
    assert (storage.heartbeat_interval, storage.grace_period, storage.get_heartbeat_stale_trial_callback()) == (
        3,
        7,
        None,
    )
    url = f"journal:{tmp_path / 'j.log'}"
    create_study(url, "f")
    assert len(run_worker(url, "f", lambda trial: trial.suggest_int("x", 0, 3), 2, seed=0).trials) == 2
    run_worker(url, "f", lambda trial: trial.suggest_int("x", 0, 3), 1, seed=1)  # a second worker adds to it
    assert [t.number for t in optuna.load_study(study_name="f", storage=make_storage(url)).trials] == [0, 1, 2]
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        run_worker(url, "f", lambda trial: 0.0, 0)


# --------------------------------------------------------------------------
# PostgreSQL: a private server on 127.0.0.1, started and stopped here
# --------------------------------------------------------------------------
def _postgres_bin() -> Path | None:
    for folder in [os.environ.get("SKBPR_PG_BIN"), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if folder and all(Path(folder, tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    folder = _postgres_bin()
    if folder is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    owner: dict = {}
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the 'postgres' system user
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as (it refuses root)")
        owner = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    base = Path(tempfile.mkdtemp(prefix="skbpr-pg-"))  # under /tmp: reachable by the server's user
    if owner:
        os.chown(base, owner["user"], owner["group"])
    data, port = base / "data", _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(base)}

    def run(*args: str) -> None:
        subprocess.run(args, cwd=base, env=env, check=True, capture_output=True, timeout=120, **owner)

    try:
        run(str(folder / "initdb"), "-D", str(data), "-U", "skbpr", "-A", "trust", "-E", "UTF8", "--no-sync")
    except PermissionError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start processes as the 'postgres' user here ({exc})")
    options = f"-k {base} -h 127.0.0.1 -p {port} -F"
    started = False
    try:
        run(str(folder / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", options,
            "start")  # fmt: skip
        started = True
        yield f"postgresql+psycopg2://skbpr@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_postgresql(tmp_path, postgres_url):
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    with engine.connect() as connection:  # the server listens where the test put it, and only there
        assert connection.execute(sqlalchemy.text("show listen_addresses")).scalar() == "127.0.0.1"
    engine.dispose()
    _two_workers_finish_their_trials(tmp_path, postgres_url)


def test_the_objective_needs_a_searched_key_like_the_commands():
    from skbpr.cli.config import ConfigError, validate_config
    from skbpr.cli.tune import ConfigObjective

    with pytest.raises(ConfigError, match=r"sweep: expected at least one searched key .*got none"):
        ConfigObjective(validate_config({"training": {"epochs": 2}}))


def _missing_driver_url() -> str:
    import importlib.util

    for module, url in (("MySQLdb", "mysql://u@127.0.0.1/db"), ("pymssql", "mssql+pymssql://u@127.0.0.1/db")):
        if importlib.util.find_spec(module) is None:
            return url
    pytest.skip("every candidate database driver is installed")


def test_storage_with_a_missing_folder_or_driver_exits_2_naming_storage_before_any_work(tmp_path, capsys):
    config = _config(tmp_path)
    missing = tmp_path / "nonexistent" / "dir"
    url = _missing_driver_url()
    cases = [
        (f"sqlite:///{missing / 'x.db'}", f"create {str(missing)!r} first"),
        (f"journal:{missing / 'x.log'}", f"create {str(missing)!r} first"),
        (url, "driver is installed"),
    ]
    for storage, fix in cases:
        for role in ([], ["--create-only"], ["--worker"]):
            assert main(["tune", "--config", config, "--storage", storage, *role]) == 2, storage
            err = capsys.readouterr().err
            assert err.startswith(f"skbpr: error: --storage {storage!r}: storage must be a"), err
            assert fix in err and "Traceback" not in err, err
    assert "pip install 'mysqlclient'" in err or "pip install 'pymssql'" in err
    assert not (tmp_path / "nonexistent").exists()
    with pytest.raises(ValueError, match=r"storage must be a database URL whose driver is installed"):
        make_storage(url)


def test_a_worker_with_another_configuration_exits_2_naming_the_keys(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    config = _config(tmp_path)
    assert main(["tune", "--config", config, "--storage", storage, "--study", "s", "--create-only"]) == 0
    capsys.readouterr()
    other = _config(tmp_path, "other.yaml", data={"random_state": 1}, sweep={"training.loss": ["bpr"]})
    for role in (["--worker"], ["--create-only"], []):
        assert main(["tune", "--config", other, "--storage", storage, "--study", "s", *role]) == 2
        err = capsys.readouterr().err
        assert f"--config {other!r} / --study 's': study 's' was created for another configuration" in err
        assert "data.random_state is 0 in the study, 1 here" in err
        assert 'sweep.training.loss is ["bpr", "warp", "logistic"] in the study, ["bpr"] here' in err
        assert "model.n_components" not in err
    study = optuna.load_study(study_name="s", storage=storage)
    assert study.trials == []  # nothing of the other configuration ran
    # the same configuration passes; tracking settings are not part of it
    same = _config(tmp_path, "same.yaml", mlflow={"enabled": False, "experiment_name": "elsewhere"})
    assert main(["tune", "--config", same, "--storage", storage, "--study", "s", "--worker", "--n-trials", "1"]) == 0
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1


def test_create_study_and_run_worker_check_the_configuration(tmp_path):
    from skbpr.distributed.tune import StudyConfigError

    url = f"journal:{tmp_path / 'j.log'}"
    create_study(url, "c", config={"space": {"x": [0, 3]}})
    with pytest.raises(StudyConfigError, match=r"space\.x is \[0, 3\] in the study, \[0, 4\] here"):
        run_worker(url, "c", lambda trial: trial.suggest_int("x", 0, 4), 1, config={"space": {"x": [0, 4]}})
    with pytest.raises(StudyConfigError, match=r"space\.y is \(absent\) in the study, 1 here"):
        create_study(url, "c", config={"space": {"x": [0, 3], "y": 1}})
    assert optuna.load_study(study_name="c", storage=make_storage(url)).trials == []
    assert len(run_worker(url, "c", lambda t: t.suggest_int("x", 0, 3), 1, config={"space": {"x": [0, 3]}}).trials) == 1
