"""The ``fit`` and ``evaluate`` commands, with the data loading and reporting the commands share."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from skbpr.cli.config import Config, ConfigError, load_config, validate_config
from skbpr.cli.errors import CommandLineError
from skbpr.cli.files import check_outputs, load_model, save_model
from skbpr.cli.output import print_table, say, tracking_available, warn


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


def metric_names(config: Config) -> list[str]:
    """The metrics the commands report: precision, recall and NDCG at ``training.top_k``, and AUC."""
    k = config["training"]["top_k"]
    return [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "auc"]


def _evaluation_rows(model: Any, train: Any, test: Any, metrics: list[str]) -> list[dict[str, Any]]:
    from skbpr.evaluation.metrics import evaluate
    from skbpr.evaluation.names import parse_metric
    from skbpr.models.popularity import PopularityRecommender

    baseline = PopularityRecommender().fit(train)
    # popularity has no item vectors, so no intra-list diversity: its cell stays empty
    plain = [name for name in metrics if parse_metric(name).base != "ild"]
    return [
        {"model": "HybridBPR", **evaluate(model, test, metrics=metrics)},
        {"model": "popularity", **evaluate(baseline, test, metrics=plain)},
    ]


def describe_data(config: Config, data: Any, train: Any, test: Any) -> None:
    """Print the data's size and the train/test split the command works on."""
    say(
        f"data: {config['data']['source']}, {data.n_users} users, {data.n_items} items, "
        f"{data.n_positives} positives ({train.n_positives} train, {test.n_positives} test, "
        f"per-user split test_size={config['data']['test_size']})"
    )


# --------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------
def mlflow_callback(config: Config, *, log_model: bool | None = None, tracking_uri: str | None = None) -> Any:
    """The :class:`~skbpr.tracking.MLflowCallback` the ``mlflow`` section describes."""
    from skbpr.tracking.callbacks import MLflowCallback

    m = config["mlflow"]
    return MLflowCallback(
        tracking_uri=tracking_uri or m["tracking_uri"],
        experiment_name=m["experiment_name"],
        run_name=m["run_name"],
        log_model=m["log_model"] if log_model is None else log_model,
        fallback_uri=m["fallback_uri"],
    )


def run_recorder(config: Config, uri: str, **kwargs: Any) -> Any:
    """A :class:`~skbpr.tracking.RunRecorder` in ``uri`` with the configured experiment and fallback store."""
    from skbpr.tracking.recorder import RunRecorder
    from skbpr.tracking.stores import absolute_uri, default_fallback_uri

    m = config["mlflow"]
    fallback = absolute_uri(m["fallback_uri"]) if m["fallback_uri"] else default_fallback_uri()
    return RunRecorder(uri, fallback, experiment_name=m["experiment_name"], **kwargs)


def _record_after_fit(uri: str, run_id: str, metrics: dict[str, float], config: Config, files: list[Path]) -> None:
    """Add test metrics, the configuration and plots to a finished run, through the recorder."""
    recorder = run_recorder(config, uri, join_run_id=run_id)
    recorder.start({}, {})
    recorder.log(metrics=metrics)
    recorder.log_dict(config.to_dict(), "config.yaml")
    for path in files:
        recorder.log_file(path)


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
def cmd_fit(args: argparse.Namespace) -> int:
    from skbpr.models.hybrid import HybridBPR

    check_outputs(args, "learning_curve.png")
    config = load_config(args.config)
    if args.config is None:
        say("configuration: the embedded default job (skbpr config --embedded prints it)")
    data = load_data(config)
    train, test = split_data(config, data)
    describe_data(config, data, train, test)
    params = config.estimator_params()
    tracking = tracking_available(config)
    callback = mlflow_callback(config) if tracking else None
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
    metrics = metric_names(config)
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
        save_model(args.save, model, config, data, train)
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


# The data keys that decide the training split, by source; where the data lives (data_home,
# download) is left out: the digest of the training positives catches other contents.
_SPLIT_KEYS = {
    "synthetic": ("n_users", "n_items", "n_interactions", "n_user_features", "n_item_features", "exposure_signal",
                  "popularity_skew", "noise"),
    "movielens": ("name", "threshold"),
    "file": ("path", "format", "user_col", "item_col", "rating_col", "threshold"),
}  # fmt: skip


