"""Optuna studies shared by many worker processes, on one machine or many.

The pattern: create the study (and its storage's schema) **once**, then start
any number of workers that load it and run trials. Workers that all start on
a fresh storage race to create its tables and one of them dies; a study
created beforehand avoids that.

Storages (:func:`make_storage`):

- an RDB URL (``postgresql://user@host/db`` on a cluster, ``sqlite:///x.db``
  on one machine) with heartbeats: every running trial records a heartbeat
  each ``heartbeat_interval`` seconds; a trial whose worker died (killed,
  machine lost) has none for ``grace_period`` seconds and is marked ``FAIL``
  by the next worker that starts a trial, and
  :class:`optuna.storages.RetryFailedTrialCallback` queues a copy of it so
  that its parameters are tried again (at most ``max_retry`` times);
- ``journal:<path>``: an append-only journal file
  (:class:`optuna.storages.journal.JournalFileBackend`) on a shared file
  system, no database needed. Journal storages have no heartbeats: a
  killed worker's trial stays ``RUNNING``.

:class:`ConfigObjective` is the objective of ``skbpr tune``: the searched
keys of the configuration's ``sweep`` section become categorical choices and
a trial's value is the mean cross-validated score of the first
``sweep.scoring`` metric on the per-user train split.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

__all__ = ["JOURNAL_PREFIX", "ConfigObjective", "create_study", "make_storage", "run_worker"]

JOURNAL_PREFIX = "journal:"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")


def _check_positive_int(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name}: expected a positive integer (seconds) or None, got {value!r}")


def make_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    create_tables: bool = True,
) -> Any:
    """The Optuna storage named by ``url``, with heartbeats for a database.

    Parameters
    ----------
    url : str
        ``journal:<path>`` for a journal file (relative paths are made
        absolute), else an SQLAlchemy database URL (``sqlite:///study.db``,
        ``postgresql://user:password@host:5432/db``).
    heartbeat_interval : int or None, default=60
        Seconds between the heartbeats of a running trial (databases only);
        ``None`` turns heartbeats, and so the failing of dead workers'
        trials, off.
    grace_period : int or None, default=None
        Seconds without a heartbeat after which a running trial counts as
        dead; ``None``: twice ``heartbeat_interval`` (Optuna's default).
    max_retry : int or None, default=3
        How many times a dead worker's trial is queued again; ``None``
        retries without limit, ``0`` never.
    create_tables : bool, default=True
        Create the database's tables when missing. Workers of a study that
        was created beforehand pass ``False`` (where Optuna supports it), so
        that none of them writes to the schema.

    Returns
    -------
    optuna.storages.BaseStorage

    Raises
    ------
    ValueError
        For a URL that is neither ``journal:<path>`` nor a database URL, or a
        heartbeat setting that is not a positive integer.

    Examples
    --------
    >>> import os, tempfile
    >>> from skbpr.distributed.tune import make_storage
    >>> folder = tempfile.mkdtemp()
    >>> storage = make_storage("sqlite:///" + os.path.join(folder, "study.db"), heartbeat_interval=5)
    >>> type(storage).__name__, storage.heartbeat_interval, storage.grace_period
    ('RDBStorage', 5, None)
    >>> type(make_storage("journal:" + os.path.join(folder, "study.log"))).__name__
    'JournalStorage'
    >>> make_storage("study.db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: storage: expected 'journal:<path>' or a database URL such as ..., got 'study.db'
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"storage: expected a storage URL string, got {url!r}")
    _check_positive_int("heartbeat_interval", heartbeat_interval)
    _check_positive_int("grace_period", grace_period)
    if max_retry is not None and (isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0):
        raise ValueError(f"max_retry: expected a non-negative integer or None, got {max_retry!r}")
    if url.startswith(JOURNAL_PREFIX):
        path = url[len(JOURNAL_PREFIX) :]
        if path.startswith("//"):  # journal:///abs/path
            path = path[2:]
        if not path:
            raise ValueError(f"storage: expected a file path after {JOURNAL_PREFIX!r}, got {url!r}")
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(os.path.abspath(os.path.expanduser(path))))
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        raise ValueError(
            "storage: expected 'journal:<path>' or a database URL such as 'sqlite:///study.db' or "
            f"'postgresql://user@host/db', got {url!r}"
        )
    import warnings

    import optuna
    from optuna.storages import RDBStorage

    kwargs: dict[str, Any] = {}
    if scheme == "sqlite":  # concurrent workers: wait for the lock rather than fail at once
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    accepted = inspect.signature(RDBStorage).parameters
    if not create_tables and "skip_table_creation" in accepted:
        kwargs["skip_table_creation"] = True
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval is not None:
            kwargs["heartbeat_interval"] = heartbeat_interval
            kwargs["grace_period"] = grace_period
            if max_retry != 0:
                # Optuna 4.9 renamed RetryFailedTrialCallback and failed_trial_callback
                # (the old names still work, with a FutureWarning)
                if "heartbeat_stale_trial_callback" in accepted:
                    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                    kwargs["heartbeat_stale_trial_callback"] = retry
                else:
                    kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)
        return RDBStorage(url, **kwargs)


