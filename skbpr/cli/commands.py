"""The ``skbpr`` command: fit, sweep, evaluate and recommend from a YAML configuration.

Commands::

    skbpr fit [--config cfg.yaml] [--save model.joblib] [--plot-dir DIR]
    skbpr sweep --config cfg.yaml [--n-jobs N] [--scheduler tcp://HOST:PORT] [--save best.joblib] [--plot-dir DIR]
    skbpr tune --config cfg.yaml --storage URL [--n-workers N] [--n-trials N] [--create-only | --worker]
    skbpr evaluate --model model.joblib [--config cfg.yaml]
    skbpr recommend --model model.joblib --users u1 u2 [--k 10] [--output recs.csv]
    skbpr recommend --model model.joblib --all-users --output recs.parquet
    skbpr config > run.yaml      # every key with its default

Without ``--config``, ``fit`` runs the embedded default (synthetic data with
planted structure, see :data:`skbpr.config.DEFAULT_CONFIG`). Models are saved
with joblib, which runs code when loading: load only files you trust.

Exit status: 0 on success, 2 for an invalid configuration or command line
(the message names the offending key or option), 1 for other errors (for
example a download that failed). Output destinations (``--save``,
``--plot-dir``, ``--output``) are checked before any data is loaded: ``--save`` must name a
regular file (new or existing) whose folder is, or can be created in, a
writable folder; ``--plot-dir`` must be, or be creatable as, a writable folder;
``--output`` must in addition end in ``.csv``, ``.json`` or ``.parquet``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

from skbpr.cli.config import EXAMPLE_PATH, Config, ConfigError, load_config, validate_config
from skbpr.cli.output import print_table, say, tracking_available, warn

__all__ = ["CommandLineError", "main"]

MODEL_FORMAT = "skbpr-model/1"


class CommandLineError(ValueError):
    """An invalid command-line option; the message names the option and the bad value (exit status 2)."""


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def load_data(config: Config) -> Any:
    """The :class:`skbpr.Interactions` the ``data`` section describes."""
    d = config["data"]
    if d["source"] == "synthetic":
        from skbpr.data.datasets import make_interactions

        return make_interactions(
            d["n_users"],
            d["n_items"],
            d["n_interactions"],
            n_user_features=d["n_user_features"],
            n_item_features=d["n_item_features"],
            exposure_signal=d["exposure_signal"],
            popularity_skew=d["popularity_skew"],
            noise=d["noise"],
            random_state=d["random_state"],
        )
    if d["source"] == "movielens":
        from skbpr.data.datasets import load_movielens

        return load_movielens(
            d["name"],
            data_home=d["data_home"],
            download=d["download"],
            threshold=4.0 if d["threshold"] is None else d["threshold"],
        )
    return _load_events(d)


def _load_events(d: dict[str, Any]) -> Any:
    import pandas as pd

    from skbpr.data.interactions import Interactions

    path = d["path"]
    try:
        frame = pd.read_parquet(path) if d["format"] == "parquet" else pd.read_csv(path)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"data.path: cannot read {path!r} as {d['format']}: {exc}") from None
    for key in ("user_col", "item_col", "rating_col"):
        column = d[key]
        if column is not None and column not in frame.columns:
            raise ConfigError(f"data.{key}: expected a column of {path!r} ({list(frame.columns)}), got {column!r}")
    try:
        return Interactions.from_frame(
            frame,
            user_col=d["user_col"],
            item_col=d["item_col"],
            rating_col=d["rating_col"],
            threshold=d["threshold"] if d["rating_col"] is not None else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data.path: {path!r}: {exc}") from None


def split_data(config: Config, data: Any) -> tuple[Any, Any]:
    """The per-user train / test split of the ``data`` section."""
    from skbpr.evaluation.splitters import train_test_split

    d = config["data"]
    return train_test_split(data, test_size=d["test_size"], random_state=d["random_state"])


def _metrics(config: Config) -> list[str]:
    k = config["training"]["top_k"]
    return [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "auc"]


def _evaluation_rows(model: Any, train: Any, test: Any, metrics: list[str]) -> list[dict[str, Any]]:
    from skbpr import PopularityRecommender
    from skbpr.evaluation.metrics import evaluate

    baseline = PopularityRecommender().fit(train)
    return [
        {"model": "HybridBPR", **evaluate(model, test, metrics=metrics)},
        {"model": "popularity", **evaluate(baseline, test, metrics=metrics)},
    ]


def _describe_data(config: Config, data: Any, train: Any, test: Any) -> None:
    say(
        f"data: {config['data']['source']}, {data.n_users} users, {data.n_items} items, "
        f"{data.n_positives} positives ({train.n_positives} train, {test.n_positives} test, "
        f"per-user split test_size={config['data']['test_size']})"
    )


# --------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------
def _mlflow_callback(config: Config, *, log_model: bool | None = None, tracking_uri: str | None = None) -> Any:
    from skbpr.tracking.callbacks import MLflowCallback

    m = config["mlflow"]
    return MLflowCallback(
        tracking_uri=tracking_uri or m["tracking_uri"],
        experiment_name=m["experiment_name"],
        run_name=m["run_name"],
        log_model=m["log_model"] if log_model is None else log_model,
        fallback_uri=m["fallback_uri"],
    )


def _recorder(config: Config, uri: str, **kwargs: Any) -> Any:
    """A :class:`~skbpr.tracking.RunRecorder` in ``uri`` with the configured experiment and fallback store."""
    from skbpr.tracking.recorder import RunRecorder, absolute_uri, default_fallback_uri

    m = config["mlflow"]
    fallback = absolute_uri(m["fallback_uri"]) if m["fallback_uri"] else default_fallback_uri()
    return RunRecorder(uri, fallback, experiment_name=m["experiment_name"], **kwargs)


def _record_after_fit(uri: str, run_id: str, metrics: dict[str, float], config: Config, files: list[Path]) -> None:
    """Add test metrics, the configuration and plots to a finished run, through the recorder."""
    recorder = _recorder(config, uri, join_run_id=run_id)
    recorder.start({}, {})
    recorder.log(metrics=metrics)
    recorder.log_dict(config.to_dict(), "config.yaml")
    for path in files:
        recorder.log_file(path)


# --------------------------------------------------------------------------
# output destinations, checked before any work
# --------------------------------------------------------------------------
def _writable_folder(option: str, value: str, folder: Path) -> None:
    """``folder`` exists as a writable directory, or can be created under one."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CommandLineError(f"{option} {value!r}: {str(existing)!r} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandLineError(f"{option} {value!r}: the folder {str(existing)!r} is not writable")


