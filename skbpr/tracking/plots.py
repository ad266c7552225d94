"""Learning curves, hyperparameter sweeps and model comparisons as matplotlib figures.

Each function takes what a fit or a search leaves behind (``history_``,
``cv_results_``) or reads the same numbers back from MLflow (a run id, an
experiment name). matplotlib, pandas' MLflow readers and MLflow itself are
imported only when called; figures are made with the object-oriented API,
so no window opens and no global figure state is touched.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from skbpr.tracking.run_reading import history_from_mlflow, runs_to_results
from skbpr.tracking.stores import metric_key

__all__ = [
    "best_runs_table",
    "learning_curve_frame",
    "mlflow_metric_name",
    "plot_learning_curve",
    "plot_sweep",
    "plot_tradeoff",
]


# The name users know for the one metric-key rule of the recorder.
mlflow_metric_name = metric_key


def _figure(n_panels: int, width: float = 4.5, height: float = 3.6, max_columns: int | None = None) -> Any:
    from matplotlib.figure import Figure

    columns = n_panels if max_columns is None else min(n_panels, max_columns)
    rows = -(-n_panels // columns)
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        fig.delaxes(ax)
    return fig, axes[:n_panels]


# --------------------------------------------------------------------------
# learning curves
# --------------------------------------------------------------------------
def learning_curve_frame(source: Any, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """Per-epoch ``loss`` and ``val_*`` metrics as a DataFrame indexed by epoch.

    ``source`` is a ``history_`` list, a fitted estimator with ``history_``
    or an MLflow run id (read from ``tracking_uri``, default MLflow's
    current one).

    Examples
    --------
    >>> from skbpr.plotting import learning_curve_frame
    >>> history = [
    ...     {"epoch": 1, "loss": 0.69, "val_ndcg@10": 0.1},
    ...     {"epoch": 2, "loss": 0.5},
    ...     {"epoch": 3, "loss": 0.4, "val_ndcg@10": 0.2},
    ... ]
    >>> learning_curve_frame(history)
           loss  val_ndcg@10
    epoch
    1      0.69          0.1
    2      0.50          NaN
    3      0.40          0.2
    """
    if isinstance(source, str):
        history = history_from_mlflow(source, tracking_uri)
    elif hasattr(source, "history_"):
        history = source.history_
    elif isinstance(source, Sequence) and all(isinstance(row, Mapping) for row in source):
        history = list(source)
    else:
        raise TypeError(
            "plot_learning_curve needs a history_ list, an estimator with history_ or an MLflow run id, "
            f"got {type(source).__name__}"
        )
    rows = [row for row in history if not row.get("interrupted")]
    if not rows:
        raise ValueError("the history is empty: nothing to plot")
    frame = pd.DataFrame(rows)
    if "epoch" not in frame:
        frame["epoch"] = np.arange(1, len(frame) + 1)
    keep = [c for c in frame.columns if c == "loss" or str(c).startswith("val_")]
    return frame.set_index("epoch")[keep].sort_index()


def _best_epoch_of(source: Any, tracking_uri: str | None) -> int | None:
    """The best epoch a fitted estimator or an MLflow run recorded (``None`` for a bare history)."""
    if isinstance(source, str):
        from mlflow.tracking import MlflowClient

        value = MlflowClient(tracking_uri=tracking_uri).get_run(source).data.metrics.get("best_epoch")
        return None if value is None else int(value)
    value = getattr(source, "best_epoch_", None)
    return None if value is None else int(value)


def plot_learning_curve(
    source: Any, *, tracking_uri: str | None = None, title: str | None = None, best_epoch: Any = "auto"
) -> Any:
    """Training loss and validation metrics per epoch, with the best epoch marked.

    Parameters
    ----------
    source : list of dict, fitted estimator or str
        ``history_`` (one dict per epoch with ``epoch``, ``loss`` and
        ``val_*`` metrics), an estimator holding it, or an MLflow run id
        whose metric history is read with ``MlflowClient.get_metric_history``.
    tracking_uri : str, optional
        Where the MLflow run is stored (with a run id only).
    title : str, optional
        Figure title; default ``"Learning curve"``.
    best_epoch : "auto", int or None, default="auto"
        Epoch marked by a dashed vertical line on every panel. ``"auto"``:
        the estimator's ``best_epoch_`` or the run's ``best_epoch`` metric
        (no mark for a bare history list); ``None``: no mark.

    Returns
    -------
    matplotlib.figure.Figure
        A panel with the loss, then one panel per ``val_*`` metric, each
        with its own y scale (AUC near 1 and NDCG near 0.1 stay readable);
        epochs without evaluation are skipped. At most three panels a row.

    Examples
    --------
    >>> from skbpr.plotting import plot_learning_curve
    >>> history = [
    ...     {"epoch": 1, "loss": 0.69, "val_ndcg@10": 0.1},
    ...     {"epoch": 2, "loss": 0.5},
    ...     {"epoch": 3, "loss": 0.4, "val_ndcg@10": 0.2},
    ... ]
    >>> fig = plot_learning_curve(history, best_epoch=3)
    >>> [ax.get_title() for ax in fig.axes]
    ['Training loss', 'Validation ndcg@10']
    """
    if best_epoch != "auto" and best_epoch is not None:
        if isinstance(best_epoch, bool) or not isinstance(best_epoch, numbers.Integral) or best_epoch < 1:
            raise ValueError(f"best_epoch must be 'auto', None or an epoch number >= 1, got {best_epoch!r}")
    frame = learning_curve_frame(source, tracking_uri=tracking_uri)
    if best_epoch == "auto":
        best_epoch = _best_epoch_of(source, tracking_uri)
    val_cols = [c for c in frame.columns if str(c).startswith("val_")]
    fig, axes = _figure(1 + len(val_cols), max_columns=3)
    ax = axes[0]
    if "loss" in frame:
        loss = frame["loss"].dropna()
        ax.plot(loss.index, loss.to_numpy(), marker="o", markersize=3, label="loss")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    for ax, col in zip(axes[1:], val_cols, strict=True):
        series = frame[col].dropna()
        ax.plot(series.index, series.to_numpy(), marker="o", markersize=3, label=col, color="tab:orange")
        ax.set_ylabel(col)
        ax.set_title(f"Validation {str(col)[len('val_') :]}")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch is not None:
            mark = f"best epoch ({best_epoch})"
            ax.axvline(int(best_epoch), color="tab:green", linestyle="--", linewidth=1, label=mark)
        if best_epoch is not None or ax is not axes[0]:
            ax.legend(fontsize="small")
    fig.suptitle(title or "Learning curve")
    return fig


# --------------------------------------------------------------------------
# sweeps
# --------------------------------------------------------------------------
def _as_results(source: Any, metric: str, tracking_uri: str | None, parent_run_id: str | None) -> dict[str, Any]:
    if isinstance(source, str):
        return runs_to_results(source, metric, tracking_uri, parent_run_id)
    if hasattr(source, "cv_results_"):
        source = source.cv_results_
    if isinstance(source, pd.DataFrame):
        source = {c: source[c].tolist() for c in source.columns}
    if not isinstance(source, Mapping) or "params" not in source:
        raise TypeError(
            "expected cv_results_ (a dict with 'params'), a fitted search, a DataFrame of it or an "
            f"MLflow experiment name, got {type(source).__name__}"
        )
    if metric not in source:
        options = sorted(k for k in source if str(k).startswith("mean_test_"))
        raise ValueError(f"metric {metric!r} is not in the results; available: {options}")
    return dict(source)


def _searched(results: Mapping[str, Any]) -> list[str]:
    """Parameters with more than one value among the candidates (all of them if none varies)."""
    names = [k[len("param_") :] for k in results if str(k).startswith("param_")]
    if not names:
        names = sorted({k for p in results["params"] for k in p})
    varying = [n for n in names if len({repr(p.get(n)) for p in results["params"]}) > 1]
    return varying or names


def _sort_key(value: Any) -> tuple:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, repr(value))


def best_runs_table(
    source: Any,
    metric: str = "mean_test_ndcg@10",
    n: int = 5,
    *,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
) -> pd.DataFrame:
    """The ``n`` best candidates of a search, best first.

    Parameters
    ----------
    source : dict, fitted search, DataFrame or str
        ``cv_results_`` (or the search, or ``pd.DataFrame(cv_results_)``),
        or an MLflow experiment name or id holding one child run per
        candidate with the searched parameters as params and ``metric`` (and
        its ``std_`` twin) as metrics.
    metric : str
        Column to rank by, e.g. ``"mean_test_ndcg@10"``.
    n : int
        Rows to keep.
    tracking_uri, parent_run_id : str, optional
        With an experiment: the MLflow store, and the sweep's parent run
        (default: the most recent sweep of the experiment).

    Returns
    -------
    pandas.DataFrame
        One row per candidate: ``rank``, the searched parameters, ``metric``
        and its standard deviation (where known).

    Examples
    --------
    >>> from skbpr.plotting import best_runs_table
    >>> results = {
    ...     "params": [{"alpha": a, "n_components": n} for a in (0.01, 0.1) for n in (8, 16)],
    ...     "mean_test_ndcg@10": [0.12, 0.15, 0.10, 0.11],
    ...     "std_test_ndcg@10": [0.01, 0.02, 0.01, 0.01],
    ... }
    >>> best_runs_table(results, n=2)
       rank  alpha  n_components  mean_test_ndcg@10  std_test_ndcg@10
    0     1   0.01            16               0.15              0.02
    1     2   0.01             8               0.12              0.01
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    results = _as_results(source, metric, tracking_uri, parent_run_id)
    names = _searched(results)
    frame = pd.DataFrame({name: [p.get(name) for p in results["params"]] for name in names})
    frame[metric] = np.asarray(results[metric], dtype=float)
    std = metric.replace("mean_", "std_", 1)
    if metric.startswith("mean_") and std in results:
        frame[std] = np.asarray(results[std], dtype=float)
    if "run_id" in results:
        frame["run_id"] = results["run_id"]
    frame = frame.sort_values(metric, ascending=False, kind="stable").head(n)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def plot_sweep(
    source: Any,
    metric: str = "mean_test_ndcg@10",
    *,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
    title: str | None = None,
) -> Any:
    """One panel per searched hyperparameter: the metric against its values.

    For each value of a parameter, the panel shows the best candidate that
    uses that value (the other parameters at their best setting for it),
    with its standard deviation over the folds as an error bar, and every
    candidate with that value as a faint dot.

    Parameters
    ----------
    source : dict, fitted search, DataFrame or str
        See :func:`best_runs_table`.
    metric : str
        Mean test score to plot, e.g. ``"mean_test_ndcg@10"``.
    tracking_uri, parent_run_id : str, optional
        See :func:`best_runs_table`.
    title : str, optional
        Figure title; default ``"Sweep: <metric>"``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from skbpr.plotting import plot_sweep
    >>> results = {
    ...     "params": [{"alpha": a, "n_components": n} for a in (0.01, 0.1) for n in (8, 16)],
    ...     "mean_test_ndcg@10": [0.12, 0.15, 0.10, 0.11],
    ...     "std_test_ndcg@10": [0.01, 0.02, 0.01, 0.01],
    ... }
    >>> fig = plot_sweep(results)
    >>> [ax.get_title() for ax in fig.axes]
    ['alpha', 'n_components']
    """
    results = _as_results(source, metric, tracking_uri, parent_run_id)
    names = _searched(results)
    if not names:
        raise ValueError("the results have no searched parameter to plot")
    means = np.asarray(results[metric], dtype=float)
    std_key = metric.replace("mean_", "std_", 1)
    stds = np.asarray(results[std_key], dtype=float) if metric.startswith("mean_") and std_key in results else None
    params = results["params"]
    fig, axes = _figure(len(names), width=3.8)
    for ax, name in zip(axes, names, strict=True):
        values = sorted({repr(p.get(name)): p.get(name) for p in params}.values(), key=_sort_key)
        positions = np.arange(len(values))
        best_mean, best_std = [], []
        for value in values:
            idx = [i for i, p in enumerate(params) if repr(p.get(name)) == repr(value)]
            ax.scatter(np.full(len(idx), positions[values.index(value)]), means[idx], s=10, color="0.6", alpha=0.6)
            top = idx[int(np.nanargmax(means[idx]))] if np.isfinite(means[idx]).any() else idx[0]
            best_mean.append(means[top])
            best_std.append(0.0 if stds is None else stds[top])
        ax.errorbar(
            positions,
            np.asarray(best_mean, dtype=float),
            yerr=None if stds is None else np.asarray(best_std, dtype=float),
            marker="o",
            capsize=4,
            linewidth=1.5,
        )
        ax.set_xticks(positions, [str(v) for v in values])
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"Sweep: {metric}")
    return fig


