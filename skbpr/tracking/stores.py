"""Tracking-store helpers: URIs, reachability probes, short HTTP settings, retries on a locked store."""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import math
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

# Short network settings for HTTP stores: a dead server must not stall training.
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
PROBE_TIMEOUT = 2.0
# Total seconds one request to a tracking server may take, retries and a body
# trickling in included (MLflow's own timeout bounds each socket read only).
REQUEST_DEADLINE = 30.0
DEADLINE_VARIABLE = "SKBPR_TRACKING_DEADLINE"
LOCK_RETRIES = 10
FALLBACK_NAME = "mlflow-fallback.db"

_ENV_LOCK = threading.RLock()
_INVALID_KEY = re.compile(r"[^\w.\- /:]")


def default_fallback_uri() -> str:
    """``sqlite:///<cwd>/mlflow-fallback.db`` (absolute, so worker processes agree)."""
    return "sqlite:///" + os.path.abspath(FALLBACK_NAME)


def absolute_uri(uri: str) -> str:
    """Make a relative ``sqlite:///`` or plain path URI absolute (workers may run elsewhere)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(uri[len("sqlite:///") :])
    if "://" not in uri and ":" not in uri[1:2]:
        return os.path.abspath(uri)
    return uri


def metric_key(name: str) -> str:
    """A metric name MLflow accepts: ``val_ndcg@10`` becomes ``val_ndcg_at_10``.

    Examples
    --------
    >>> from skbpr.tracking import metric_key
    >>> metric_key("val_ndcg@10")
    'val_ndcg_at_10'
    """
    return _INVALID_KEY.sub("_", name.replace("@", "_at_"))


def is_http(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def probe(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Check quickly that a tracking store can be used, without MLflow's retrying client.

    Parameters
    ----------
    uri : str
        Tracking URI. ``http(s)://``: a plain GET of ``<uri>/health``
        answered within ``timeout`` seconds (any status below 500 counts:
        a server asking for credentials is up). ``sqlite:///<path>``: the
        database is a writable regular file, or can be created in a writable
        folder. ``file://`` or a plain path: a writable folder, or one that
        can be created. Other schemes are not checked.
    timeout : float
        Seconds to wait for the server (each read; the whole answer within
        twice that).

    Raises
    ------
    OSError
        Saying why the store cannot be used.
    """
    if is_http(uri):
        try:  # the timeout bounds each socket read; a server trickling its answer is bounded here
            within_deadline(_probe_http, uri, timeout, seconds=2 * timeout, what=f"GET {uri.rstrip('/')}/health")
        except TimeoutError as exc:
            raise OSError(str(exc)) from None
        return
    local = _local_store(uri)
    if local is not None:
        _check_writable(*local)


def request_deadline() -> float:
    """Seconds a request to a tracking server may take in all: ``$SKBPR_TRACKING_DEADLINE``, else 30.

    Raises
    ------
    ValueError
        When the variable is set and is not a positive number of seconds.
    """
    text = os.environ.get(DEADLINE_VARIABLE)
    if text is None or not text.strip():
        return REQUEST_DEADLINE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{DEADLINE_VARIABLE} must be a positive number of seconds, got {text!r}")
    return value


def within_deadline(fn: Callable[..., Any], *args: Any, seconds: float, what: str, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or ``TimeoutError`` when it has not returned after ``seconds``.

    The call runs in a daemon thread (with this thread's context variables);
    past the deadline it is abandoned, not interrupted: a request blocked on
    a socket ends when its own timeout or the server ends it, and it never
    keeps the process from exiting.

    Parameters
    ----------
    fn : callable
        The call.
    seconds : float
        Its deadline.
    what : str
        What the call does, for the error message.

    Raises
    ------
    TimeoutError
        Naming ``what`` and ``seconds``.

    Examples
    --------
    >>> import time
    >>> from skbpr.tracking.stores import within_deadline
    >>> within_deadline(sum, [1, 2], seconds=5, what="a sum")
    3
    >>> within_deadline(time.sleep, 5, seconds=0.05, what="a nap")
    Traceback (most recent call last):
    ...
    TimeoutError: a nap did not complete within 0.05 s
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="skbpr-tracking-request", daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError(f"{what} did not complete within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _probe_http(uri: str, timeout: float) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "skbpr"}), timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise OSError(f"{url} answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"{url} did not answer ({exc.reason})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise OSError(f"{url} did not answer within {timeout:g} s ({type(exc).__name__}: {exc})") from None


def _local_store(uri: str) -> tuple[Path, bool] | None:
    """``(path, is_database_file)`` of a local SQLite or file store, else None."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :].split("?", 1)[0]
        return None if path in ("", ":memory:") else (Path(path), True)
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path)), False
    if "://" not in uri and not uri.startswith(("sqlite:", "databricks", "uc:")):
        return Path(uri), False
    return None


def _check_writable(path: Path, is_file: bool) -> None:
    """Raise ``OSError`` unless ``path`` can be written (or created) as a database file or a folder."""
    kind = "database file" if is_file else "folder"
    if path.exists():
        if is_file and not path.is_file():
            raise OSError(f"{path} is not a regular file, so it cannot be the {kind} of a tracking store")
        if not is_file and not path.is_dir():
            raise OSError(f"{path} is not a directory, so it cannot be the {kind} of a tracking store")
        if not os.access(path, os.W_OK):
            raise OSError(f"{path} is not writable")
        folder = path.parent if is_file else path
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OSError(f"the folder {folder} is not writable")
        return
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OSError(f"cannot create the {kind} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"cannot create the {kind} {path}: the folder {existing} is not writable")


@contextlib.contextmanager
def short_http(uri: str) -> Iterator[None]:
    """Use short timeouts and few retries for MLflow HTTP calls (unless the user set them)."""
    if not is_http(uri):
        yield
        return
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in HTTP_SETTINGS}
        for key, value in HTTP_SETTINGS.items():
            if saved[key] is None:
                os.environ[key] = value
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)


def _locked(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from says the SQLite database is locked."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "database is locked" in str(exc) or "database table is locked" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retry_locked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, retrying with backoff while SQLite reports ``database is locked``."""
    for attempt in range(LOCK_RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == LOCK_RETRIES - 1 or not _locked(exc):
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def summarise(value: Any, limit: int = 500) -> str:
    """A parameter value as MLflow text: plain values as ``str``, objects as their repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        text = str(value)
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_callback_name(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _callback_name(value: Any) -> str:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return repr(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    return type(value).__name__
