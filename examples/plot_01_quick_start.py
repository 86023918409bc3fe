"""
Quick start: fit, evaluate, recommend
=====================================

*Is FunkSVD better than knowing how generous each user is and how popular
each item is, and what does it recommend?*

We fit :class:`~funksgd.FunkSVD` on generated ratings shaped like a real
catalogue (a few very active users and very popular items, a long tail of
the rest), measure the error on ratings it did not see against a bias-only
baseline, and ask for recommendations.
"""

# %%
# Ratings in
# ----------
# A ratings matrix has one row per user and one column per item. In a sparse
# matrix, every stored entry is a rating; missing ones are simply not stored.
# :func:`~funksgd.datasets.make_ratings` draws 1-5 star ratings from a
# low-rank model plus noise. For your own files, see
# :doc:`/ratings_files`.
import matplotlib.pyplot as plt
import numpy as np

from funksgd import BaselineOnly, FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings

X = make_ratings(n_users=3000, n_items=1000, n_ratings=150_000, random_state=0)
counts = np.diff(X.indptr)
print(f"{X.shape[0]} users x {X.shape[1]} items, {X.nnz} ratings")
print(f"ratings per user: median {np.median(counts):.0f}, most {counts.max()}")

# %%
# :func:`~funksgd.train_test_split_ratings` puts each rating in exactly one of
# two matrices of the same shape, so every test rating belongs to a user and
# an item the model has seen.
X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
test = X_test.tocoo()

# %%
# Fit and evaluate
# ----------------
# :meth:`~funksgd.FunkSVD.predict_ratings` predicts the ratings of (user,
# item) pairs given by index.
model = FunkSVD(n_components=50, random_state=0).fit(X_train)
predicted = model.predict_ratings(test.row, test.col)


def rmse(predicted):
    return float(np.sqrt(np.mean((predicted - test.data) ** 2)))


print(f"FunkSVD held-out RMSE: {rmse(predicted):.4f} after {model.n_iter_} epochs")

# %%
# :class:`~funksgd.BaselineOnly` predicts ``mu + b_u + b_i``: the mean
# rating, plus how far each item's and each user's ratings sit above it,
# shrunk towards zero for items and users with few ratings (the penalties
# are Surprise's ``BaselineOnly`` defaults). It is what any recommender must
# beat.
baseline = BaselineOnly().fit(X_train)
errors = {
    "global mean": rmse(np.full(len(test.data), baseline.global_mean_)),
    "BaselineOnly": rmse(baseline.predict_ratings(test.row, test.col)),
    "FunkSVD, k=50": rmse(predicted),
}
for name, value in errors.items():
    print(f"{name:>14}: RMSE {value:.4f}")

# %%
# The user and item factors explain what the biases cannot: the error drops
# well below the baseline's. The right panel shows the predictions for each
# true rating: they rise with it, but are pulled towards the mean, as the
# predictions of a regularised model are.
fig, (ax_bar, ax_box) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ax_bar.barh(list(errors), list(errors.values()), color=["0.7", "0.5", "tab:blue"])
for y, value in enumerate(errors.values()):
    ax_bar.text(value, y, f" {value:.3f}", va="center")
ax_bar.set_xlabel("held-out RMSE (lower is better)")
ax_bar.set_xlim(0, 1.25 * max(errors.values()))
stars = np.unique(test.data)
ax_box.boxplot([predicted[test.data == s] for s in stars], showfliers=False)
ax_box.set_xticks(range(1, len(stars) + 1), [f"{s:.0f}" for s in stars])
ax_box.plot(range(1, len(stars) + 1), stars, "k--", lw=1, label="perfect prediction")
ax_box.set_xlabel("true rating")
ax_box.set_ylabel("FunkSVD's prediction")
ax_box.legend(loc="upper left")
fig.suptitle("Held-out ratings: 20% of each matrix, never seen in training")
plt.show()

# %%
# Recommend
# ---------
# :meth:`~funksgd.FunkSVD.recommend` returns, per user, the indices of the
# ``n`` items with the highest predicted rating and those ratings. Passing the
# users' rows of ``X_train`` leaves out what they already rated.
users = [0, 1]
items, scores = model.recommend(users=users, X=X_train[users], n=5)
for user, row, row_scores in zip(users, items, scores, strict=True):
    predicted_stars = ", ".join(f"{score:.2f}" for score in row_scores)
    print(f"user {user} ({counts[user]} ratings): items {row.tolist()}, ratings {predicted_stars}")

# %%
# Predicted ratings are not clipped to the 1-5 scale: a score above 5 only
# says the model is very confident. The indices are rows and columns of the
# matrix. With a ratings file, an
# :class:`~funksgd.datasets.IdMapping` turns the ids of the file into indices
# and back; :doc:`/ratings_files` shows the whole way from a file to named
# recommendations.
