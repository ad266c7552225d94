"""
Tracking with MLflow and learning curves
========================================

:class:`~skbpr.callbacks.MLflowCallback` records a fit in MLflow: the
parameters, each epoch's training loss and validation metrics, and the
final metrics. :func:`~skbpr.plotting.plot_learning_curve` draws the curves
from the estimator's history or back from the MLflow run. Here the store is
a SQLite file in a temporary folder.
"""

# %%
import logging
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from mlflow import MlflowClient

from skbpr import HybridBPR
from skbpr.callbacks import MLflowCallback
from skbpr.datasets import make_interactions
from skbpr.model_selection import train_test_split
from skbpr.plotting import learning_curve_frame, plot_learning_curve

logging.getLogger("mlflow").setLevel(logging.WARNING)  # no database-setup messages

data = make_interactions(400, 150, 8000, exposure_signal=3.0, noise=0.25, random_state=0)
train, test = train_test_split(data, test_size=0.2, random_state=0)

# %%
# A tracked fit
# -------------
# ``eval_set`` adds validation metrics every ``eval_every`` epochs;
# ``log_model=False`` skips storing the fitted model as an artifact.
uri = f"sqlite:///{Path(tempfile.mkdtemp()) / 'mlflow.db'}"
tracker = MLflowCallback(tracking_uri=uri, experiment_name="gallery", run_name="bpr-16", log_model=False)
model = HybridBPR(n_components=16, epochs=15, eval_every=3, random_state=0, callbacks=[tracker])
model.fit(train, eval_set=test)

# %%
# The estimator fits deep copies of its callbacks (the ``callbacks``
# parameter is never modified): the run id is on the fitted copy.
fitted_tracker = model.callbacks_[0]
run_id = fitted_tracker.run_id_
print("run", run_id)

# %%
# What the run holds
# ------------------
# MLflow does not accept ``@`` in names: ``val_ndcg@10`` is stored as
# ``val_ndcg_at_10``.
run = MlflowClient(uri).get_run(run_id)
print({key: run.data.params[key] for key in ("n_components", "loss", "epochs")})
print({key: round(value, 4) for key, value in sorted(run.data.metrics.items()) if key.startswith("final_")})

# %%
# The learning curve from MLflow
# ------------------------------
# :func:`~skbpr.plotting.learning_curve_frame` reads the metric histories
# into a table (one row per epoch) ...
learning_curve_frame(run_id, tracking_uri=uri)

# %%
# ... and :func:`~skbpr.plotting.plot_learning_curve` draws them: the
# training loss per epoch and the validation metrics on the evaluated
# epochs. ``plot_learning_curve(model)`` draws the same from
# ``model.history_`` without MLflow.
fig = plot_learning_curve(run_id, tracking_uri=uri)
plt.show()
