"""Learning-curve and sweep figures: what they draw, from histories, searches and MLflow."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from skbpr import HybridBPR  # noqa: E402
from skbpr.datasets import make_interactions  # noqa: E402
from skbpr.metrics import auc_scorer, ndcg_scorer  # noqa: E402
from skbpr.model_selection import PerUserKFold, train_test_split  # noqa: E402
from skbpr.plotting import (  # noqa: E402
    best_runs_table,
    learning_curve_frame,
    mlflow_metric_name,
    plot_learning_curve,
    plot_sweep,
)

HISTORY = [
    {"epoch": 1, "loss": 0.9, "val_ndcg@10": 0.10, "val_auc": 0.70},
    {"epoch": 2, "loss": 0.7},
    {"epoch": 3, "loss": 0.5, "val_ndcg@10": 0.20, "val_auc": 0.80},
    {"epoch": 4, "loss": 0.4},
]

# two searched parameters (loss: 2 values, n_components: 3 values), one fixed
RESULTS = {
    "params": [{"loss": loss, "n_components": k, "epochs": 5} for loss in ("bpr", "warp") for k in (16, 8, 32)],
    "param_loss": ["bpr"] * 3 + ["warp"] * 3,
    "param_n_components": [16, 8, 32] * 2,
    "param_epochs": [5] * 6,
    "mean_test_ndcg@10": np.array([0.20, 0.10, 0.25, 0.30, 0.15, 0.28]),
    "std_test_ndcg@10": np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]),
    "mean_test_auc": np.array([0.8, 0.7, 0.85, 0.9, 0.75, 0.88]),
}


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


# --------------------------------------------------------------------------
# learning curves
# --------------------------------------------------------------------------
def _best_marks(ax):
    """The x positions of the best-epoch lines of a panel."""
    return [line.get_xdata()[0] for line in ax.get_lines() if line.get_label().startswith("best epoch")]


def test_learning_curve_from_history():
    fig = plot_learning_curve(HISTORY)
    assert len(fig.axes) == 3  # loss, then one panel per validation metric
    loss_ax, ndcg_ax, auc_ax = fig.axes
    assert fig.get_suptitle() == "Learning curve"
    assert (loss_ax.get_title(), loss_ax.get_xlabel(), loss_ax.get_ylabel()) == (
        "Training loss",
        "epoch",
        "training loss",
    )
    assert (ndcg_ax.get_title(), ndcg_ax.get_xlabel(), ndcg_ax.get_ylabel()) == (
        "Validation ndcg@10",
        "epoch",
        "val_ndcg@10",
    )
    assert (auc_ax.get_title(), auc_ax.get_ylabel()) == ("Validation auc", "val_auc")
    assert list(_lines(loss_ax)) == ["loss"]
    np.testing.assert_array_equal(_lines(loss_ax)["loss"].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(_lines(loss_ax)["loss"].get_ydata(), [0.9, 0.7, 0.5, 0.4])
    assert list(_lines(ndcg_ax)) == ["val_ndcg@10"]
    assert list(_lines(auc_ax)) == ["val_auc"]
    # epochs without evaluation are skipped, not drawn as gaps or zeros
    np.testing.assert_array_equal(_lines(ndcg_ax)["val_ndcg@10"].get_xdata(), [1, 3])
    np.testing.assert_allclose(_lines(ndcg_ax)["val_ndcg@10"].get_ydata(), [0.10, 0.20])
    # each metric on its own scale: NDCG's 0.1-0.2 is not squashed under AUC's 0.7-0.8
    assert ndcg_ax.get_ylim()[1] < 0.5 < auc_ax.get_ylim()[0]
    assert ndcg_ax.get_shared_y_axes().get_siblings(ndcg_ax) == [ndcg_ax]
    # a bare history names no best epoch: no mark
    assert all(_best_marks(ax) == [] for ax in fig.axes)


def test_learning_curve_marks_a_given_best_epoch():
    fig = plot_learning_curve(HISTORY, best_epoch=3)
    assert [_best_marks(ax) for ax in fig.axes] == [[3], [3], [3]]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["val_ndcg@10", "best epoch (3)"]
    assert all(_best_marks(ax) == [] for ax in plot_learning_curve(HISTORY, best_epoch=None).axes)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "best", True])
def test_learning_curve_rejects_a_bad_best_epoch(bad):
    with pytest.raises(ValueError, match=rf"best_epoch must be .*got {re.escape(repr(bad))}"):
        plot_learning_curve(HISTORY, best_epoch=bad)


def test_learning_curve_panels_wrap_after_three():
    history = [{"epoch": 1, "loss": 1.0, "val_a": 0.1, "val_b": 0.2, "val_c": 0.3, "val_d": 0.4}]
    fig = plot_learning_curve(history)
    assert len(fig.axes) == 5
    rows = {round(ax.get_subplotspec().rowspan.start) for ax in fig.axes}
    assert rows == {0, 1}


def test_learning_curve_from_fitted_estimator(tmp_path):
    data = make_interactions(60, 30, 300, random_state=0)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    model = HybridBPR(4, epochs=4, eval_every=2, batch_size=128, random_state=0).fit(train, eval_set=test)
    assert model.best_epoch_ in (2, 4)
    fig = plot_learning_curve(model, title="tiny")
    assert fig.get_suptitle() == "tiny"
    loss = _lines(fig.axes[0])["loss"]
    np.testing.assert_allclose(loss.get_ydata(), [row["loss"] for row in model.history_])
    panels = {ax.get_ylabel(): ax for ax in fig.axes[1:]}
    assert set(panels) == {"val_ndcg@10", "val_auc"}
    np.testing.assert_array_equal(_lines(panels["val_auc"])["val_auc"].get_xdata(), [2, 4])
    # the estimator's best epoch is marked on every panel
    assert [_best_marks(ax) for ax in fig.axes] == [[model.best_epoch_]] * 3
    fig.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_learning_curve_without_validation_has_one_panel():
    fig = plot_learning_curve([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}])
    assert len(fig.axes) == 1
    assert list(_lines(fig.axes[0])) == ["loss"]


def test_learning_curve_rejects_bad_input():
    with pytest.raises(TypeError, match="history_"):
        plot_learning_curve(42)
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curve([])
    frame = learning_curve_frame(HISTORY + [{"epoch": 5, "interrupted": True}])
    assert list(frame.index) == [1, 2, 3, 4]


# --------------------------------------------------------------------------
# sweeps
# --------------------------------------------------------------------------
def test_sweep_one_panel_per_searched_parameter():
    fig = plot_sweep(RESULTS)
    assert fig.get_suptitle() == "Sweep: mean_test_ndcg@10"
    assert len(fig.axes) == 2  # epochs is fixed: no panel
    by_name = {ax.get_xlabel(): ax for ax in fig.axes}
    assert set(by_name) == {"loss", "n_components"}
    for name, ax in by_name.items():
        assert ax.get_title() == name
        assert ax.get_ylabel() == "mean_test_ndcg@10"
        assert len(ax.containers) == 1  # one error-bar series
    loss_ax, k_ax = by_name["loss"], by_name["n_components"]
    assert [t.get_text() for t in loss_ax.get_xticklabels()] == ["bpr", "warp"]
    assert [t.get_text() for t in k_ax.get_xticklabels()] == ["8", "16", "32"]  # numeric order
    # each value shows its best candidate, with that candidate's std
    line, _, (bars,) = loss_ax.containers[0]
    np.testing.assert_allclose(line.get_ydata(), [0.25, 0.30])
    segments = bars.get_segments()
    np.testing.assert_allclose([s[1][1] - s[0][1] for s in segments], [2 * 0.03, 2 * 0.04])
    line, _, _ = k_ax.containers[0]
    np.testing.assert_allclose(line.get_ydata(), [0.15, 0.30, 0.28])
    # every candidate is drawn as a dot: 6 per panel
    assert sum(len(c.get_offsets()) for c in k_ax.collections if hasattr(c, "get_offsets")) >= 6


def test_sweep_other_metric_and_dataframe_input():
    fig = plot_sweep(pd.DataFrame(RESULTS), metric="mean_test_auc", title="AUC")
    assert fig.get_suptitle() == "AUC"
    ax = next(a for a in fig.axes if a.get_xlabel() == "loss")
    line, caps, _ = ax.containers[0]
    np.testing.assert_allclose(line.get_ydata(), [0.85, 0.9])
    assert caps == ()  # no std column for AUC: no error bars
    with pytest.raises(ValueError, match="mean_test_auc"):
        plot_sweep(RESULTS, metric="mean_test_recall@10")
    with pytest.raises(TypeError):
        plot_sweep([1, 2, 3])


def test_best_runs_table():
    table = best_runs_table(RESULTS, n=3)
    assert list(table.columns) == ["rank", "loss", "n_components", "mean_test_ndcg@10", "std_test_ndcg@10"]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["mean_test_ndcg@10"]) == [0.30, 0.28, 0.25]
    assert list(zip(table["loss"], table["n_components"], strict=True)) == [("warp", 16), ("warp", 32), ("bpr", 32)]
    assert len(best_runs_table(RESULTS, n=10)) == 6
    with pytest.raises(ValueError, match="n must be"):
        best_runs_table(RESULTS, n=0)


def test_sweep_from_a_real_search():
    data = make_interactions(60, 30, 300, random_state=0)
    search = GridSearchCV(
        HybridBPR(4, epochs=2, batch_size=128, random_state=0),
        {"loss": ["bpr", "warp"], "learning_rate": [0.05, 0.1]},
        cv=PerUserKFold(2, random_state=0),
        scoring={"ndcg@10": ndcg_scorer(10), "auc": auc_scorer()},
        refit="ndcg@10",
    ).fit(data)
    fig = plot_sweep(search)
    assert sorted(ax.get_xlabel() for ax in fig.axes) == ["learning_rate", "loss"]
    table = best_runs_table(search, n=1)
    assert table.loc[0, "mean_test_ndcg@10"] == pytest.approx(search.best_score_)
    assert {"loss": table.loc[0, "loss"], "learning_rate": table.loc[0, "learning_rate"]} == search.best_params_


# --------------------------------------------------------------------------
# from MLflow
# --------------------------------------------------------------------------
def test_mlflow_metric_name():
    assert mlflow_metric_name("val_ndcg@10") == "val_ndcg_at_10"
    assert mlflow_metric_name("mean_test_auc") == "mean_test_auc"


def test_plots_from_mlflow(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("plots")
    run = client.create_run(exp)
    history = [Metric("loss", row["loss"], 0, row["epoch"]) for row in HISTORY]
    history += [
        Metric(mlflow_metric_name(k), v, 0, row["epoch"]) for row in HISTORY for k, v in row.items() if "val" in k
    ]
    client.log_batch(run.info.run_id, metrics=history)
    client.log_metric(run.info.run_id, "best_epoch", 3)
    fig = plot_learning_curve(run.info.run_id, tracking_uri=uri)
    panels = {ax.get_ylabel(): ax for ax in fig.axes[1:]}
    assert sorted(panels) == ["val_auc", "val_ndcg@10"]
    np.testing.assert_array_equal(_lines(panels["val_ndcg@10"])["val_ndcg@10"].get_xdata(), [1, 3])
    assert [_best_marks(ax) for ax in fig.axes] == [[3]] * 3  # the run's best_epoch metric
    np.testing.assert_allclose(_lines(fig.axes[0])["loss"].get_ydata(), [0.9, 0.7, 0.5, 0.4])

    # a sweep: a parent and one child per candidate, plus an older unrelated sweep
    for sweep in ("old", "new"):
        parent = client.create_run(exp, run_name=sweep)
        for i, params in enumerate(RESULTS["params"]):
            child = client.create_run(exp, tags={"mlflow.parentRunId": parent.info.run_id})
            shift = 0.0 if sweep == "new" else -0.1
            client.log_batch(
                child.info.run_id,
                metrics=[
                    Metric("mean_test_ndcg_at_10", RESULTS["mean_test_ndcg@10"][i] + shift, 0, 0),
                    Metric("std_test_ndcg_at_10", RESULTS["std_test_ndcg@10"][i], 0, 0),
                ],
                params=[Param(k, str(v)) for k, v in params.items()],
                tags=[RunTag("candidate", str(i))],
            )
    fig = plot_sweep("plots", tracking_uri=uri)  # the latest sweep by default
    assert sorted(ax.get_xlabel() for ax in fig.axes) == ["loss", "n_components"]
    k_ax = next(ax for ax in fig.axes if ax.get_xlabel() == "n_components")
    assert [t.get_text() for t in k_ax.get_xticklabels()] == ["8", "16", "32"]  # params parsed back to ints
    np.testing.assert_allclose(k_ax.containers[0][0].get_ydata(), [0.15, 0.30, 0.28])
    table = best_runs_table(exp, tracking_uri=uri, n=2)  # by experiment id too
    assert list(table["mean_test_ndcg@10"]) == [0.30, 0.28]
    assert "run_id" in table.columns
    old = client.search_runs([exp], filter_string="attributes.run_name = 'old'")[0]
    table = best_runs_table("plots", tracking_uri=uri, parent_run_id=old.info.run_id, n=1)
    assert table.loc[0, "mean_test_ndcg@10"] == pytest.approx(0.20)
    with pytest.raises(ValueError, match="no MLflow experiment"):
        plot_sweep("nope", tracking_uri=uri)


def test_plot_tradeoff_draws_one_point_per_model_with_the_intervals():
    from skbpr import PopularityRecommender
    from skbpr.metrics import compare_models
    from skbpr.plotting import plot_tradeoff

    data = make_interactions(80, 30, 480, random_state=0)
    train, test = train_test_split(data, random_state=0)
    models = {
        "popularity": PopularityRecommender().fit(train),
        "bpr": HybridBPR(8, epochs=3, random_state=0, n_threads=1, device="cpu").fit(train),
    }
    table = compare_models(models, test, metrics=["ndcg@10", "novelty@10"], n_bootstrap=200, random_state=0)
    fig = plot_tradeoff(table, "novelty@10", "ndcg@10")
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("novelty@10", "ndcg@10")
    assert [t.get_text() for t in ax.texts] == ["popularity", "bpr"]
    by = table.set_index(["model", "metric"])
    for container, model in zip(ax.containers, models, strict=True):
        data_line, _, (xbars, ybars) = container.lines
        x, y = data_line.get_data()
        assert (x[0], y[0]) == pytest.approx(
            (by.loc[(model, "novelty@10"), "mean"], by.loc[(model, "ndcg@10"), "mean"])
        )
        (x_segment,) = xbars.get_segments()
        assert x_segment[:, 0] == pytest.approx(by.loc[(model, "novelty@10"), ["ci_low", "ci_high"]].to_numpy(float))
        (y_segment,) = ybars.get_segments()
        assert y_segment[:, 1] == pytest.approx(by.loc[(model, "ndcg@10"), ["ci_low", "ci_high"]].to_numpy(float))
    with pytest.raises(
        ValueError, match=r"x must be one of the compared metrics \['ndcg@10', 'novelty@10'\], got 'coverage@10'"
    ):
        plot_tradeoff(table, "coverage@10", "ndcg@10")
    with pytest.raises(ValueError, match="lacks \\['ci_low', 'ci_high'\\]"):
        plot_tradeoff(table.drop(columns=["ci_low", "ci_high"]), "novelty@10", "ndcg@10")