def _differing_data_keys(saved: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The data keys, deciding the training split, whose values differ (as lines for a message)."""
    keys = ["source", *_SPLIT_KEYS.get(data["source"], ()), "test_size", "random_state"]
    if saved.get("source") != data["source"]:
        keys = keys[:1]
    return [
        f"data.{key} is {saved.get(key)!r} in the model file, {data.get(key)!r} here"
        for key in keys
        if saved.get(key) != data.get(key)
    ]


def _other_data(model_path: str, option: str, differences: list[str], digests: tuple[str, str] | None) -> str:
    what = "; ".join(differences)
    if digests is not None:
        what = (f"{what}; " if what else "") + (
            f"training positives sha256 {digests[0][:16]} in the model file, {digests[1][:16]} here"
        )
    fix = (
        "Evaluate with the model's own configuration (leave out --config)"
        if option.startswith("--config")
        else "The data changed since the model was trained: fit it again"
    )
    return (
        f"{option}: the model {model_path!r} was trained on other data or another split ({what}), so its "
        f"test split would hold positives the model trained on, or miss some it did not see. {fix}, or pass "
        "--allow-other-data to score it anyway"
    )


def _evaluate_metrics(args: argparse.Namespace, config: Config, n_items: int) -> list[str]:
    """The ``--metrics`` names (default :func:`metric_names`), checked against the catalogue."""
    from skbpr.evaluation.names import parse_metrics

    if getattr(args, "metrics", None) is None:
        return metric_names(config)
    try:
        parsed = parse_metrics(args.metrics)
    except (TypeError, ValueError) as exc:
        raise CommandLineError(f"--metrics: {exc}") from None
    for name, m in parsed:
        if m.k is not None and m.k > n_items:
            raise CommandLineError(f"--metrics {name!r}: k={m.k} is larger than the catalogue of {n_items} items")
    return list(dict.fromkeys(args.metrics))


def _model_names(paths: list[str]) -> list[str]:
    """Names of the compared models: the file names without their suffix, the paths where two clash."""
    stems = [Path(p).stem for p in paths]
    return stems if len(set(stems)) == len(stems) else list(paths)


def _comparison_rows(table: Any) -> list[dict[str, Any]]:
    rows = []
    for row in table.to_dict("records"):
        for key in ("diff", "p_value", "p_corrected"):
            value = row[key]
            row[key] = "" if value != value else (f"{value:+.4f}" if key == "diff" else f"{value:.3g}")
        rows.append(row)
    return rows


def cmd_evaluate(args: argparse.Namespace) -> int:
    from skbpr.models.files import positives_digest

    compare = list(getattr(args, "compare", None) or [])
    paths = [str(Path(p).expanduser().resolve()) for p in [args.model, *compare]]
    twice = sorted({p for p in [args.model, *compare] if paths.count(str(Path(p).expanduser().resolve())) > 1})
    if twice:
        raise CommandLineError(f"--compare: each model file can be compared once, got {twice} twice")
    bundles = {path: load_model(path) for path in [args.model, *compare]}
    model = bundles[args.model]["estimator"]
    option = f"--config {args.config!r}" if args.config is not None else "the model's configuration"
    if args.config is not None:
        config = load_config(args.config)
    elif bundles[args.model].get("config") is not None:
        config = validate_config(bundles[args.model]["config"])
    else:
        config = load_config(None)
    metrics = _evaluate_metrics(args, config, model.n_items_)
    allow = getattr(args, "allow_other_data", False)
    fingerprints = {path: bundle.get("training") for path, bundle in bundles.items()}
    for path, fingerprint in fingerprints.items():
        if fingerprint is not None and not allow:  # before loading any data
            differences = _differing_data_keys(fingerprint["data"], config["data"])
            if differences:
                raise CommandLineError(_other_data(path, option, differences, None))
    data = load_data(config)
    for path, bundle in bundles.items():
        estimator = bundle["estimator"]
        if (data.n_users, data.n_items) != (estimator.n_users_, estimator.n_items_):
            raise ConfigError(
                f"data: expected {estimator.n_users_} users x {estimator.n_items_} items as the model {path} was "
                f"fitted on, got {data.n_users} x {data.n_items}"
            )
    train, test = split_data(config, data)
    digest = positives_digest(train) if any(f is not None for f in fingerprints.values()) else None
    for path, fingerprint in fingerprints.items():
        if fingerprint is None:
            say(f"the model file {path} records no fingerprint of its training data: the split it is scored on is "
                "not checked")  # fmt: skip
            continue
        digests = (fingerprint["train_positives_sha256"], digest)
        if digests[0] != digests[1] and not allow:  # the same keys, other contents (an events file changed)
            raise CommandLineError(_other_data(path, option, [], digests))
        if allow and (digests[0] != digests[1] or _differing_data_keys(fingerprint["data"], config["data"])):
            warn("--allow-other-data: the model was trained on other data or another split than it is scored on")
    others = [bundles[path]["estimator"] for path in compare]
    describe_data(config, data, train, test)
    if compare:
        from skbpr.evaluation.compare import COMPARISON_COLUMNS, compare_models

        names = _model_names([args.model, *compare])
        table = compare_models(dict(zip(names, [model, *others], strict=True)), test, metrics=metrics, test=args.test)
        say(f"baseline: {names[0]}; {args.test} paired tests over users, Holm-corrected; 95% bootstrap intervals")
        print_table(_comparison_rows(table), list(COMPARISON_COLUMNS), left=("metric",))
        return 0
    print_table(_evaluation_rows(model, train, test, metrics), ["model", *metrics])
    return 0
