"""Reading recorded MLflow runs back: learning-curve histories and sweep results."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from skbpr.tracking.stores import metric_key

__all__ = ["history_from_mlflow", "runs_to_results"]


def _display_name(name: str) -> str:
    """``val_ndcg_at_10`` back to ``val_ndcg@10``."""
    return re.sub(r"_at_(\d+)$", r"@\1", name)


def history_from_mlflow(run_id: str, tracking_uri: str | None) -> list[dict[str, float]]:
    """Per-epoch ``loss`` and ``val_*`` values an MLflow run recorded, oldest epoch first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    names = [m for m in run.data.metrics if m == "loss" or m.startswith("val_")]
    by_epoch: dict[int, dict[str, float]] = {}
    for name in names:
        for point in client.get_metric_history(run_id, name):
            epoch = int(point.step)
            by_epoch.setdefault(epoch, {"epoch": epoch})[_display_name(name)] = float(point.value)
    if not by_epoch:
        raise ValueError(f"MLflow run {run_id!r} has no 'loss' or 'val_*' metric history")
    return [by_epoch[e] for e in sorted(by_epoch)]


def _parse_param(text: str) -> Any:
    """An MLflow parameter string back to a number, bool or None where it reads as one."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def runs_to_results(
    experiment: str, metric: str, tracking_uri: str | None, parent_run_id: str | None
) -> dict[str, Any]:
    """cv_results_-like dict from the candidate runs of an MLflow sweep."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            exp = client.get_experiment(experiment)
        except Exception:  # noqa: BLE001 - MLflow raises its own error types for unknown ids
            exp = None
    if exp is None:
        raise ValueError(f"no MLflow experiment named (or with id) {experiment!r}")
    mean_key = metric_key(metric)
    std_key = metric_key(metric.replace("mean_", "std_", 1)) if metric.startswith("mean_") else None
    runs = [
        r
        for r in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
        if mean_key in r.data.metrics
    ]
    if not runs:
        raise ValueError(f"experiment {exp.name!r} has no run with the metric {mean_key!r}")
    if parent_run_id is None:  # the latest sweep: siblings of the newest candidate run
        parent_run_id = runs[0].data.tags.get("mlflow.parentRunId")
    if parent_run_id is not None:
        runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_run_id]
    if not runs:
        raise ValueError(f"no run of experiment {exp.name!r} with the metric {mean_key!r} under {parent_run_id!r}")
    runs = runs[::-1]
    names = sorted({k for r in runs for k in r.data.params})
    params = [{k: _parse_param(r.data.params[k]) for k in names if k in r.data.params} for r in runs]
    results: dict[str, Any] = {"params": params, "run_id": [r.info.run_id for r in runs]}
    for k in names:
        results[f"param_{k}"] = [p.get(k) for p in params]
    results[metric] = np.array([r.data.metrics[mean_key] for r in runs], dtype=float)
    if std_key is not None:
        results[metric.replace("mean_", "std_", 1)] = np.array(
            [r.data.metrics.get(std_key, np.nan) for r in runs], dtype=float
        )
    return results
