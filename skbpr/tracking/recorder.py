"""MLflow plumbing behind :class:`skbpr.callbacks.MLflowCallback`.

:class:`RunRecorder` writes one run's parameters, tags, metrics and model to
an MLflow tracking store and keeps a copy of everything it was asked to
record. When the store fails (server unreachable, server gone mid-fit, a
broken database), it warns once, opens a run in a local fallback store,
replays every record there and carries on, so training never stops and no
record is dropped. If the fallback store cannot be used either, the one
warning says that nothing of the run is recorded and the recorder's ``uri``
becomes ``None``.

Stores are probed before MLflow touches them (:func:`probe`): a plain HTTP
GET of ``<uri>/health`` with a short timeout for a server, a writability
check for a local SQLite file or folder. MLflow's own client retries an
unreachable server, and an SQLite file it cannot open, for up to two
minutes; the probe fails in a couple of seconds instead. A server that
answers its health check but not the API (no answer, or one trickling in a
byte at a time, which no socket timeout catches) is bounded too: every
request to a server must complete within :func:`request_deadline` seconds
(``$SKBPR_TRACKING_DEADLINE``, default 30), or it counts as a failure of
the store, and the run moves to the fallback store like a dead server's.

MLflow is imported inside the functions: ``import skbpr`` does not need it.
"""

from __future__ import annotations

import os
import random
import threading
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

from skbpr.tracking.stores import (
    is_http,
    metric_key,
    probe,
    request_deadline,
    retry_locked,
    short_http,
    within_deadline,
)

__all__ = ["RunRecorder"]

_URI_LOCK = threading.RLock()


