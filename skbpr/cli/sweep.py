"""The ``sweep`` command: grid search with per-user K-fold cross-validation, tracked in MLflow."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

from skbpr.cli.config import Config, ConfigError, load_config
from skbpr.cli.errors import CommandLineError
from skbpr.cli.files import check_outputs, save_model
from skbpr.cli.fitting import describe_data, load_data, metric_names, mlflow_callback, run_recorder, split_data
from skbpr.cli.output import print_table, say, tracking_available, warn


def require_searched_keys(config: Config) -> None:
    """The ``sweep`` section must search at least one key (``sweep`` and ``tune`` need a choice to make).

    Raises
    ------
    ConfigError
        When no key of the section has a list of values.
    """
    if not config.grid:
        raise ConfigError("sweep: expected at least one searched key such as 'training.loss: [bpr, warp]', got none")


def sweep_scheduler(args: argparse.Namespace, config: Any) -> str | None:
    """``--scheduler``, else ``sweep.scheduler``, checked before any work (None: run locally)."""
    from skbpr.distributed.search import check_scheduler

    if args.scheduler is not None:
        try:
            return check_scheduler(args.scheduler)
        except ValueError:
            raise CommandLineError(
                f"--scheduler {args.scheduler!r}: expected a Dask scheduler address such as tcp://HOST:8786"
            ) from None
    value = config["sweep"]["scheduler"]
    if value is None:
        return None
    try:
        return check_scheduler(value)
    except ValueError:
        raise ConfigError(
            f"sweep.scheduler: expected a Dask scheduler address such as 'tcp://HOST:8786' or null, got {value!r}"
        ) from None


def sweep_backend(scheduler: str | None) -> contextlib.AbstractContextManager[Any]:
    """joblib's ``dask`` backend on ``scheduler`` for the search, or nothing when it is ``None``."""
    if scheduler is None:
        return contextlib.nullcontext()
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise CommandLineError(f"--scheduler {scheduler!r}: needs Dask (pip install 'skbpr[dask]')")
    from skbpr.distributed.search import dask_backend

    return dask_backend(scheduler)


