"""
Hybrid features and cold start
==============================

With feature matrices on both sides, :class:`~skbpr.HybridBPR` represents a
user as the sum of the embeddings of its features (``Fu @ U``) and an item
likewise (``Fi @ V``). Users who never interacted with anything are then
scored from their feature rows alone. Here a fifth of the users is kept out
of training entirely and recommended to from features.
"""

# %%
# Known and new users
# -------------------
# :func:`~skbpr.datasets.make_interactions` derives the leading feature
# columns from the planted taste factors, so features carry signal.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from skbpr import HybridBPR, Interactions
from skbpr.datasets import make_interactions
from skbpr.metrics import evaluate_scores

data = make_interactions(
    500, 150, 10000, n_user_features=12, n_item_features=12, n_informative_features=8, noise=0.25, random_state=0
)
positives = data.positives.tocsr()
n_known = 400
known = Interactions.from_matrices(
    positives[:n_known],
    user_features=data.user_features[:n_known],
    item_features=data.item_features,
)
new_user_features = data.user_features[n_known:]  # feature rows only
new_user_positives = positives[n_known:]  # what the new users go on to like
print(f"{known.n_users} known users, {new_user_features.shape[0]} new users, {known.n_items} items")

# %%
# Fit on the known users
# ----------------------
# ``user_features_mode="both"`` gives every known user its feature columns
# plus a column of its own; a new user has only its features.
model = HybridBPR(n_components=16, epochs=15, user_features_mode="both", item_features_mode="both", random_state=0)
model.fit(known)

# %%
# Recommend to new users from features
# ------------------------------------
# ``recommend(user_features=...)`` scores every item for each new feature
# row; nothing is excluded, since new users have seen nothing.
ids, scores = model.recommend(user_features=new_user_features[:3], k=5)
print(ids)

# %%
# The same scores come from the representations:
# ``user_representations(features) @ item_vectors.T + item_bias``.
user_vecs = model.user_representations(new_user_features)
item_vecs, item_bias = model.item_representations()
print(user_vecs.shape, item_vecs.shape, item_bias.shape)
cold_scores = user_vecs @ item_vecs.T + item_bias
assert np.array_equal(np.argsort(-cold_scores[:3], axis=1, kind="stable")[:, :5], ids)

# %%
# How good are they?
# ------------------
# :func:`~skbpr.metrics.evaluate_scores` takes any score function. Compare
# the feature-based scores with item popularity among known users, the usual
# fallback for a new user.
popularity = np.asarray(known.positives.sum(axis=0), dtype=np.float32).ravel()
metrics = ["precision@10", "ndcg@10", "auc"]


def scorer(matrix):
    matrix = torch.as_tensor(np.ascontiguousarray(matrix, dtype=np.float32))
    return lambda users: matrix[users]


table = pd.DataFrame(
    {
        "popularity": evaluate_scores(
            scorer(np.tile(popularity, (new_user_features.shape[0], 1))), new_user_positives, metrics=metrics
        ),
        "HybridBPR from features": evaluate_scores(scorer(cold_scores), new_user_positives, metrics=metrics),
    }
).T
table

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
table.T.plot.bar(ax=ax, rot=0)
ax.set_ylabel("score on new users")
ax.set_title("Cold-start users: features against popularity")
plt.show()

# %%
# New items work the same way: ``recommend(users, item_features=new_rows)``
# ranks a catalogue given by feature rows, and ``item_representations``
# returns their vectors and biases.
new_items = data.item_features[:20]
ids, scores = model.recommend([0, 1], item_features=new_items, k=3)
print(ids)