def create_study(storage: Any, study_name: str, *, direction: str = "maximize") -> Any:
    """Create the study (and the storage's tables) once, before any worker starts; load it if it exists.

    Parameters
    ----------
    storage : str or optuna.storages.BaseStorage
        A storage or a URL for :func:`make_storage`.
    study_name : str
        Name the workers will load the study by.
    direction : {"maximize", "minimize"}, default="maximize"

    Returns
    -------
    optuna.Study

    Examples
    --------
    >>> import os, tempfile
    >>> from skbpr.distributed.tune import create_study
    >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "study.db")
    >>> create_study(url, "demo").study_name, len(create_study(url, "demo").trials)
    ('demo', 0)
    """
    import optuna

    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction: expected 'maximize' or 'minimize', got {direction!r}")
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name: expected a non-empty string, got {study_name!r}")
    if isinstance(storage, str):
        storage = make_storage(storage)
    return optuna.create_study(storage=storage, study_name=study_name, direction=direction, load_if_exists=True)


def run_worker(
    storage: Any,
    study_name: str,
    objective: Callable[[Any], float],
    n_trials: int,
    *,
    seed: int | None = None,
    timeout: float | None = None,
) -> Any:
    """Load an existing study and run ``n_trials`` trials of ``objective`` in this process.

    Start one such worker per process or machine, all on the same storage
    and study name. Trials queued by the retry callback (a dead worker's
    trials) are run first.

    Parameters
    ----------
    storage : str or optuna.storages.BaseStorage
        A storage or a URL for :func:`make_storage` (tables are then not
        created: the study must exist).
    study_name : str
        A study made by :func:`create_study`.
    objective : callable
        ``objective(trial) -> float``.
    n_trials : int
        Trials this worker runs.
    seed : int or None, default=None
        Seed of this worker's TPE sampler; give each worker its own.
    timeout : float or None, default=None
        Stop starting trials after this many seconds.

    Returns
    -------
    optuna.Study

    Raises
    ------
    KeyError
        When the storage holds no study of that name (Optuna's error).

    Examples
    --------
    >>> import os, tempfile
    >>> from skbpr.distributed.tune import create_study, run_worker
    >>> url = "journal:" + os.path.join(tempfile.mkdtemp(), "study.log")
    >>> _ = create_study(url, "demo")
    >>> study = run_worker(url, "demo", lambda trial: trial.suggest_float("x", 0, 1), 3, seed=0)
    >>> sorted(t.number for t in study.trials)
    [0, 1, 2]
    """
    import optuna

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials: expected a positive integer, got {n_trials!r}")
    if isinstance(storage, str):
        storage = make_storage(storage, create_tables=False)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return study


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
    >>> from skbpr.distributed.tune import ConfigObjective
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
        if not config.grid:
            raise ValueError("sweep: expected at least one searched key such as 'training.loss: [bpr, warp]', got none")
        self.config = config
        self.tracking_uri = tracking_uri
        self._train: Any = None

    def _data(self) -> Any:
        if self._train is None:
            from skbpr.cli.commands import load_data, split_data

            self._train = split_data(self.config, load_data(self.config))[0]
        return self._train

    def __call__(self, trial: Any) -> float:
        from sklearn.model_selection import cross_validate

        from skbpr import HybridBPR
        from skbpr.evaluation.scorers import make_ranking_scorer
        from skbpr.evaluation.splitters import PerUserKFold

        config = self.config
        overrides = {key: trial.suggest_categorical(key, values) for key, values in config.grid.items()}
        callbacks = None
        if self.tracking_uri is not None:
            from skbpr.callbacks import MLflowCallback

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
