"""MLflow tracking stores that many processes write to at once.

MLflow creates a database store's tables (and runs its migrations) the
first time a process opens it. Worker processes that all open a fresh
SQLite or PostgreSQL store at once race through that creation and some of
them fail (``duplicate column name: step``, ``table alembic_version already
exists``). :func:`prepare_tracking_store` opens the store once, in the
process that is about to start the workers, so that they find the schema in
place. ``skbpr sweep`` and ``skbpr tune`` call it before starting their
workers, and :class:`skbpr.callbacks.MLflowCallback` calls it whenever it is
copied or pickled for workers (scikit-learn searches, Dask).

On a cluster, prefer a tracking server (``mlflow server
--backend-store-uri postgresql://...``) that all workers reach over HTTP:
only the server then touches the database. See ``docs/scaling.md``.
"""

from __future__ import annotations

import threading

from skbpr.tracking.stores import absolute_uri, probe, retry_locked

__all__ = ["is_database_uri", "prepare_quietly", "prepare_tracking_store"]

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")

_PREPARED: set[str] = set()
_FAILED: set[str | None] = set()
_LOCK = threading.Lock()


def is_database_uri(uri: str) -> bool:
    """Whether ``uri`` names a database store that MLflow opens directly (SQLAlchemy).

    Examples
    --------
    >>> from skbpr.tracking.shared_store import is_database_uri
    >>> is_database_uri("sqlite:///mlflow.db"), is_database_uri("postgresql+psycopg2://u@h/db")
    (True, True)
    >>> is_database_uri("http://mlflow:5000"), is_database_uri("./mlruns")
    (False, False)
    """
    if not isinstance(uri, str) or "://" not in uri:
        return False
    return uri.split("://", 1)[0].split("+", 1)[0].lower() in DATABASE_SCHEMES


def prepare_tracking_store(uri: str) -> str:
    """Create a database store's schema now, once per process, before workers open it.

    Parameters
    ----------
    uri : str
        MLflow tracking URI. A relative ``sqlite:///`` path is made
        absolute. Other stores (a tracking server, a folder) are returned
        untouched: they have no schema to race on.

    Returns
    -------
    str
        The URI as the workers should use it (absolute).

    Raises
    ------
    OSError
        When a local SQLite file cannot be written or created.
    Exception
        MLflow's or SQLAlchemy's error when the database cannot be opened.

    Examples
    --------
    >>> import os, sqlite3, tempfile
    >>> from skbpr.tracking.shared_store import prepare_tracking_store
    >>> path = os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> uri = prepare_tracking_store("sqlite:///" + path)
    >>> tables = {row[0] for row in sqlite3.connect(path).execute("select name from sqlite_master")}
    >>> {"experiments", "runs", "metrics", "alembic_version"} <= tables
    True
    """
    uri = absolute_uri(uri)
    if not is_database_uri(uri):
        return uri
    with _LOCK:
        if uri in _PREPARED:
            return uri
        from mlflow.tracking import MlflowClient

        probe(uri)  # an unwritable SQLite file fails here at once, not after MLflow's retries

        retry_locked(lambda: MlflowClient(uri).search_experiments(max_results=1))
        _PREPARED.add(uri)
    return uri


def prepare_quietly(uri: str | None) -> None:
    """:func:`prepare_tracking_store` (``None``: MLflow's current URI), ignoring every failure.

    A store that cannot be opened is the business of the run that uses it
    (its fallback store and its warning), not of the copy that calls this.
    """
    try:
        if not uri:
            import mlflow

            uri = mlflow.get_tracking_uri()
        if uri in _FAILED:
            return
        prepare_tracking_store(uri)
    except Exception:  # noqa: BLE001 - copying a callback must never fail
        _FAILED.add(uri)  # tried once per process: a dead store must not slow every copy
