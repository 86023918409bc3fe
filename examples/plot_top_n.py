"""
Top-N quality per k against popularity
======================================

A model trained to predict ratings is not automatically good at top-N lists:
ranking every unseen item by its predicted rating favours items with a handful
of enthusiastic ratings, while the items users go on to rate are mostly popular
ones. This example measures the lists with :mod:`funksgd.metrics` on generated
ratings with a long tail, for list lengths k = 1..20, and compares three ways
to rank the unseen items of each user:

- by the predicted rating alone,
- by popularity (number of training ratings), the baseline every recommender
  should beat,
- by :meth:`FunkSVD.recommend <funksgd.FunkSVD.recommend>`, which ranks by the
  predicted rating plus ``w * log(1 + n_i)``, a popularity prior whose weight
  ``w`` ``fit`` learns on ratings held out of the training set
  (``popularity_weight="auto"``, the default).
"""

# %%
# Ratings with a long tail, split rating by rating
# ------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings
from funksgd.metrics import ranking_metrics_at_k

X = make_ratings(n_users=1500, n_items=800, n_ratings=60_000, random_state=0)
X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
model = FunkSVD(n_components=20, random_state=0).fit(X_train)

# %%
# Three rankings as score functions
# ---------------------------------
# ``ranking_metrics_at_k`` accepts a fitted model with ``recommend`` or a
# function that scores every item for a batch of users; the training items of
# each user are excluded either way. The weight of the popularity prior was
# chosen by ``fit`` on 20% of each user's *training* ratings, never on the test
# set: it is ``model.popularity_weight_``.
counts = model.item_counts_.astype(float)
W, Q, b = model.user_factors_, model.item_factors_, model.item_bias_
rankers = {
    "predicted rating": lambda users: W[users] @ Q.T + b,
    "popularity": lambda users: counts[None, :],
    f"recommend (+ {model.popularity_weight_:g} log(1 + n_i))": model,
}

# %%
# NDCG@k and precision@k for k = 1..20
# ------------------------------------
# A test rating of 4 or more is relevant; users without one are left out.
ks = np.arange(1, 21)
results = {
    name: [ranking_metrics_at_k(scores, X_train, X_test, k=int(k), relevance_threshold=4)
           for k in ks]
    for name, scores in rankers.items()
}  # fmt: skip

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for name, per_k in results.items():
    for ax, metric in zip(axes, ["ndcg", "precision", "recall"], strict=True):
        ax.plot(ks, [r[metric] for r in per_k], marker="o", markersize=3, label=name)
for ax, title in zip(axes, ["NDCG@k", "precision@k", "recall@k"], strict=True):
    ax.set_xlabel("k (list length)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Catalogue coverage at k = 10
# ----------------------------
# Popularity recommends the same few items to everyone; the learned prior keeps
# more of the catalogue in the lists.
for name, per_k in results.items():
    print(f"{name:45s} coverage@10 = {per_k[9]['coverage']:.3f}  NDCG@10 = {per_k[9]['ndcg']:.3f}")
