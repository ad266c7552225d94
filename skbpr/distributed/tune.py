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

:func:`run_worker` optimises any Optuna objective; the one of ``skbpr tune``,
built from a YAML configuration, is :class:`skbpr.cli.tune.ConfigObjective`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from skbpr.utils.validation import check_choice, check_number, invalid

__all__ = ["JOURNAL_PREFIX", "create_study", "make_storage", "run_worker"]

JOURNAL_PREFIX = "journal:"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")


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
    skbpr.utils.validation.InvalidParameterError: storage must be 'journal:<path>' or a database URL ..., got 'study.db'
    """
    if not isinstance(url, str) or not url:
        raise invalid("storage", "a storage URL string", url)
    check_number(heartbeat_interval, "heartbeat_interval", integer=True, low=1, allow_none=True)
    check_number(grace_period, "grace_period", integer=True, low=1, allow_none=True)
    check_number(max_retry, "max_retry", integer=True, low=0, allow_none=True)
    if url.startswith(JOURNAL_PREFIX):
        path = url[len(JOURNAL_PREFIX) :]
        if path.startswith("//"):  # journal:///abs/path
            path = path[2:]
        if not path:
            raise invalid("storage", f"a file path after {JOURNAL_PREFIX!r}", url)
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(os.path.abspath(os.path.expanduser(path))))
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        what = "'journal:<path>' or a database URL such as 'sqlite:///study.db' or 'postgresql://user@host/db'"
        raise invalid("storage", what, url)
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

    check_choice(direction, "direction", ("maximize", "minimize"))
    if not isinstance(study_name, str) or not study_name:
        raise invalid("study_name", "a non-empty string", study_name)
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

    check_number(n_trials, "n_trials", integer=True, low=1)
    check_number(seed, "seed", integer=True, low=0, high=2**32 - 1, allow_none=True)
    check_number(timeout, "timeout", low=0, low_open=True, allow_none=True)
    if isinstance(storage, str):
        storage = make_storage(storage, create_tables=False)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return study
