"""
Beyond accuracy: coverage, novelty, diversity and significance
==============================================================

Two recommenders with close NDCG can recommend very different lists: one
fills every list with the same popular titles, the other spreads over the
catalogue. :func:`~skbpr.metrics.compare_models` reports both sides from one
ranking pass per model: accuracy, catalogue coverage, novelty and
intra-list diversity, each with a bootstrap confidence interval over users,
and paired tests of every model against a baseline.

The data here are written in the MovieLens 100K format (``u.data`` and
``u.item`` with genre flags) by the example itself, then read back with
:func:`~skbpr.datasets.load_movielens`, as a real copy would be.
"""

# %%
# MovieLens-format data, generated
# --------------------------------
# Users like a few genres; items belong to one or two genres and have a
# skewed popularity, which a popularity baseline follows into lists that
# cover little of the catalogue.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skbpr import HybridBPR, PopularityRecommender
from skbpr.datasets import load_movielens
from skbpr.metrics import compare_models
from skbpr.model_selection import train_test_split
from skbpr.plotting import plot_tradeoff

rng = np.random.default_rng(0)
n_users, n_items, n_genres = 400, 300, 19
item_genres = np.zeros((n_items, n_genres), dtype=int)
item_genres[np.arange(n_items), rng.integers(0, n_genres, n_items)] = 1
item_genres[np.arange(n_items), rng.integers(0, n_genres, n_items)] = 1
taste = rng.dirichlet(np.full(n_genres, 0.3), size=n_users)
popularity = rng.zipf(1.6, n_items).clip(max=50).astype(float)
affinity = (taste @ item_genres.T) * np.log1p(popularity)
rows = []
for user in range(n_users):  # about 40 ratings per user, preferring liked genres and popular items
    p = affinity[user] + 0.02
    items = rng.choice(n_items, size=40, replace=False, p=p / p.sum())
    stars = np.clip(np.round(2.5 + 4 * affinity[user, items] / affinity[user].max()), 1, 5).astype(int)
    rows += [
        f"{user + 1}\t{item + 1}\t{star}\t{880000000 + len(rows)}\n" for item, star in zip(items, stars, strict=True)
    ]

home = Path(tempfile.mkdtemp())
(home / "ml-100k").mkdir()
(home / "ml-100k" / "u.data").write_text("".join(rows))
(home / "ml-100k" / "u.item").write_text(
    "".join(
        f"{i + 1}|Movie {i + 1} (1995)|01-Jan-1995||http://example.org/{i + 1}|"
        + "|".join(map(str, item_genres[i]))
        + "\n"
        for i in range(n_items)
    ),
    encoding="latin-1",
)
data = load_movielens("ml-100k", data_home=home, download=False, user_features=False)
train, test = train_test_split(data, test_size=0.2, random_state=0)
print(data)

# %%
# Three models, one comparison
# ----------------------------
# ``ild@10`` measures diversity with the genre rows (``item_vectors=``), the
# same vectors for every model. The baseline of the paired tests is the first
# model; Holm's correction covers every test of the table.
models = {
    "popularity": PopularityRecommender().fit(train),
    "BPR": HybridBPR(32, loss="bpr", epochs=20, random_state=0).fit(train),
    "WARP": HybridBPR(32, loss="warp", epochs=20, random_state=0).fit(train),
}
table = compare_models(
    models,
    test,
    metrics=["ndcg@10", "recall@10", "coverage@10", "novelty@10", "ild@10"],
    item_vectors=data.item_features,
    random_state=0,
)
table.round(4)

# %%
# Accuracy against coverage and novelty
# -------------------------------------
# The error bars are the 95% bootstrap intervals over users (for coverage:
# over resampled sets of the users' lists).
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
plot_tradeoff(table, "coverage@10", "ndcg@10", ax=left)
plot_tradeoff(table, "novelty@10", "ndcg@10", ax=right)
plt.show()

# %%
# Per-user values
# ---------------
# ``evaluate(..., per_user=True)`` gives the vectors the tests run on, one
# row per user, indexed by the raw MovieLens user ids.
from skbpr.metrics import evaluate  # noqa: E402

evaluate(models["WARP"], test, metrics=["ndcg@10", "novelty@10"], per_user=True).head()
