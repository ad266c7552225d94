"""
Model selection with per-user splitters
=======================================

An :class:`~skbpr.Interactions` container behaves as a table of positive
interactions, so scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`
splits it with a per-user splitter such as
:class:`~skbpr.model_selection.PerUserKFold` (every user's positives are
divided among the folds) and scores candidates with ranking scorers.
"""

# %%
# Data and a held-out test set
# ----------------------------
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.metrics import auc_scorer, ndcg_scorer
from skbpr.model_selection import PerUserKFold, train_test_split
from skbpr.plotting import best_runs_table, plot_sweep

data = make_interactions(300, 120, 5000, n_item_features=20, exposure_signal=2.0, random_state=0)
train, test = train_test_split(data, test_size=0.2, random_state=0)

# %%
# The search
# ----------
# Loss and feature mode are ordinary hyperparameters. ``refit`` picks the
# metric the best candidate is chosen by.
search = GridSearchCV(
    HybridBPR(n_components=16, epochs=8, batch_size=512, random_state=0),
    {"loss": ["bpr", "warp"], "item_features_mode": ["identity", "both"]},
    cv=PerUserKFold(3, random_state=0),
    scoring={"ndcg@10": ndcg_scorer(10), "auc": auc_scorer()},
    refit="ndcg@10",
)
search.fit(train)
print("best:", search.best_params_)
print(f"cross-validated NDCG@10: {search.best_score_:.3f}, on the test set: {search.score(test):.3f}")

# %%
# :func:`~skbpr.plotting.best_runs_table` lists the candidates, best first.
best_runs_table(search.cv_results_, "mean_test_ndcg@10")

# %%
# :func:`~skbpr.plotting.plot_sweep` draws one panel per searched
# hyperparameter: the best candidate for each value, with the standard
# deviation over folds, and every candidate as a grey dot.
fig = plot_sweep(search, metric="mean_test_ndcg@10")
plt.show()

# %%
# The splitters work with the rest of scikit-learn too, for example
# :func:`~sklearn.model_selection.cross_validate`.
from sklearn.model_selection import cross_validate

scores = cross_validate(
    HybridBPR(n_components=16, epochs=8, batch_size=512, random_state=0),
    train,
    cv=PerUserKFold(3, random_state=0),
    scoring={"ndcg@10": ndcg_scorer(10)},
)
print(scores["test_ndcg@10"].round(3))
