"""
Implicit negatives
==================

Exposure logs record items a user was shown and did not engage with. Such
*implicit negatives* (``data.negatives``) can replace some of the uniformly
sampled negatives BPR trains on: ``negatives="mixed"`` draws from them with
probability ``implicit_ratio`` and uniformly otherwise. Whether that helps
depends on the data, so treat ``implicit_ratio`` as a hyperparameter.
"""

# %%
# Data with informative exposure
# ------------------------------
# ``exposure_signal`` controls how strongly a user's taste decides what
# they are shown, and so how informative a skipped item is.
import matplotlib.pyplot as plt
import pandas as pd

from skbpr import HybridBPR
from skbpr.datasets import make_interactions
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

data = make_interactions(400, 150, 8000, exposure_signal=3.0, negative_rate=0.8, noise=0.25, random_state=0)
train, test = train_test_split(data, test_size=0.2, random_state=0)
print(f"{train.n_positives} training positives, {train.n_negatives} implicit negatives")

# %%
# Sweep the share of implicit negatives
# -------------------------------------
# ``implicit_ratio=0`` is plain uniform sampling; ``1`` uses only the
# implicit negatives of users who have some. Besides the full-catalogue
# metrics, ``implicit_auc`` measures how well the model puts a user's test
# positives above its implicit negatives.
metrics = ["ndcg@10", "auc", "implicit_auc"]
rows = []
for ratio in [0.0, 0.25, 0.5, 0.75, 1.0]:
    model = HybridBPR(n_components=16, epochs=10, negatives="mixed", implicit_ratio=ratio, random_state=0)
    model.fit(train)
    rows.append({"implicit_ratio": ratio, **evaluate(model, test, metrics=metrics)})
table = pd.DataFrame(rows).set_index("implicit_ratio")
table

# %%
fig, axes = plt.subplots(1, len(metrics), figsize=(9, 3), layout="constrained")
for ax, name in zip(axes, metrics, strict=True):
    ax.plot(table.index, table[name], marker="o")
    ax.set_xlabel("implicit_ratio")
    ax.set_title(name)
fig.suptitle('negatives="mixed"')
plt.show()

# %%
# Reading the table: implicit negatives teach the model to order the items
# a user was shown, which is what ``implicit_auc`` measures; uniform
# negatives push down the unseen catalogue, which the full-catalogue
# metrics judge. A search over ``implicit_ratio`` (see the model selection
# example) picks the trade-off for the metric that matters.
