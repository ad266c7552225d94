"""
Hyperparameter search with Optuna
=================================

A small Optuna study over the learning rate, the regularisation and the
loss. Each trial is scored by cross-validated NDCG@10 with
:class:`~skbpr.model_selection.PerUserKFold`; the study is stored in SQLite,
so running it again resumes it.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
from sklearn.model_selection import cross_val_score

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.metrics import ndcg_scorer
from skbpr.model_selection import PerUserKFold, train_test_split

optuna.logging.set_verbosity(optuna.logging.WARNING)

data = make_interactions(300, 120, 5000, exposure_signal=2.0, random_state=0)
train, test = train_test_split(data, test_size=0.2, random_state=0)


def objective(trial):
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "alpha": trial.suggest_float("alpha", 1e-4, 1e-1, log=True),
        "loss": trial.suggest_categorical("loss", ["bpr", "warp"]),
    }
    model = HybridBPR(n_components=16, epochs=8, batch_size=512, random_state=0, **params)
    scores = cross_val_score(model, train, cv=PerUserKFold(2, random_state=0), scoring=ndcg_scorer(10))
    return scores.mean()


# %%
# The study
# ---------
folder = Path(tempfile.mkdtemp())
study = optuna.create_study(
    storage=f"sqlite:///{folder / 'study.db'}",
    study_name="skbpr",
    load_if_exists=True,
    direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=0),
)
study.optimize(objective, n_trials=8)
print(f"{len(study.trials)} trials, best NDCG@10 {study.best_value:.3f} with {study.best_params}")

# %%
study.trials_dataframe(attrs=("number", "value", "params"))

# %%
# Refit the best parameters on all training data and score the test set.
best = HybridBPR(n_components=16, epochs=8, batch_size=512, random_state=0, **study.best_params).fit(train)
print(f"test NDCG@10: {best.score(test):.3f}")

# %%
values = [trial.value for trial in study.trials]
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(range(len(values)), values, "o", color="grey", label="trial")
ax.plot(range(len(values)), [max(values[: i + 1]) for i in range(len(values))], "-", label="best so far")
ax.set_xlabel("trial")
ax.set_ylabel("cross-validated NDCG@10")
ax.set_title("Optuna study")
ax.legend()
plt.show()