def _check_output_file(option: str, value: str) -> Path:
    """The path of a file the command will write, checked before any work.

    Refuses an empty path, a path ending with a separator, an existing
    directory or other non-regular file (a device node, a FIFO), and a path
    whose folder is not, and cannot be created as, a writable directory.
    Missing folders are created when the file is written.

    Raises
    ------
    CommandLineError
        Naming ``option`` and ``value``.
    """
    if not value or value.endswith(("/", os.sep)) or (os.altsep and value.endswith(os.altsep)):
        raise CommandLineError(f"{option} {value!r}: expected a file path, got one that ends with a separator")
    path = Path(value).expanduser()
    if path.is_dir():
        raise CommandLineError(f"{option} {value!r}: it is an existing directory, not a file path")
    if path.exists() and not path.is_file():
        raise CommandLineError(f"{option} {value!r}: exists and is not a regular file (a device, FIFO or socket)")
    _writable_folder(option, value, path.parent)
    return path


def _check_output_dir(option: str, value: str, files: tuple[str, ...] = ()) -> Path:
    """A folder the command will write ``files`` into, checked before any work.

    Raises
    ------
    CommandLineError
        Naming ``option`` and ``value`` when the folder exists and is not a
        writable directory, cannot be created, or one of ``files`` in it
        cannot be written as a regular file.
    """
    if not value:
        raise CommandLineError(f"{option} {value!r}: expected a folder path")
    path = Path(value).expanduser()
    _writable_folder(option, value, path)
    for name in files:
        target = path / name
        if target.exists() and not target.is_file():
            raise CommandLineError(f"{option} {value!r}: {str(target)!r} exists and is not a regular file")
    return path


def _check_outputs(args: argparse.Namespace, plot: str) -> None:
    if args.save is not None:
        _check_output_file("--save", args.save)
    if args.plot_dir is not None:
        _check_output_dir("--plot-dir", args.plot_dir, (plot,))


