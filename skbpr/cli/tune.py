"""The ``tune`` command: an Optuna study over the sweep section's choices, run by worker processes.

:class:`ConfigObjective` is the objective every worker optimises; the
storage, study and worker helpers it runs on are
:mod:`skbpr.distributed.tune`. Nothing heavy is imported at the top, so that
``skbpr --help`` stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skbpr.cli.config import load_config
from skbpr.cli.errors import CommandLineError
from skbpr.cli.fitting import load_data, split_data
from skbpr.cli.output import print_table, quiet_mlflow, say, tracking_available, warn
from skbpr.cli.sweep import require_searched_keys

__all__ = ["DEFAULT_STUDY", "ConfigObjective", "add_tune_parser", "cmd_tune"]

DEFAULT_STUDY = "skbpr"


def add_tune_parser(sub: Any, epilog: str) -> None:
    p = sub.add_parser(
        "tune",
        help="Optuna study over the sweep section's choices, run by several worker processes",
        description=textwrap.fill(
            "Create the study once in the storage, then run --n-workers worker processes against it "
            "(each runs --n-trials trials). On a cluster: 'skbpr tune --create-only' once, then "
            "'skbpr tune --worker' on every machine with the same --storage and --study. The search space "
            "is the sweep section's searched keys, as categorical choices. The study records the "
            "configuration it was created with and refuses workers with another one; see docs/scaling.md.",
            width=96,
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="YAML configuration with a sweep section (the choices)")
    p.add_argument(
        "--storage",
        required=True,
        help="Optuna storage: a database URL (postgresql://user@host/db, sqlite:///study.db) or "
        "journal:PATH (a journal file on a shared file system; no heartbeats there)",
    )
    p.add_argument("--study", default=DEFAULT_STUDY, help=f"study name (default {DEFAULT_STUDY!r})")
    p.add_argument("--n-trials", type=int, default=10, help="trials per worker (default 10)")
    p.add_argument("--n-workers", type=int, default=1, help="worker processes to start (default 1)")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--create-only", action="store_true", help="create the study and exit")
    role.add_argument("--worker", action="store_true", help="run trials in this process on an existing study")
    p.add_argument("--heartbeat-interval", type=int, default=60, help="seconds between heartbeats (default 60)")
    p.add_argument(
        "--grace-period", type=int, default=None, help="seconds without heartbeat before a trial fails (default 2x)"
    )
    p.add_argument("--max-retry", type=int, default=3, help="retries of a dead worker's trial (default 3)")
    p.add_argument("--seed", type=int, default=None, help="sampler seed; worker i uses seed + i")
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    p.set_defaults(func=cmd_tune)


def _check_tune_args(args: argparse.Namespace) -> None:
    for option, value, low in (
        ("--n-trials", args.n_trials, 1),
        ("--n-workers", args.n_workers, 1),
        ("--heartbeat-interval", args.heartbeat_interval, 1),
        ("--max-retry", args.max_retry, 0),
    ):
        if value < low:
            raise CommandLineError(f"{option}: expected an integer >= {low}, got {value}")
    if args.grace_period is not None and args.grace_period < 1:
        raise CommandLineError(f"--grace-period: expected a positive integer, got {args.grace_period}")
    if args.timeout is not None and not args.timeout > 0:
        raise CommandLineError(f"--timeout: expected a positive number of seconds, got {args.timeout}")
    if not args.study:
        raise CommandLineError("--study: expected a non-empty study name")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise CommandLineError(f"--seed: expected an integer in [0, 2**31), got {args.seed}")


def _storage(args: argparse.Namespace, *, create_tables: bool) -> Any:
    from skbpr.distributed.tune import make_storage

    try:
        return make_storage(
            args.storage,
            heartbeat_interval=args.heartbeat_interval,
            grace_period=args.grace_period,
            max_retry=args.max_retry,
            create_tables=create_tables,
        )
    except ValueError as exc:
        raise CommandLineError(f"--storage {args.storage!r}: {exc}") from None


def _tracking_uri(config: Any) -> str | None:
    """The MLflow store of the trials' fits, its schema created here (before workers open it)."""
    if not tracking_available(config):
        return None
    import mlflow

    from skbpr.tracking.shared_store import prepare_tracking_store
    from skbpr.tracking.stores import absolute_uri

    quiet_mlflow()
    uri = absolute_uri(config["mlflow"]["tracking_uri"] or mlflow.get_tracking_uri())
    try:
        return prepare_tracking_store(uri)
    except Exception as exc:  # noqa: BLE001 - tuning goes on; each fit falls back on its own
        warn(f"could not prepare the MLflow store {uri}: {exc}")
        return uri