# --------------------------------------------------------------------------
# model comparisons
# --------------------------------------------------------------------------
_COMPARISON_NEEDS = ("model", "metric", "mean", "ci_low", "ci_high")


def _error_bar(row: pd.Series) -> list[list[float]]:
    """Lengths below and above the mean (0 where the interval leaves the mean out, or is NaN)."""
    below, above = row["mean"] - row["ci_low"], row["ci_high"] - row["mean"]
    return [[max(float(np.nan_to_num(below)), 0.0)], [max(float(np.nan_to_num(above)), 0.0)]]


def plot_tradeoff(
    comparison: pd.DataFrame,
    x: str = "coverage@10",
    y: str = "ndcg@10",
    *,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Accuracy against a beyond-accuracy metric, one point per model, the confidence intervals as error bars.

    Parameters
    ----------
    comparison : pandas.DataFrame
        The table of :func:`skbpr.metrics.compare_models` (columns
        ``model``, ``metric``, ``mean``, ``ci_low``, ``ci_high``), with rows
        for both metrics.
    x, y : str
        Metric names as in the table's ``metric`` column, for instance
        ``"coverage@10"`` or ``"novelty@10"`` against ``"ndcg@10"``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure's single axes.
    title : str, optional
        Axes title; default ``"<y> against <x>"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Examples
    --------
    >>> import pandas as pd
    >>> from skbpr.plotting import plot_tradeoff
    >>> table = pd.DataFrame({
    ...     "model": ["pop", "pop", "bpr", "bpr"],
    ...     "metric": ["ndcg@10", "coverage@10"] * 2,
    ...     "mean": [0.20, 0.05, 0.25, 0.40],
    ...     "ci_low": [0.18, 0.04, 0.23, 0.37],
    ...     "ci_high": [0.22, 0.06, 0.27, 0.43],
    ... })
    >>> fig = plot_tradeoff(table, "coverage@10", "ndcg@10")
    >>> ax = fig.axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.texts]
    ('coverage@10', 'ndcg@10', ['pop', 'bpr'])
    """
    if not isinstance(comparison, pd.DataFrame):
        raise TypeError(f"comparison must be the DataFrame of compare_models, got {type(comparison).__name__}")
    missing = [c for c in _COMPARISON_NEEDS if c not in comparison.columns]
    if missing:
        raise ValueError(
            f"comparison must have the columns {list(_COMPARISON_NEEDS)} of compare_models; it lacks {missing}"
        )
    available = list(dict.fromkeys(comparison["metric"]))
    for name, metric in (("x", x), ("y", y)):
        if metric not in available:
            raise ValueError(f"{name} must be one of the compared metrics {available}, got {metric!r}")
    table = comparison.set_index(["model", "metric"])
    models = list(dict.fromkeys(comparison["model"]))
    if ax is None:
        fig, (ax,) = _figure(1, width=5.2, height=4.2)
    else:
        fig = ax.figure
    for model in models:
        px, py = table.loc[(model, x)], table.loc[(model, y)]
        ax.errorbar(
            px["mean"],
            py["mean"],
            xerr=_error_bar(px),
            yerr=_error_bar(py),
            marker="o",
            capsize=4,
            linestyle="none",
            label=model,
        )
        ax.annotate(model, (px["mean"], py["mean"]), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title or f"{y} against {x}")
    ax.grid(alpha=0.3)
    return fig
