"""MLflowCallback: record each fit as an MLflow run, through the one recorder of :mod:`skbpr.tracking`.

The callback protocol itself (:class:`~skbpr.training.callbacks.Callback`,
``CallbackList``, ``ProgressBar``) belongs to the training loop, in
:mod:`skbpr.training.callbacks`; :mod:`skbpr.callbacks` gathers both.
"""

from __future__ import annotations

import copy
import uuid
import warnings
from typing import Any

from skbpr.tracking.candidates import CANDIDATE_TAG, DIGEST_TAG, SEARCH_TAG, check_candidate, params_digest
from skbpr.training.callbacks import Callback
from skbpr.utils.validation import check_choice

__all__ = ["MLflowCallback"]


class MLflowCallback(Callback):
    """Record each fit as an MLflow run: parameters, per-epoch metrics and the model.

    Parameters
    ----------
    tracking_uri : str or None, default=None
        Tracking store. ``None`` uses MLflow's own choice
        (``mlflow.get_tracking_uri()``: ``MLFLOW_TRACKING_URI`` or
        ``mlflow.set_tracking_uri``, else, since MLflow 3, the SQLite file
        ``mlflow.db`` in the working directory, or ``./mlruns`` where that
        folder already holds runs). Relative SQLite paths are made absolute.
    experiment_name : str, default="skbpr"
        Experiment of top-level runs; child runs live in their parent's
        experiment.
    run_name : str or None, default=None
        Name of the run (MLflow picks one when ``None``).
    log_model : {"auto", True, False}, default="auto"
        Whether to log the fitted estimator as an MLflow model. ``"auto"``:
        for a plain fit and for the final refit of a scikit-learn search, but
        not for the fits on cross-validation folds (``GridSearchCV``,
        ``RandomizedSearchCV``, ``cross_val_score``), whose models nobody
        uses; ``True``: for every fit, folds included; ``False``: never.
        The model is logged at the end of the fit in the
        scikit-learn flavour (cloudpickle format) under ``model``:
        ``mlflow.sklearn.load_model(f"runs:/{run_id_}/model")`` returns the
        fitted :class:`~skbpr.HybridBPR`, and its pyfunc ``predict`` scores a
        2-column ``(user, item)`` array. The logged copy has ``callbacks=None``
        (training hooks need not pickle). MLflow 3 loads pickled models only
        when ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``.
    nested : {"auto", True, False}, default="auto"
        ``"auto"`` or ``True``: when an MLflow run is active (or one was
        captured as :attr:`parent_run_id`), open the fit's run as its child;
        otherwise open a top-level run. ``False``: record into the active
        run itself (it is joined, never ended) or, without one, open a
        top-level run; meant for single fits, as MLflow parameters cannot be
        overwritten by a second fit.
    fallback_uri : str or None, default=None
        Where records go when the tracking store fails (unreachable server,
        server gone mid-fit): ``None`` means ``sqlite:///<cwd>/mlflow-fallback.db``.
        Training is never interrupted; one ``UserWarning`` says what failed
        and where the records went, and everything recorded so far is
        replayed there. Both stores are probed first (a GET of the server's
        ``/health`` with a 2 s timeout, a writability check of a local
        store), so a dead server or an unwritable fallback costs seconds, not
        MLflow's minutes of retries; and each request to a server must
        complete within ``$SKBPR_TRACKING_DEADLINE`` seconds (default 30),
        so a server that answers its health check but not the API (or a
        byte at a time) counts as failed as well.
    metrics : sequence of str or None, default=None
        More metrics to evaluate on the validation data of each evaluation
        epoch and record, besides the estimator's ``eval_metric``,
        ``ndcg@10`` and ``auc``: beyond-accuracy ones such as
        ``["coverage@10", "novelty@10", "arp@10"]`` or other accuracy
        metrics. They are computed in the same ranking pass and recorded as
        ``val_coverage_at_10`` and so on (and ``final_val_...``). A fit
        without validation data evaluates nothing.

    Attributes
    ----------
    run_id_ : str
        Id of the run of the last fit (in ``tracking_uri_``). Estimators
        fit deep copies of their callbacks, so read it on the fitted copy,
        ``estimator.callbacks_[i].run_id_``; the ``callbacks`` parameter
        is never modified.
    tracking_uri_ : str or None
        Store the last fit's records went to: the fallback after a failure;
        ``None`` when the fallback store failed as well, so that nothing of
        the fit is recorded (the one warning says so; ``run_id_`` is then
        ``None`` too). Training completes either way.
    model_uri_ : str or None
        URI of the logged model (``models:/<model_id>``) when one was logged;
        ``runs:/<run_id_>/model`` names the same model.
    parent_run_id : str or None
        Run that fits become children of when no run is active in the
        fitting process. It is captured from the active run whenever the
        callback is copied or pickled (``clone``, ``GridSearchCV`` sending
        it to worker processes), because workers do not share the parent
        process's active run.

    Notes
    -----
    Each run records every ``get_params(deep=False)`` value (objects by
    repr, callbacks by name), the data shape (``data.n_users`` and so on),
    ``fit.epochs``, ``env.skbpr_version``, ``env.torch_version``,
    ``env.mlflow_version`` and ``env.device``; each epoch's ``loss`` and
    validation metrics with ``step=epoch`` in one ``log_batch`` call
    (``@`` in names becomes ``_at_``: ``val_ndcg_at_10``); at the end
    ``final_*`` metrics, ``best_epoch`` and ``epochs_run``. Inside a
    scikit-learn search or ``cross_validate`` with skbpr's splitters, runs
    are tagged ``skbpr.cv_split`` and ``skbpr.cv_n_splits`` (the training
    fold says which split it is, :mod:`skbpr.data.folds`), a search's fold
    runs ``skbpr.cv_candidate`` (the row of ``cv_results_``, from the order
    of the copies that ``sklearn.base.clone`` makes, :meth:`__sklearn_clone__`),
    and its final refit ``skbpr.cv_refit``; a search's runs also
    ``skbpr.cv_search`` (an id of the search) and all of these
    ``skbpr.cv_params_digest``, a digest of the fit's parameters
    (:func:`skbpr.tracking.candidates.params_digest`; ``candidate_digest``
    gives a ``cv_results_`` row's). As a fold run opens, the runs already
    recorded for its search and candidate must have its digest and other
    splits; otherwise the clone order was not that of ``cv_results_``: a
    ``UserWarning`` names the runs and the runs are tagged
    ``skbpr.cv_candidate_unverified=true``. Splitters of other libraries
    leave runs untagged.
    A fit that raises leaves its run unfinished.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> from mlflow import MlflowClient
    >>> from skbpr import HybridBPR
    >>> from skbpr.callbacks import MLflowCallback
    >>> from skbpr.datasets import make_interactions
    >>> folder = tempfile.mkdtemp()
    >>> uri = "sqlite:///" + os.path.join(folder, "mlflow.db")
    >>> tracker = MLflowCallback(tracking_uri=uri, log_model=False)
    >>> data = make_interactions(100, 50, 800, random_state=0)
    >>> model = HybridBPR(8, epochs=2, random_state=0, n_threads=1, callbacks=[tracker]).fit(data)
    >>> run = MlflowClient(uri).get_run(model.callbacks_[0].run_id_)  # the fitted copy holds the run
    >>> run.info.status, run.data.params["epochs"], sorted(run.data.metrics)[:2]
    ('FINISHED', '2', ['epochs_run', 'final_loss'])
    >>> shutil.rmtree(folder)
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str = "skbpr",
        run_name: str | None = None,
        log_model: bool | str = "auto",
        nested: bool | str = "auto",
        fallback_uri: str | None = None,
        metrics: Any = None,
    ) -> None:
        check_choice(nested, "nested", ("auto", True, False))
        if metrics is not None:
            from skbpr.evaluation.names import parse_metrics

            metrics = tuple(name for name, _ in parse_metrics(metrics))
        self.metrics: tuple[str, ...] = () if metrics is None else metrics
        check_choice(log_model, "log_model", ("auto", True, False))
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.log_model = log_model
        self.nested = nested
        self.fallback_uri = fallback_uri
        self.parent_run_id: str | None = None
        self._parent_uri: str | None = None
        self._recorder: Any = None
        self._fold_fit = False
        self._lineage = (0, 0)  # (clones between the user's callback and this one, index among its siblings)
        self._n_clones = 0
        self._clone_id: str | None = None  # a search's base copy: the search's id, which its copies carry
        self._origin: str | None = None  # the _clone_id of the callback this one was cloned from

    # ------------------------------------------------- search context
    def __sklearn_clone__(self) -> MLflowCallback:
        """The copy ``sklearn.base.clone`` makes, numbered among the copies of this callback.

        A search clones its estimator once (the base), then the base once per
        (candidate, split) in the order of ``cv_results_`` (candidates, and
        splits within each), then once for the final refit; the number tells
        a fold fit's candidate, the depth two tells a search's fits from a
        ``cross_validate`` fold (depth one). Each copy gets an id of its own,
        and carries the id of the one it was cloned from: a search's fits
        carry their base's, which names the search. The order is checked as
        fold runs open (:mod:`skbpr.tracking.candidates`), not assumed.
        """
        twin = copy.deepcopy(self)
        count = getattr(self, "_n_clones", 0)
        twin._lineage = (getattr(self, "_lineage", (0, 0))[0] + 1, count)
        twin._n_clones = 0
        twin._clone_id, twin._origin = uuid.uuid4().hex[:16], getattr(self, "_clone_id", None)
        self._n_clones = count + 1
        return twin

    @property
    def search_id(self) -> str | None:
        """The ``skbpr.cv_search`` tag of the search this copy was made for (``None`` outside a search).

        The copies of a search's fold fits and of its refit carry it, so
        ``search.best_estimator_``'s callback names the search whose runs
        :func:`skbpr.tracking.candidates.reconcile_search_runs` checks.
        """
        return getattr(self, "_origin", None) if getattr(self, "_lineage", (0, 0))[0] == 2 else None

    def _search_tags(self, search: dict[str, Any], estimator: Any = None) -> dict[str, str]:
        """Tags locating the fit in a cross-validation, from the data's fold and this copy's lineage.

        With ``estimator``, tagged runs also get ``skbpr.cv_params_digest``.
        """
        depth, index = getattr(self, "_lineage", (0, 0))
        fold = search.get("fold")
        tags = {}
        if fold is not None:
            split, n_splits = fold
            tags = {"skbpr.cv_split": str(split), "skbpr.cv_n_splits": str(n_splits)}
            if depth == 2:  # a search's clone of its base
                tags[CANDIDATE_TAG] = str(index // n_splits)
        elif depth == 2 and search.get("whole"):  # the base's clone fitted on all the data it split
            tags = {"skbpr.cv_refit": "true"}
        if tags and self.search_id:
            tags[SEARCH_TAG] = self.search_id
        if tags and estimator is not None:
            tags[DIGEST_TAG] = params_digest(estimator.get_params(deep=False))
        return tags

    # -------------------------------------------------- parent propagation
    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles carry the active run of this process as their ``parent_run_id``.

        A database store's schema is created here, once per process, so that
        workers that receive the copy do not race to create it.
        """
        state = self.__dict__.copy()
        state["_recorder"] = None
        parent = _active_run()
        if parent is not None:
            state["parent_run_id"], state["_parent_uri"] = parent
        from skbpr.tracking.shared_store import prepare_quietly

        prepare_quietly(state.get("_parent_uri") or self.tracking_uri)  # the schema, before workers open the store
        return state

    def __repr__(self) -> str:
        return (
            f"MLflowCallback(tracking_uri={self.tracking_uri!r}, experiment_name={self.experiment_name!r}, "
            f"run_name={self.run_name!r}, log_model={self.log_model!r}, nested={self.nested!r}, "
            f"fallback_uri={self.fallback_uri!r}" + (f", metrics={list(self.metrics)!r})" if self.metrics else ")")
        )

    # --------------------------------------------------------------- hooks
    def on_fit_begin(self, estimator: Any, logs: dict[str, Any]) -> None:
        import mlflow
        import torch

        import skbpr
        from skbpr.tracking.recorder import RunRecorder
        from skbpr.tracking.stores import absolute_uri, default_fallback_uri, summarise

        active = mlflow.active_run()
        parent = join = None
        uri = self.tracking_uri
        if active is not None:
            uri = uri or mlflow.get_tracking_uri()
            if self.nested is False:
                join = active.info.run_id
            else:
                parent = active.info.run_id
        elif self.parent_run_id is not None and self.nested is not False:
            if uri is None or absolute_uri(uri) == self._parent_uri:  # the parent must be in the same store
                parent, uri = self.parent_run_id, self._parent_uri
        uri = absolute_uri(uri or mlflow.get_tracking_uri())
        if active is not None and self.tracking_uri is not None and absolute_uri(mlflow.get_tracking_uri()) != uri:
            parent = join = None  # the active run lives in another store
        params = {k: summarise(v) for k, v in estimator.get_params(deep=False).items()}
        # a parameter left at "auto" is logged as given and, as fit.<name>, as the value the fit uses
        params.update(
            {
                f"fit.{k}": summarise(getattr(estimator, f"{k}_"))
                for k, v in params.items()
                if v == "auto" and hasattr(estimator, f"{k}_")
            }
        )
        params.update({f"data.{k}": str(v) for k, v in logs.items() if k not in ("epochs", "search")})
        params["fit.epochs"] = str(logs.get("epochs"))
        params.update(
            {
                "env.skbpr_version": skbpr.__version__,
                "env.torch_version": torch.__version__,
                "env.mlflow_version": mlflow.__version__,
                "env.device": str(getattr(estimator, "device_", "")),
            }
        )
        search = logs.get("search") or {}
        self._fold_fit = search.get("fold") is not None
        tags = {"skbpr.estimator": type(estimator).__name__, **self._search_tags(search, estimator)}
        self._recorder = RunRecorder(
            uri,
            absolute_uri(self.fallback_uri) if self.fallback_uri else default_fallback_uri(),
            experiment_name=self.experiment_name,
            run_name=self.run_name,
            parent_run_id=parent,
            join_run_id=join,
            tags=tags,
        )
        self.model_uri_ = None
        self._recorder.start(params, {})
        self._sync()
        if CANDIDATE_TAG in tags and SEARCH_TAG in tags and self._recorder.uri is not None:
            try:
                check_candidate(self._recorder, tags)
            except Exception as exc:  # noqa: BLE001 - tracking never stops training, but says what it missed
                warnings.warn(
                    f"MLflowCallback could not check the candidate number of run {self._recorder.run_id} against "
                    f"its siblings ({exc!r}); its {CANDIDATE_TAG} is unchecked, its {DIGEST_TAG} names its parameters",
                    UserWarning,
                    stacklevel=2,
                )

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> None:
        if self._recorder is None:
            return
        metrics = {k: v for k, v in logs.items() if k != "epoch" and _is_number(v)}
        self._recorder.log(metrics=metrics, step=epoch)
        self._sync()

    def on_fit_end(self, estimator: Any, logs: dict[str, Any]) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        try:
            history = getattr(estimator, "history_", None) or []
            final = {f"final_{k}": v for k, v in (history[-1] if history else {}).items() if k != "epoch"}
            final = {k: v for k, v in final.items() if _is_number(v)}
            if getattr(estimator, "best_epoch_", None) is not None:
                final["best_epoch"] = estimator.best_epoch_
            if "epochs_run" in logs:
                final["epochs_run"] = logs["epochs_run"]
            step = int(history[-1].get("epoch", 0)) if history else 0
            recorder.log(metrics=final, step=step, tags={"skbpr.stopped_early": str(bool(logs.get("stopped_early")))})
            failed = logs.get("interrupted") or logs.get("error")
            wanted = self.log_model is True or (self.log_model == "auto" and not getattr(self, "_fold_fit", False))
            if wanted and not failed:
                info = recorder.log_model(_serving_copy(estimator), **_model_options())
                self.model_uri_ = None if info is None else info.model_uri
            recorder.end("KILLED" if logs.get("interrupted") else "FAILED" if logs.get("error") else "FINISHED")
        finally:
            self._sync()
            self._recorder = None

    def _sync(self) -> None:
        self.run_id_ = self._recorder.run_id
        self.tracking_uri_ = self._recorder.uri


