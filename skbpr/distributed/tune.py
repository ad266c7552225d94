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

import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from skbpr.utils.validation import check_choice, check_number, invalid

__all__ = [
    "CONFIG_ATTR",
    "JOURNAL_PREFIX",
    "StudyConfigError",
    "check_study_config",
    "create_study",
    "make_storage",
    "run_worker",
]

JOURNAL_PREFIX = "journal:"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
# the study's user attributes that hold the configuration its trials run (canonical JSON) and its digest
CONFIG_ATTR = "skbpr_config"
DIGEST_ATTR = "skbpr_config_sha256"


class StudyConfigError(ValueError):
    """A study created for another configuration; the message names the keys that differ."""


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
        For a URL that is neither ``journal:<path>`` nor a database URL, a
        database whose driver is not installed, a journal or SQLite file whose
        folder is missing or not writable, or a heartbeat setting that is not
        a positive integer; checked before anything is created.

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

        path = os.path.abspath(os.path.expanduser(path))
        _check_folder(os.path.dirname(path), url)
        return JournalStorage(JournalFileBackend(path))
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        what = "'journal:<path>' or a database URL such as 'sqlite:///study.db' or 'postgresql://user@host/db'"
        raise invalid("storage", what, url)
    _check_database_url(url, scheme)
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


# pip packages of the database drivers SQLAlchemy names by default or by "+driver"
_DRIVER_PACKAGES = {
    "mysqldb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysqlconnector": "mysql-connector-python",
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


def _check_folder(folder: str, url: str) -> None:
    """The folder of a storage file exists and is writable, or an error naming ``storage`` and the fix."""
    if not os.path.isdir(folder):
        what = f"a file in an existing folder (create {folder!r} first: mkdir -p {folder})"
        raise invalid("storage", what, url)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise invalid("storage", f"a file in a writable folder ({folder!r} is not writable)", url)


def _check_database_url(url: str, scheme: str) -> None:
    """A database URL SQLAlchemy can open: its driver installed, an SQLite file's folder there.

    Checked before any connection, so that a missing driver or folder is one
    error naming ``storage`` instead of a database library's traceback.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise invalid("storage", f"a database URL SQLAlchemy can read ({exc})", url) from None
    load = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # SQLAlchemy 2 / 1.4
    try:
        load()
    except ImportError as exc:
        driver = parsed.get_driver_name()
        package = _DRIVER_PACKAGES.get(driver.lower(), driver)
        what = (
            f"a database URL whose driver is installed ({scheme} uses {driver!r}: {exc}); "
            f"install it with pip install {package!r}, or name an installed driver as {scheme}+<driver>://"
        )
        raise invalid("storage", what, url) from None
    database = parsed.database
    if scheme == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        _check_folder(os.path.dirname(os.path.abspath(os.path.expanduser(database))), url)


def _canonical(config: Mapping[str, Any]) -> str:
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise invalid("config", f"a mapping of JSON values ({exc})", config, shown=type(config).__name__) from None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def check_study_config(study: Any, config: Mapping[str, Any]) -> None:
    """Record ``config`` in a study that holds none; refuse a study that holds another one.

    The configuration (everything that decides a trial's value: the search
    space, the data, the fixed parameters, the folds and the metric) is kept
    as canonical JSON in the study's user attribute :data:`CONFIG_ATTR`, with
    its SHA-256 digest beside it, so that a worker started with another
    configuration cannot mix its trials into the study.

    Parameters
    ----------
    study : optuna.Study
    config : mapping
        Nested mapping of JSON values (str keys, numbers, strings, lists).

    Raises
    ------
    StudyConfigError
        A ``ValueError`` naming the study, both digests and every dotted key
        whose value differs, with both values.

    Examples
    --------
    >>> import optuna
    >>> from skbpr.distributed.tune import check_study_config
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(study_name="demo")
    >>> check_study_config(study, {"data": {"seed": 0}, "space": {"loss": ["bpr", "warp"]}})
    >>> try:  # doctest: +ELLIPSIS
    ...     check_study_config(study, {"data": {"seed": 1}, "space": {"loss": ["bpr", "warp"]}})
    ... except ValueError as exc:
    ...     print(exc)
    study 'demo' was created for another configuration ...: data.seed is 0 in the study, 1 here. Use ...
    """
    text = _canonical(config)
    digest = hashlib.sha256(text.encode()).hexdigest()
    attrs = study.user_attrs
    if DIGEST_ATTR not in attrs:  # a new study, or one made without a configuration: it takes this one
        study.set_user_attr(CONFIG_ATTR, text)
        study.set_user_attr(DIGEST_ATTR, digest)
        return
    if attrs[DIGEST_ATTR] == digest:
        return
    try:
        stored = _flatten(json.loads(attrs.get(CONFIG_ATTR, "{}")))
    except ValueError:
        stored = {}
    given = _flatten(json.loads(text))

    def shown(values: dict[str, Any], key: str) -> str:
        return json.dumps(values[key]) if key in values else "(absent)"

    differ = [
        f"{key} is {shown(stored, key)} in the study, {shown(given, key)} here"
        for key in sorted(set(stored) | set(given))
        if key not in stored or key not in given or stored[key] != given[key]
    ]
    raise StudyConfigError(
        f"study {study.study_name!r} was created for another configuration (sha256 {attrs[DIGEST_ATTR][:12]}, "
        f"this one {digest[:12]}), and mixing their trials would mix two searches: "
        f"{'; '.join(differ) or 'the stored configuration is unreadable'}. Use the study's configuration, "
        "or another study name (--study)"
    )


def create_study(
    storage: Any, study_name: str, *, direction: str = "maximize", config: Mapping[str, Any] | None = None
) -> Any:
    """Create the study (and the storage's tables) once, before any worker starts; load it if it exists.

    Parameters
    ----------
    storage : str or optuna.storages.BaseStorage
        A storage or a URL for :func:`make_storage`.
    study_name : str
        Name the workers will load the study by.
    direction : {"maximize", "minimize"}, default="maximize"
    config : mapping or None, default=None
        The configuration the trials run (see :func:`check_study_config`):
        recorded in a new study, and checked against an existing one.

    Returns
    -------
    optuna.Study

    Raises
    ------
    StudyConfigError
        When the existing study was created for another ``config``.

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
    study = optuna.create_study(storage=storage, study_name=study_name, direction=direction, load_if_exists=True)
    if config is not None:
        check_study_config(study, config)
    return study


def run_worker(
    storage: Any,
    study_name: str,
    objective: Callable[[Any], float],
    n_trials: int,
    *,
    seed: int | None = None,
    timeout: float | None = None,
    config: Mapping[str, Any] | None = None,
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
    config : mapping or None, default=None
        The configuration ``objective`` runs: checked against the one the
        study was created for (:func:`check_study_config`) before any trial.

    Returns
    -------
    optuna.Study

    Raises
    ------
    KeyError
        When the storage holds no study of that name (Optuna's error).
    StudyConfigError
        When the study was created for another ``config``.

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
    if config is not None:
        check_study_config(study, config)
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return study
