"""
Quick start: fit, recommend, evaluate
=====================================

Fit :class:`~skbpr.HybridBPR` on generated implicit feedback, ask it for
recommendations and compare it with a popularity baseline on held-out
positives.
"""

# %%
# Data
# ----
# :func:`~skbpr.datasets.make_interactions` plants latent factors, features
# and implicit negatives (items shown but not engaged with).
# :func:`~skbpr.model_selection.train_test_split` holds out 20 % of *each
# user's* positives.
import matplotlib.pyplot as plt
import pandas as pd

from skbpr import HybridBPR, PopularityRecommender
from skbpr.datasets import make_interactions
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

data = make_interactions(400, 150, 8000, exposure_signal=3.0, noise=0.25, random_state=0)
train, test = train_test_split(data, test_size=0.2, random_state=0)
print(data)
print(f"train: {train.n_positives} positives, test: {test.n_positives} positives")

# %%
# Fit and recommend
# -----------------
# ``recommend`` returns item ids and scores, best first, with each user's
# training positives left out.
model = HybridBPR(n_components=16, epochs=10, random_state=0).fit(train)
items, scores = model.recommend([0, 1, 2], k=5)
print(items)
print(scores.round(3))

# %%
# Evaluate against popularity
# ---------------------------
# :func:`~skbpr.metrics.evaluate` ranks the whole catalogue for every test
# user (training positives excluded) and averages the ranking metrics.
metrics = ["precision@10", "recall@10", "ndcg@10", "auc"]
baseline = PopularityRecommender().fit(train)
table = pd.DataFrame(
    {
        "popularity": evaluate(baseline, test, metrics=metrics),
        "HybridBPR": evaluate(model, test, metrics=metrics),
    }
).T
table

# %%
# ``score`` is NDCG@10, the number a scikit-learn search maximises by default.
print(f"NDCG@10: {model.score(test):.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
table.T.plot.bar(ax=ax, rot=0)
ax.set_ylabel("score on held-out positives")
ax.set_title("HybridBPR against popularity")
plt.show()