def _active_run() -> tuple[str, str] | None:
    """``(run_id, absolute tracking URI)`` of this process's active MLflow run, if MLflow is in use."""
    import sys

    if "mlflow" not in sys.modules:
        return None
    try:
        import mlflow

        from skbpr.tracking.stores import absolute_uri

        run = mlflow.active_run()
        return None if run is None else (run.info.run_id, absolute_uri(mlflow.get_tracking_uri()))
    except Exception:  # never break copying or pickling
        return None


def _serving_copy(estimator: Any) -> Any:
    """A shallow copy of the fitted estimator without its training callbacks (they may not pickle)."""
    import copy

    model = copy.copy(estimator)
    if hasattr(model, "callbacks"):
        model.callbacks = None
    model.__dict__.pop("callbacks_", None)  # the fitted copies, this callback among them
    return model


def _is_number(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _model_options() -> dict[str, Any]:
    """Options of ``mlflow.sklearn.log_model``: cloudpickle, requirements without inference."""
    import mlflow
    import numpy
    import scipy
    import sklearn
    import torch

    import skbpr

    return {
        "serialization_format": "cloudpickle",
        "pip_requirements": [
            f"skbpr=={skbpr.__version__}",
            f"torch=={torch.__version__.split('+')[0]}",
            f"scikit-learn=={sklearn.__version__}",
            f"numpy=={numpy.__version__}",
            f"scipy=={scipy.__version__}",
            f"mlflow=={mlflow.__version__}",
        ],
    }