def cmd_sweep(args: argparse.Namespace) -> int:
    from sklearn.model_selection import GridSearchCV

    from skbpr.evaluation.metrics import evaluate
    from skbpr.evaluation.scorers import make_ranking_scorer
    from skbpr.evaluation.splitters import PerUserKFold
    from skbpr.models.hybrid import HybridBPR

    check_outputs(args, "sweep.png")
    config = load_config(args.config)
    require_searched_keys(config)
    scheduler = sweep_scheduler(args, config)  # Dask; checked before any work
    n_jobs = args.n_jobs if args.n_jobs is not None else (-1 if scheduler else 1)
    data = load_data(config)
    train, test = split_data(config, data)
    describe_data(config, data, train, test)
    grid = config.param_grid()
    n_candidates = 1
    for values in grid.values():
        n_candidates *= len(values)
    cv = config["sweep"]["cv"]
    folds = PerUserKFold(cv, random_state=config["data"]["random_state"])
    try:  # a data-dependent limit, checked before the search starts
        next(iter(folds.split(train)))
    except ValueError as exc:
        raise ConfigError(f"sweep.cv: {exc}") from None
    scoring = {name: make_ranking_scorer(name) for name in config.scoring}
    primary = config.scoring[0]
    where = f", on the Dask scheduler {scheduler}" if scheduler else ""
    say(f"grid search: {n_candidates} candidates x {cv} per-user folds on the train split, n_jobs={n_jobs}{where}")
    parent = _start_sweep_run(config) if tracking_available(config) else None
    callback = None
    if parent is not None:  # fits record into the store the parent run lives in
        uri = parent.uri if parent.run_id else None
        callback = mlflow_callback(config, log_model=False, tracking_uri=uri)
    base = HybridBPR(**config.estimator_params(), callbacks=[callback] if callback else None)
    search = GridSearchCV(
        base,
        grid,
        cv=folds,
        scoring=scoring,
        refit=primary,
        n_jobs=n_jobs,
    )
    start = time.perf_counter()
    with parent if parent is not None else contextlib.nullcontext(), sweep_backend(scheduler):
        search.fit(train)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    rows = []
    for i, candidate in enumerate(results["params"]):
        row: dict[str, Any] = {"rank": int(results[f"rank_test_{primary}"][i])}
        row.update({Config.param_key(k): v for k, v in candidate.items()})
        for name in config.scoring:
            row[name] = f"{results[f'mean_test_{name}'][i]:.4f} ± {results[f'std_test_{name}'][i]:.4f}"
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    say(f"cross-validation ({seconds:.1f} s), mean ± std over {cv} folds:")
    print_table(rows, ["rank", *(Config.param_key(k) for k in grid), *config.scoring])
    best = {Config.param_key(k): v for k, v in search.best_params_.items()}
    say(f"best by {primary}: " + ", ".join(f"{k}={v!r}" for k, v in best.items()))
    metrics = metric_names(config)
    test_metrics = evaluate(search.best_estimator_, test, metrics=metrics)
    say("best candidate refitted on the train split, on the test split:")
    print_table([{"model": "HybridBPR (best)", **test_metrics}], ["model", *metrics])
    files = []
    if args.plot_dir:
        from skbpr.tracking.plots import plot_sweep

        out = Path(args.plot_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig = plot_sweep(results, metric=f"mean_test_{primary}", title=f"Grid search, {cv}-fold per-user CV")
        path = out / "sweep.png"
        fig.savefig(path, dpi=90)
        files.append(path)
        say(f"sweep plot saved to {path}")
    model = search.best_estimator_
    search_ids = [getattr(cb, "search_id", None) for cb in model.get_params()["callbacks"] or []]
    model.set_params(callbacks=None)
    model.__dict__.pop("callbacks_", None)
    if args.save:
        save_model(args.save, model, config, data, train)
    if parent is not None and parent.run_id:
        _record_sweep(parent, config, search, test_metrics, files, next(filter(None, search_ids), None))
    return 0


class _SweepRun:
    """The parent MLflow run of a sweep, active while the search runs (fits nest under it).

    When the configured store cannot be reached, the whole sweep (parent and
    fits) is recorded in the fallback store instead, with a warning.
    """

    def __init__(self, config: Config) -> None:
        import mlflow

        from skbpr.tracking.stores import absolute_uri, default_fallback_uri

        m = config["mlflow"]
        self.run_id: str | None = None
        self._previous_uri = mlflow.get_tracking_uri()
        self.uri = absolute_uri(m["tracking_uri"] or self._previous_uri)
        fallback = absolute_uri(m["fallback_uri"]) if m["fallback_uri"] else default_fallback_uri()
        for uri in dict.fromkeys([self.uri, fallback]):
            try:
                self._open(uri, m)
                if uri != self.uri:
                    warn(f"the sweep is recorded in the fallback store {uri}")
                self.uri = uri
                return
            except Exception as exc:  # noqa: BLE001 - a dead store must not stop the search
                mlflow.set_tracking_uri(self._previous_uri)
                warn(f"could not open the sweep's parent run in {uri}: {exc}")
        warn("the sweep's fits are tracked on their own")

    def _open(self, uri: str, m: dict[str, Any]) -> None:
        import mlflow

        from skbpr.tracking.stores import is_http, probe, request_deadline, within_deadline

        probe(uri)  # an unreachable server fails here at once, not after MLflow's retries
        if is_http(uri):  # one bounded API request: a server that answers /health only fails here
            from mlflow import MlflowClient

            what = f"MLflow request search_experiments to {uri}"
            within_deadline(MlflowClient(uri).search_experiments, max_results=1, seconds=request_deadline(), what=what)
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.set_experiment(m["experiment_name"])
        run = mlflow.start_run(
            experiment_id=experiment.experiment_id,
            run_name=m["run_name"] or "sweep",
            tags={"skbpr.kind": "sweep"},
        )
        self.run_id = run.info.run_id

    def __enter__(self) -> _SweepRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import mlflow

        if self.run_id is not None and mlflow.active_run() is not None:
            mlflow.end_run("FAILED" if exc_type is not None else "FINISHED")
        mlflow.set_tracking_uri(self._previous_uri)


def _start_sweep_run(config: Config) -> _SweepRun:
    return _SweepRun(config)


def _record_sweep(
    parent: _SweepRun, config: Config, search: Any, test_metrics: dict, files: list[Path], search_id: str | None
) -> None:
    """One child run per candidate (searched params, mean and std scores); best and test scores on the parent.

    Every fold run's candidate number is checked against ``cv_results_`` by
    its parameters' digest (:func:`skbpr.tracking.candidates.reconcile_search_runs`).
    """
    from skbpr.tracking.candidates import CANDIDATE_TAG, DIGEST_TAG, candidate_digest, reconcile_search_runs

    results = search.cv_results_
    for i, candidate in enumerate(results["params"]):
        child = run_recorder(
            config,
            parent.uri,
            run_name=f"candidate-{i}",
            parent_run_id=parent.run_id,
            tags={"skbpr.kind": "sweep-candidate"},
        )
        tags = {CANDIDATE_TAG: str(i), DIGEST_TAG: candidate_digest(search.estimator, candidate)}
        child.start({k: str(v) for k, v in candidate.items()}, tags)
        stats = {
            f"{s}_test_{name}": float(results[f"{s}_test_{name}"][i])
            for name in config.scoring
            for s in ("mean", "std", "rank")
        }
        child.log(metrics={**stats, "mean_fit_time": float(results["mean_fit_time"][i])})
        child.end()
    summary = {f"test_{k}": float(v) for k, v in test_metrics.items()}
    summary[f"best_mean_test_{config.scoring[0]}"] = float(search.best_score_)
    recorder = run_recorder(config, parent.uri, join_run_id=parent.run_id)
    recorder.start({f"best.{Config.param_key(k)}": str(v) for k, v in search.best_params_.items()}, {})
    try:  # the fold runs' candidate numbers, checked against cv_results_ by their parameters
        reconcile_search_runs(recorder, parent.run_id, search.estimator, list(results["params"]), search_id=search_id)
    except Exception as exc:  # noqa: BLE001 - the store's query failed: the runs keep their digests to join by
        warn(f"could not check the fold runs' candidate numbers against cv_results_: {exc}")
    recorder.log(metrics=summary)
    recorder.log_dict(config.to_dict(), "config.yaml")
    for path in files:
        recorder.log_file(path)
    say(
        f"MLflow sweep run {parent.run_id} (experiment {config['mlflow']['experiment_name']!r}, one child run per "
        f"fit and per candidate) stored in {parent.uri}\n  browse it with: mlflow ui --backend-store-uri {parent.uri}"
    )