# --------------------------------------------------------------------------
# saving and loading
# --------------------------------------------------------------------------
def _save(path: str, model: Any, config: Config, data: Any) -> None:
    import joblib

    import skbpr

    bundle = {
        "format": MODEL_FORMAT,
        "skbpr_version": skbpr.__version__,
        "estimator": model,
        "config": config.to_dict(),
        "user_ids": data.user_ids,
        "item_ids": data.item_ids,
        "item_titles": getattr(data, "item_titles", None),  # MovieLens titles, for skbpr recommend
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a crash never leaves a half-written model file.
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        joblib.dump(bundle, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    say(f"model saved to {path} (joblib: load only files you trust)")


def load_model(path: str) -> dict[str, Any]:
    """A model file written by ``skbpr fit --save`` (or a bare pickled estimator) as a bundle dict.

    joblib files are pickles: loading one runs code, so load only files you trust.
    """
    import joblib

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file not found: {path!r}")
    obj = joblib.load(path)
    if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
        return obj
    if hasattr(obj, "recommend") and hasattr(obj, "train_positives_"):
        return {"estimator": obj, "config": None, "user_ids": None, "item_ids": None, "item_titles": None}
    raise ValueError(f"{path!r} holds no skbpr model (found {type(obj).__name__})")


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
def cmd_fit(args: argparse.Namespace) -> int:
    from skbpr import HybridBPR

    _check_outputs(args, "learning_curve.png")
    config = load_config(args.config)
    data = load_data(config)
    train, test = split_data(config, data)
    _describe_data(config, data, train, test)
    params = config.estimator_params()
    tracking = tracking_available(config)
    callback = _mlflow_callback(config) if tracking else None
    model = HybridBPR(**params, callbacks=[callback] if callback else None)
    # Validation metrics per epoch: on the test split for the learning curve, unless part of
    # train is held out. Early stopping must never watch the test split: with a patience and
    # no validation_fraction, 10 % of each user's training positives are held out for it.
    training = config["training"]
    eval_set = None
    if training["patience"] is not None and training["validation_fraction"] is None:
        model.set_params(validation_fraction=0.1)
        say("training.patience is set: early stopping watches 10% of each user's training positives")
    elif training["validation_fraction"] is None:
        eval_set = test
    start = time.perf_counter()
    model.fit(train, eval_set=eval_set)
    seconds = time.perf_counter() - start
    shown = ("n_components", "loss", "negatives", "n_negatives", "optimizer", "learning_rate", "alpha", "epochs")
    # "auto" parameters as the fit resolved them (learning_rate_, alpha_, n_negatives_, negatives_)
    values = {k: getattr(model, f"{k}_", params[k]) if params[k] == "auto" else params[k] for k in shown}
    say(f"HybridBPR({', '.join(f'{k}={values[k]!r}' for k in shown)}) fitted in {seconds:.1f} s")
    _describe_epochs(model, params, watched="the test split" if eval_set is not None else "held-out train positives")
    metrics = _metrics(config)
    rows = _evaluation_rows(model, train, test, metrics)
    print_table(rows, ["model", *metrics])
    files = []
    if args.plot_dir:
        from skbpr.tracking.plots import plot_learning_curve

        out = Path(args.plot_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig = plot_learning_curve(model, title=f"HybridBPR learning curve ({config['data']['source']} data)")
        path = out / "learning_curve.png"
        fig.savefig(path, dpi=90)
        files.append(path)
        say(f"learning curve saved to {path}")
    callback = model.callbacks_[0] if callback is not None else None  # the fitted copy holds the run
    model.set_params(callbacks=None)  # the fitted model is saved without its tracking hook
    model.__dict__.pop("callbacks_", None)  # nor the fitted copy of it
    if args.save:
        _save(args.save, model, config, data)
    if callback is not None and getattr(callback, "run_id_", None):
        uri = callback.tracking_uri_
        _record_after_fit(
            uri, callback.run_id_, {f"test_{k}": v for k, v in rows[0].items() if k != "model"}, config, files
        )
        say(
            f"MLflow run {callback.run_id_} (experiment {config['mlflow']['experiment_name']!r}) stored in {uri}\n"
            f"  browse it with: mlflow ui --backend-store-uri {uri}"
        )
    return 0


def _describe_epochs(model: Any, params: dict[str, Any], watched: str) -> None:
    """Two lines: the epochs run (and the evaluation cadence), and the best epoch."""
    history = [row for row in model.history_ if not row.get("interrupted")]
    run = len(history)
    evaluated = sum(1 for row in history if any(str(k).startswith("val_") for k in row))
    stopped = f", stopped early after {run} of {params['epochs']}" if run < params["epochs"] else ""
    say(
        f"epochs run: {run}{stopped} (validation on {watched} every {params['eval_every']} "
        f"epoch{'s' if params['eval_every'] != 1 else ''}, {evaluated} evaluation{'s' if evaluated != 1 else ''})"
    )
    if model.best_epoch_ is None:
        say("best epoch: none (no evaluation ran; lower training.eval_every)")
        return
    metric = params["eval_metric"]
    value = next(row[f"val_{metric}"] for row in history if row["epoch"] == model.best_epoch_)
    kept = "its weights were kept" if params["patience"] is not None else f"the weights are those of epoch {run}"
    say(f"best epoch: {model.best_epoch_} (validation {metric} {value:.4f}; {kept})")


def cmd_sweep(args: argparse.Namespace) -> int:
    from sklearn.model_selection import GridSearchCV

    from skbpr import HybridBPR
    from skbpr.distributed.commands import sweep_backend, sweep_scheduler
    from skbpr.evaluation.metrics import evaluate
    from skbpr.evaluation.scorers import make_ranking_scorer
    from skbpr.evaluation.splitters import PerUserKFold

    _check_outputs(args, "sweep.png")
    config = load_config(args.config)
    if not config.grid:
        raise ConfigError("sweep: expected at least one searched key such as 'training.loss: [bpr, warp]', got none")
    scheduler = sweep_scheduler(args, config)  # Dask; checked before any work
    n_jobs = args.n_jobs if args.n_jobs is not None else (-1 if scheduler else 1)
    data = load_data(config)
    train, test = split_data(config, data)
    _describe_data(config, data, train, test)
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
        callback = _mlflow_callback(config, log_model=False, tracking_uri=uri)
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
    metrics = _metrics(config)
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
    model.set_params(callbacks=None)
    model.__dict__.pop("callbacks_", None)
    if args.save:
        _save(args.save, model, config, data)
    if parent is not None and parent.run_id:
        _record_sweep(parent, config, search, test_metrics, files)
    return 0


class _SweepRun:
    """The parent MLflow run of a sweep, active while the search runs (fits nest under it).

    When the configured store cannot be reached, the whole sweep (parent and
    fits) is recorded in the fallback store instead, with a warning.
    """

    def __init__(self, config: Config) -> None:
        import mlflow

        from skbpr.tracking.recorder import absolute_uri, default_fallback_uri

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

        from skbpr.tracking.recorder import probe

        probe(uri)  # an unreachable server fails here at once, not after MLflow's retries
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


def _record_sweep(parent: _SweepRun, config: Config, search: Any, test_metrics: dict, files: list[Path]) -> None:
    """One child run per candidate (searched params, mean and std scores); best and test scores on the parent."""
    results = search.cv_results_
    for i, candidate in enumerate(results["params"]):
        child = _recorder(
            config,
            parent.uri,
            run_name=f"candidate-{i}",
            parent_run_id=parent.run_id,
            tags={"skbpr.kind": "sweep-candidate"},
        )
        child.start({k: str(v) for k, v in candidate.items()}, {"skbpr.cv_candidate": str(i)})
        stats = {
            f"{s}_test_{name}": float(results[f"{s}_test_{name}"][i])
            for name in config.scoring
            for s in ("mean", "std", "rank")
        }
        child.log(metrics={**stats, "mean_fit_time": float(results["mean_fit_time"][i])})
        child.end()
    summary = {f"test_{k}": float(v) for k, v in test_metrics.items()}
    summary[f"best_mean_test_{config.scoring[0]}"] = float(search.best_score_)
    recorder = _recorder(config, parent.uri, join_run_id=parent.run_id)
    recorder.start({f"best.{Config.param_key(k)}": str(v) for k, v in search.best_params_.items()}, {})
    recorder.log(metrics=summary)
    recorder.log_dict(config.to_dict(), "config.yaml")
    for path in files:
        recorder.log_file(path)
    say(
        f"MLflow sweep run {parent.run_id} (experiment {config['mlflow']['experiment_name']!r}, one child run per "
        f"fit and per candidate) stored in {parent.uri}\n  browse it with: mlflow ui --backend-store-uri {parent.uri}"
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from skbpr.evaluation.metrics import evaluate

    bundle = load_model(args.model)
    model = bundle["estimator"]
    if args.config is not None:
        config = load_config(args.config)
    elif bundle.get("config") is not None:
        config = validate_config(bundle["config"])
    else:
        config = load_config(None)
    data = load_data(config)
    if (data.n_users, data.n_items) != (model.n_users_, model.n_items_):
        raise ConfigError(
            f"data: expected {model.n_users_} users x {model.n_items_} items as the model was fitted on, "
            f"got {data.n_users} x {data.n_items}"
        )
    train, test = split_data(config, data)
    _describe_data(config, data, train, test)
    metrics = _metrics(config)
    rows = [{"model": "HybridBPR", **evaluate(model, test, metrics=metrics)}]
    rows += _evaluation_rows(model, train, test, metrics)[1:]
    print_table(rows, ["model", *metrics])
    return 0


OUTPUT_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet"}


def _check_table_output(value: str) -> tuple[Path, str]:
    """The ``--output`` file of ``recommend`` and its format (from the suffix), checked before any work."""
    suffix = Path(value).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise CommandLineError(
            f"--output {value!r}: expected a file name ending in {', '.join(OUTPUT_FORMATS)} "
            f"(the format follows the suffix), got {suffix or 'no suffix'!r}"
        )
    fmt = OUTPUT_FORMATS[suffix]
    if fmt == "parquet" and not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        raise CommandLineError(f"--output {value!r}: writing Parquet needs pyarrow (pip install pyarrow)")
    return _check_output_file("--output", value), fmt


def _resolve_users(values: list[str], user_ids: Any, n_users: int, by_index: bool) -> list[int]:
    """User indices for the ``--users`` values: raw ids when the model has them, else indices."""
    if user_ids is None or by_index:
        indices, bad = [], []
        for value in values:
            try:
                index = int(value)
            except ValueError:
                index = -1
            if 0 <= index < n_users:
                indices.append(index)
            else:
                bad.append(value)
        if bad:
            why = "" if user_ids is not None else " (this model was fitted on data without user ids)"
            raise CommandLineError(f"--users: expected user indices in [0, {n_users}){why}, got {bad}")
        return indices
    lookup = {str(u): i for i, u in enumerate(user_ids)}
    bad = [v for v in values if v not in lookup]
    if bad:
        examples = ", ".join(repr(str(u)) for u in user_ids[:3])
        raise CommandLineError(
            f"--users: expected user ids of the model's data (such as {examples}; --index takes "
            f"indices in [0, {n_users}) instead), got {bad}"
        )
    return [lookup[v] for v in values]


def _write_table(rows: list[dict[str, Any]], columns: list[str], path: Path, fmt: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "json":
        frame.to_json(path, orient="records", indent=2, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)


def cmd_recommend(args: argparse.Namespace) -> int:
    if (args.users is None) == (not args.all_users):
        raise CommandLineError("--users / --all-users: expected exactly one of them")
    if args.all_users and args.output is None:
        raise CommandLineError("--all-users: expected --output PATH (.parquet, .csv or .json) to write them to")
    output = _check_table_output(args.output) if args.output is not None else None
    bundle = load_model(args.model)
    model = bundle["estimator"]
    if args.k < 1 or args.k > model.n_items_:
        raise CommandLineError(f"--k: expected an integer in [1, {model.n_items_}], got {args.k}")
    if args.all_users:
        from skbpr.distributed.commands import recommend_all_users

        return recommend_all_users(args, bundle, *output)
    item_ids = bundle.get("item_ids")
    user_ids = bundle.get("user_ids")
    titles = bundle.get("item_titles")
    users = _resolve_users(args.users, user_ids, model.n_users_, args.index)
    ids, scores = model.recommend(users, k=args.k, exclude_seen=not args.include_seen)
    rows = []
    for user, row_ids, row_scores in zip(users, ids, scores, strict=True):
        for rank, (item, score) in enumerate(zip(row_ids, row_scores, strict=True), start=1):
            if item < 0:
                break
            row = {"user": int(user), "rank": rank, "item": int(item), "score": float(score)}
            if user_ids is not None:
                row["user_id"] = _plain(user_ids[user])
            if item_ids is not None:
                row["item_id"] = _plain(item_ids[item])
            if titles is not None:
                row["title"] = str(titles[item])
            rows.append(row)
    columns = ["user", *(["user_id"] if user_ids is not None else []), "rank", "item"]
    columns += ["item_id"] if item_ids is not None else []
    columns += ["score", *(["title"] if titles is not None else [])]
    if output is None:
        print_table(rows, columns, left=("title",))
        return 0
    path, fmt = output
    _write_table(rows, columns, path, fmt)
    say(f"{len(rows)} recommendations for {len(users)} users written to {args.output} ({fmt})")
    return 0


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON and CSV writers, printing)."""
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    import skbpr

    parser = argparse.ArgumentParser(
        prog="skbpr",
        description="Fit, tune, evaluate and query HybridBPR recommenders from a YAML configuration.",
        epilog="Model files are joblib pickles: loading one runs code, so load only files you trust.",
    )
    parser.add_argument("--version", action="version", version=f"skbpr {skbpr.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "fit",
        help="fit on a per-user train split, compare with popularity on the test split",
        epilog=_config_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML configuration (default: the embedded synthetic example)")
    p.add_argument("--save", metavar="PATH", help="save the fitted model with joblib")
    p.add_argument("--plot-dir", metavar="DIR", help="write learning_curve.png here")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "sweep",
        help="grid search with per-user K-fold cross-validation",
        epilog=_config_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="YAML configuration with a sweep section")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default 1; -1 with --scheduler)")
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the fits on this Dask scheduler's workers (default: sweep.scheduler, else locally)",
    )
    p.add_argument("--save", metavar="PATH", help="save the refitted best model with joblib")
    p.add_argument("--plot-dir", metavar="DIR", help="write sweep.png here")
    p.set_defaults(func=cmd_sweep)

    from skbpr.distributed.commands import add_tune_parser

    add_tune_parser(sub, _config_epilog())

    p = sub.add_parser("evaluate", help="evaluate a saved model on the configuration's test split")
    p.add_argument("--model", required=True, metavar="PATH", help="model file written by fit --save (trusted)")
    p.add_argument("--config", help="YAML configuration (default: the one saved with the model)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-k items for some users from a saved model")
    p.add_argument("--model", required=True, metavar="PATH", help="model file written by fit --save (trusted)")
    p.add_argument(
        "--users",
        nargs="+",
        metavar="USER",
        help="user ids as in the data (an events file's user column, MovieLens user ids); user indices "
        "when the model's data has no ids (synthetic data) or with --index",
    )
    p.add_argument(
        "--all-users",
        action="store_true",
        help="every user of the model, written to --output as user, item, score, rank (raw ids)",
    )
    p.add_argument("--index", action="store_true", help="read --users as user indices (0 .. n_users-1)")
    p.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true", help="keep the training positives in the ranking")
    p.add_argument(
        "--output",
        metavar="PATH",
        help="write the recommendations to PATH instead of printing them: .csv, .json (records) or .parquet",
    )
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "config",
        help="print an example configuration: every key with its default",
        description=f"Print every configuration key with its default value and allowed values, as YAML "
        f"(the file {EXAMPLE_PATH} of the source tree holds the same text).",
    )
    p.set_defaults(func=cmd_config)
    return parser


def _config_epilog() -> str:
    from skbpr.cli.config import SCHEMA

    lines = ["configuration sections and keys (all optional):"]
    for section, fields in SCHEMA.items():
        keys = [*fields, "scoring", "<section>.<key>: [values]"] if section == "sweep" else list(fields)
        lines.extend(textwrap.wrap(", ".join(keys), width=96, initial_indent=f"  {section + ':':<11}",
                                   subsequent_indent=" " * 13))  # fmt: skip
    lines.append(f"every key with its default and allowed values: skbpr config (also {EXAMPLE_PATH});")
    lines.append("details in docs/tracking.md")
    return "\n".join(lines)


def cmd_config(args: argparse.Namespace) -> int:
    from skbpr.cli.config import example_config

    print(example_config(), end="", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for configuration errors)."""
    args = build_parser().parse_args(argv)
    # MLflow's own notices (database creation, the pickle-format caution that the
    # command's help and docs already give) would bury the metrics table.
    for name in ("mlflow.store.db.utils", "mlflow.sklearn", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ff]ilesystem tracking backend.*")
            return args.func(args)
    except ConfigError as exc:
        print(f"skbpr: configuration error: {exc}", file=sys.stderr)
        return 2
    except CommandLineError as exc:
        print(f"skbpr: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"skbpr: error: {exc}", file=sys.stderr)
        return 1