class RunRecorder:
    """Record one run in a tracking store, falling back to a local store on failure.

    Parameters
    ----------
    uri : str
        Tracking URI of the intended store.
    fallback_uri : str
        Where the records go when ``uri`` fails.
    experiment_name : str
        Experiment of a new top-level run.
    run_name : str or None
        Name of the run.
    parent_run_id : str or None
        Open the run as a child of this run (``mlflow.parentRunId`` tag).
    join_run_id : str or None
        Record into this existing run instead of opening one (it is not ended).
    """

    def __init__(
        self,
        uri: str,
        fallback_uri: str,
        *,
        experiment_name: str,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        join_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.uri = uri
        self.fallback_uri = fallback_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.join_run_id = join_run_id
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = dict(tags or {})
        self.metrics: list[tuple[str, float, int, int]] = []
        self.run_id: str | None = None
        self.owns_run = join_run_id is None
        self.failed = False
        self.warning: str | None = None
        self._client: Any = None

    # ------------------------------------------------------------- plumbing
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with short_http(self.uri):
            if not is_http(self.uri or ""):
                return retry_locked(fn, *args, **kwargs)
            what = f"MLflow request {getattr(fn, '__name__', 'call')} to {self.uri}"
            return within_deadline(retry_locked, fn, *args, seconds=request_deadline(), what=what, **kwargs)

    def _open(self, uri: str, *, fallback: bool) -> None:
        from mlflow import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

        probe(uri)  # fails in seconds where MLflow's client would retry for minutes
        client = MlflowClient(uri)
        tags = dict(self.tags)
        if self.join_run_id is not None and not fallback:
            self._client, self.run_id = client, self.join_run_id
            self._flush_all()
            return
        experiment_id = None
        if self.parent_run_id is not None and not fallback:
            experiment_id = self._parent_experiment(client)
            if experiment_id is not None:
                tags[MLFLOW_PARENT_RUN_ID] = self.parent_run_id
        if experiment_id is None:
            experiment_id = self._experiment(client)
        if self.run_name:
            tags[MLFLOW_RUN_NAME] = self.run_name
        run = self._call(client.create_run, experiment_id, run_name=self.run_name, tags=tags)
        self._client, self.run_id, self.owns_run = client, run.info.run_id, True
        self._flush_all(skip_tags=True)

    def _parent_experiment(self, client: Any) -> str | None:
        """Experiment of the parent run; ``None`` when the store does not know that run."""
        from mlflow.exceptions import MlflowException

        try:
            return self._call(client.get_run, self.parent_run_id).info.experiment_id
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                self.parent_run_id = None
                return None
            raise

    def _experiment(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        for _ in range(5):
            found = self._call(client.get_experiment_by_name, self.experiment_name)
            if found is not None:
                return found.experiment_id
            try:
                return self._call(client.create_experiment, self.experiment_name)
            except MlflowException:  # created meanwhile by a parallel worker
                time.sleep(0.1 * random.random())
        found = self._call(client.get_experiment_by_name, self.experiment_name)
        if found is None:
            raise RuntimeError(f"could not create MLflow experiment {self.experiment_name!r}")
        return found.experiment_id

    def _flush_all(self, skip_tags: bool = False) -> None:
        tags = {} if skip_tags else self.tags
        self._write(self.params, tags, self.metrics)

    def _write(self, params: dict[str, str], tags: dict[str, str], metrics: list[tuple[str, float, int, int]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        param_items = [Param(k, v) for k, v in params.items()]
        tag_items = [RunTag(k, v) for k, v in tags.items()]
        metric_items = [Metric(k, v, ts, step) for k, v, ts, step in metrics]
        # MLflow's batch limits: 100 params, 100 tags, 1000 entries in all
        while param_items or tag_items or metric_items:
            p, param_items = param_items[:100], param_items[100:]
            t, tag_items = tag_items[:100], tag_items[100:]
            m, metric_items = metric_items[: 1000 - len(p) - len(t)], metric_items[1000 - len(p) - len(t) :]
            self._call(self._client.log_batch, self.run_id, metrics=m, params=p, tags=t)

    def _fail(self, exc: BaseException, action: str) -> None:
        """Move to the fallback store and replay everything recorded so far."""
        intended = self.uri
        if self.run_id is not None:
            self.tags["skbpr.intended_run_id"] = self.run_id
        self.tags["skbpr.intended_tracking_uri"] = intended
        if self.parent_run_id is not None:
            self.tags["skbpr.intended_parent_run_id"] = self.parent_run_id
        self.failed = True
        self.uri = self.fallback_uri
        self.run_id, self._client = None, None
        try:
            self._open(self.fallback_uri, fallback=True)
            where = f"the run's records (params, metrics so far and to come) go to {self.fallback_uri} instead"
        except Exception as second:
            self._client, self.uri, self.run_id = None, None, None
            where = (
                f"the fallback store {self.fallback_uri} failed too ({type(second).__name__}: {str(second)[:300]}); "
                "nothing of this run is recorded"
            )
        self.warning = (
            f"MLflow tracking at {intended} failed while trying to {action} "
            f"({type(exc).__name__}: {str(exc)[:300]}); training continues and {where}"
        )
        warnings.warn(self.warning, UserWarning, stacklevel=4)

    def _guard(self, action: str, fn: Callable[[], Any], *, again: bool = False) -> Any:
        """Run ``fn``; on failure switch to the fallback (which replays the records).

        ``again``: run ``fn`` once more in the fallback store (for what the
        replay does not cover: the model, ending the run).
        """
        if self._client is None and self.failed:
            return None  # both stores failed: already warned
        try:
            return fn()
        except Exception as exc:
            if self.failed:
                self._lost(exc, action)
                return None
            self._fail(exc, action)
            if again and self._client is not None:
                try:
                    return fn()
                except Exception as second:
                    self._lost(second, action)
        return None

    def _lost(self, exc: BaseException, action: str) -> None:
        """The fallback store failed as well: say so rather than drop records silently."""
        warnings.warn(
            f"MLflow fallback store {self.uri} failed while trying to {action} ({type(exc).__name__}: "
            f"{str(exc)[:300]}); this record is lost",
            UserWarning,
            stacklevel=4,
        )

    # ------------------------------------------------------------------ API
    def start(self, params: dict[str, str], tags: dict[str, str]) -> None:
        self.params.update(params)
        self.tags.update(tags)
        self._guard(f"open a run in experiment {self.experiment_name!r}", lambda: self._open(self.uri, fallback=False))

    def log(
        self,
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        step: int = 0,
        tags: dict[str, str] | None = None,
    ) -> None:
        params, tags = params or {}, tags or {}
        now = int(time.time() * 1000)
        rows = [(metric_key(k), float(v), now, int(step)) for k, v in (metrics or {}).items()]
        self.params.update(params)
        self.tags.update(tags)
        self.metrics.extend(rows)
        if self._client is not None:
            self._guard("log metrics", lambda: self._write(params, tags, rows))

    def log_model(self, estimator: Any, name: str = "model", **kwargs: Any) -> Any:
        """Log ``estimator`` with ``mlflow.sklearn.log_model``; returns its ``ModelInfo``."""

        def log() -> Any:
            from mlflow.tracking._tracking_service.utils import _use_tracking_uri

            client, run_id = self._client, self.run_id
            if not hasattr(client, "create_logged_model"):  # MLflow 2: a model folder among the run's artifacts
                return self._log_model_v2(estimator, name, **kwargs)
            # the logged model must live in the run's experiment (MLflow would
            # otherwise use the process's current experiment)
            experiment_id = self._call(client.get_run, run_id).info.experiment_id
            model = self._call(
                client.create_logged_model, experiment_id, name=name, source_run_id=run_id, params=self.params
            )
            with _URI_LOCK, _use_tracking_uri(self.uri), short_http(self.uri):
                if not is_http(self.uri):
                    return _log_sklearn_model(estimator, name=name, run_id=run_id, model_id=model.model_id, **kwargs)
                return within_deadline(
                    _log_sklearn_model,
                    estimator,
                    seconds=request_deadline(),
                    what=f"logging the model to {self.uri}",
                    name=name,
                    run_id=run_id,
                    model_id=model.model_id,
                    **kwargs,
                )

        if self._client is None:
            return None
        return self._guard("log the model", log, again=True)

    def _log_model_v2(self, estimator: Any, name: str, **kwargs: Any) -> Any:
        import tempfile

        import mlflow.sklearn
        from mlflow.models import Model

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name)
            info = Model(run_id=self.run_id, artifact_path=name)
            mlflow.sklearn.save_model(estimator, path, mlflow_model=info, **kwargs)
            self._call(self._client.log_artifacts, self.run_id, path, artifact_path=name)
        return types.SimpleNamespace(model_uri=f"runs:/{self.run_id}/{name}")

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        """Store ``data`` as the run's artifact ``name`` (YAML or JSON by its extension)."""
        if self._client is not None:
            self._guard(f"log {name}", lambda: self._call(self._client.log_dict, self.run_id, data, name), again=True)

    def log_file(self, path: str | os.PathLike) -> None:
        """Store the file at ``path`` among the run's artifacts."""
        if self._client is not None:
            action = f"log the file {os.fspath(path)}"
            self._guard(action, lambda: self._call(self._client.log_artifact, self.run_id, os.fspath(path)), again=True)

    def find_runs(self, filter_string: str, *, page_size: int = 1000) -> list[Any]:
        """Every run of this run's experiment that matches an MLflow ``filter_string`` (``[]`` before one is open).

        The store answers in pages of at most ``page_size`` runs; all pages
        are read, so a large search is checked whole, not its first page.
        Unlike the writes, a failing query is not replayed elsewhere: it
        raises, and the run stays where it is.
        """
        if self._client is None:
            return []
        experiment_id = self._call(self._client.get_run, self.run_id).info.experiment_id
        found: list[Any] = []
        token = None
        while True:
            page = self._call(
                self._client.search_runs,
                [experiment_id],
                filter_string=filter_string,
                max_results=page_size,
                page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                return found

    def tag_other_run(self, run_id: str, key: str, value: str) -> None:
        """Set a tag on another run of this store (a sibling found by :meth:`find_runs`); raises on failure."""
        if self._client is not None:
            self._call(self._client.set_tag, run_id, key, value)

    def end(self, status: str = "FINISHED") -> None:
        if self._client is not None and self.owns_run:
            self._guard("end the run", lambda: self._call(self._client.set_terminated, self.run_id, status), again=True)


def _log_sklearn_model(estimator: Any, **kwargs: Any) -> Any:
    """``mlflow.sklearn.log_model`` without MLflow's notice that ``predict(X: Any)`` is not validated.

    MLflow 3 infers an input schema from ``predict``'s type hint and warns
    that ``Any`` cannot be validated; that notice is about MLflow's own input
    checks, not about the run, and would otherwise reach the user as a
    tracking failure where warnings are errors.
    """
    import mlflow.sklearn

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*type hint is inferred as AnyType", category=UserWarning)
        return mlflow.sklearn.log_model(estimator, **kwargs)