def cmd_tune(args: argparse.Namespace) -> int:
    import optuna

    _check_tune_args(args)
    config = load_config(args.config)
    require_searched_keys(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.worker:
        return _run_worker(args, config)
    storage = _storage(args, create_tables=True)
    study = _create(storage, args, config)
    say(f"study {args.study!r} ready in {args.storage} ({len(study.trials)} trials so far)")
    _tracking_uri(config)  # the MLflow store's schema exists before any worker opens it
    if args.create_only:
        return 0
    with _config_file_for_workers(args, config) as path:
        procs = [subprocess.Popen(_worker_command(args, i, path)) for i in range(args.n_workers)]
        say(f"{args.n_workers} worker process(es) started, {args.n_trials} trials each")
        codes = [proc.wait() for proc in procs]
    study = optuna.load_study(study_name=args.study, storage=storage)
    _summarise(study)
    failed = [i for i, code in enumerate(codes) if code != 0]
    if failed:
        raise CommandLineError(f"--n-workers: worker(s) {failed} exited with status {[codes[i] for i in failed]}")
    return 0


def study_config(config: Any) -> dict[str, Any]:
    """What decides a trial's value, recorded in the study: every section but ``mlflow`` and the scheduler.

    Workers started with another configuration (another data split, search
    space, fixed parameter, fold count or metric) are refused by
    :func:`skbpr.distributed.tune.check_study_config`.
    """
    out = config.to_dict()
    out.pop("mlflow", None)
    out["sweep"].pop("scheduler", None)
    return out


def _check_config(args: argparse.Namespace, call: Any) -> Any:
    from skbpr.distributed.tune import StudyConfigError

    try:
        return call()
    except StudyConfigError as exc:
        raise CommandLineError(f"--config {args.config!r} / --study {args.study!r}: {exc}") from None


def _create(storage: Any, args: argparse.Namespace, config: Any) -> Any:
    from skbpr.distributed.tune import create_study

    return _check_config(
        args, lambda: create_study(storage, args.study, direction="maximize", config=study_config(config))
    )


@contextlib.contextmanager
def _config_file_for_workers(args: argparse.Namespace, config: Any) -> Iterator[str]:
    """The configuration file the workers read: ``--config``, or a copy when it is a pipe read once already."""
    if Path(args.config).is_file():
        yield str(Path(args.config).resolve())
        return
    import yaml

    with tempfile.TemporaryDirectory(prefix="skbpr-tune-") as folder:  # data.path is absolute in the copy
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
        yield str(path)


def _worker_command(args: argparse.Namespace, index: int, config_path: str) -> list[str]:
    command = [sys.executable, "-m", "skbpr", "tune", "--worker", "--config", config_path]
    command += ["--storage", args.storage, "--study", args.study, "--n-trials", str(args.n_trials)]
    command += ["--heartbeat-interval", str(args.heartbeat_interval), "--max-retry", str(args.max_retry)]
    if args.grace_period is not None:
        command += ["--grace-period", str(args.grace_period)]
    if args.seed is not None:
        command += ["--seed", str(args.seed + index)]
    if args.timeout is not None:
        command += ["--timeout", str(args.timeout)]
    return command


def _run_worker(args: argparse.Namespace, config: Any) -> int:
    import optuna

    from skbpr.distributed.tune import run_worker

    try:  # the study, and so the storage's tables, must exist: workers never create them
        storage = _storage(args, create_tables=False)
        study = optuna.load_study(study_name=args.study, storage=storage)
    except CommandLineError:
        raise
    except Exception as exc:  # noqa: BLE001 - KeyError, or the database's "no such table"
        raise CommandLineError(
            f"--study {args.study!r}: no such study in {args.storage} ({type(exc).__name__}); create it first: "
            "skbpr tune --create-only"
        ) from None
    from skbpr.distributed.tune import check_study_config

    _check_config(args, lambda: check_study_config(study, study_config(config)))  # before any trial
    tracking = _tracking_uri(config)
    run_worker(
        storage, args.study, ConfigObjective(config, tracking), args.n_trials, seed=args.seed, timeout=args.timeout
    )
    say(f"worker {os.getpid()}: {args.n_trials} trials run on study {args.study!r}")
    return 0


def _summarise(study: Any) -> None:
    from optuna.trial import TrialState

    counts = {state.name: sum(t.state == state for t in study.trials) for state in TrialState}
    say("trials: " + ", ".join(f"{n} {name.lower()}" for name, n in counts.items() if n))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        return
    rows = [{"trial": t.number, **t.params, "value": t.value} for t in sorted(complete, key=lambda t: -t.value)[:10]]
    print_table(rows, ["trial", *study.best_trial.params, "value"])
    say(f"best trial {study.best_trial.number}: value {study.best_value:.4f}, {study.best_params}")


class ConfigObjective:
    """The objective of ``skbpr tune``: cross-validated score of a configuration's candidates.

    Each searched key of the ``sweep`` section (``training.loss: [bpr,
    warp]``) is a categorical choice named by its dotted key; the trial's
    value is the mean over ``sweep.cv`` per-user folds of the train split of
    the first ``sweep.scoring`` metric (the others are stored as the trial's
    user attributes ``mean_<metric>``).

    Parameters
    ----------
    config : skbpr.config.Config
        A validated configuration with at least one searched key.
    tracking_uri : str or None, default=None
        Record every fold fit with :class:`skbpr.callbacks.MLflowCallback`
        in this store (prepared beforehand; see
        :func:`skbpr.distributed.stores.prepare_tracking_store`); ``None``:
        no tracking.

    Examples
    --------
    >>> import optuna
    >>> from skbpr.config import validate_config
    >>> from skbpr.cli.tune import ConfigObjective
    >>> config = validate_config({
    ...     "data": {"n_users": 60, "n_items": 40, "n_interactions": 400},
    ...     "training": {"epochs": 2, "n_threads": 1},
    ...     "sweep": {"training.loss": ["bpr", "warp"], "cv": 2, "scoring": ["ndcg@5"]},
    ... })
    >>> study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study.optimize(ConfigObjective(config), n_trials=2)
    >>> sorted(study.trials[0].params), 0 <= study.best_value <= 1
    (['training.loss'], True)
    """

    def __init__(self, config: Any, tracking_uri: str | None = None) -> None:
        require_searched_keys(config)
        self.config = config
        self.tracking_uri = tracking_uri
        self._train: Any = None

    def _data(self) -> Any:
        if self._train is None:
            self._train = split_data(self.config, load_data(self.config))[0]
        return self._train

    def __call__(self, trial: Any) -> float:
        from sklearn.model_selection import cross_validate

        from skbpr.evaluation.scorers import make_ranking_scorer
        from skbpr.evaluation.splitters import PerUserKFold
        from skbpr.models.hybrid import HybridBPR
        from skbpr.tracking.callbacks import MLflowCallback

        config = self.config
        overrides = {key: trial.suggest_categorical(key, values) for key, values in config.grid.items()}
        callbacks = None
        if self.tracking_uri is not None:
            m = config["mlflow"]
            callbacks = [
                MLflowCallback(
                    tracking_uri=self.tracking_uri,
                    experiment_name=m["experiment_name"],
                    run_name=f"trial-{trial.number}",
                    log_model=False,
                    fallback_uri=m["fallback_uri"],
                )
            ]
        estimator = HybridBPR(**config.estimator_params(overrides), callbacks=callbacks)
        folds = PerUserKFold(config["sweep"]["cv"], random_state=config["data"]["random_state"])
        scoring = {name: make_ranking_scorer(name) for name in config.scoring}
        results = cross_validate(estimator, self._data(), cv=folds, scoring=scoring)
        for name in config.scoring[1:]:
            trial.set_user_attr(f"mean_{name}", float(results[f"test_{name}"].mean()))
        return float(results[f"test_{config.scoring[0]}"].mean())
