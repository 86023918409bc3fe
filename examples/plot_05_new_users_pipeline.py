"""
New users, pipelines and grid search
====================================

*How do I get factors, predictions and recommendations for users who were
not in the training data, and how do I tune FunkSVD for a downstream task?*

:meth:`~funksgd.FunkSVD.transform` computes the factors of any row of
ratings by *folding it in*: it solves the training objective for that user
exactly, with the item factors held fixed. No refit is needed when users
arrive, and it is what lets :class:`~funksgd.FunkSVD` sit in a scikit-learn
:class:`~sklearn.pipeline.Pipeline` and be cross-validated by users.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings

X, truth = make_ratings(
    n_users=4000, n_items=1000, n_ratings=200_000, return_factors=True, random_state=0
)

# %%
# Fold-in of new users
# --------------------
# Train on 3000 users; the other 1000 arrive later. Of each new user's
# ratings, 80% are what they have told us and 20% are what we try to predict.
X_known, X_new = X[:3000], X[3000:]
X_new_given, X_new_hidden = train_test_split_ratings(X_new, test_size=0.2, random_state=0)
model = FunkSVD(n_components=30, random_state=0).fit(X_known)

W_new = model.transform(X_new_given)  # one row of factors per new user
print(f"factors of {W_new.shape[0]} new users: shape {W_new.shape}")

# %%
# :meth:`~funksgd.FunkSVD.predict` folds the rows in and returns every
# item's predicted rating, user bias included; we read off the hidden ones.
hidden = X_new_hidden.tocoo()
predicted = model.predict(X_new_given)[hidden.row, hidden.col]
squared_error = (predicted - hidden.data) ** 2
print(f"new users' hidden ratings: RMSE {np.sqrt(squared_error.mean()):.4f}")

# %%
# How much must a new user tell us? Group the hidden ratings by how many
# ratings their user gave: fold-in is only as good as the evidence, and a
# user with one or two ratings is predicted little better than by the item
# biases.
given_counts = np.diff(X_new_given.indptr)[hidden.row]
edges = np.array([1, 3, 6, 11, 21, 51, 101, 1001])
group = np.digitize(given_counts, edges) - 1
labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
group_rmse = [np.sqrt(squared_error[group == g].mean()) for g in range(len(labels))]
group_size = [np.count_nonzero(group == g) for g in range(len(labels))]

fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.bar(labels, group_rmse, color="tab:blue")
for x, (value, size) in enumerate(zip(group_rmse, group_size, strict=True)):
    ax.text(x, value, f"{value:.2f}\n({size})", ha="center", va="bottom", fontsize=8)
ax.set_xlabel("ratings the new user gave (folded in)")
ax.set_ylabel("RMSE of their hidden ratings")
ax.set_ylim(0, 1.2 * max(group_rmse))
ax.set_title("New users after fold-in (number of hidden ratings in brackets)")
plt.show()

# %%
# Recommendations for new users work the same way: pass their rows as ``X``
# and no ``users``; the items they rated are left out.
items, scores = model.recommend(X=X_new_given[:3], n=5)
print(items)

# %%
# A pipeline: predict a user attribute from ratings
# -------------------------------------------------
# Suppose some users told us an attribute, say which of two groups they
# belong to (as MovieLens-100k records each user's gender), and we want to
# guess it for the others from their ratings alone. Here the attribute is
# made up from the generated users' hidden tastes plus noise, so it is
# learnable but not perfectly.
rng = np.random.default_rng(0)
taste = truth.user_factors @ rng.normal(size=truth.user_factors.shape[1])
y = (taste + rng.normal(scale=taste.std(), size=len(taste)) > 0).astype(int)
print(f"{y.mean():.0%} of users in group 1")

# %%
# The :class:`~sklearn.pipeline.Pipeline` turns each user's ratings into
# factors and feeds them to a logistic regression.
# :class:`~sklearn.model_selection.GridSearchCV` splits the *users*: each
# validation fold's users are folded in by the FunkSVD fitted on the others.
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
pipe = Pipeline([("mf", FunkSVD(random_state=0)), ("clf", LogisticRegression())])
grid = {"mf__n_components": [2, 5, 10, 30], "clf__C": [0.01, 0.1, 1.0]}
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
print(f"best: {search.best_params_}, cross-validated accuracy {search.best_score_:.3f}")
print(f"accuracy on users never seen in the search: {search.score(X_test, y_test):.3f}")

# %%
# The cross-validated accuracy of each pair of parameters (``cv_results_``
# lists the candidates with the parameter names in sorted order, the last
# one varying fastest):
scores = (
    search.cv_results_["mean_test_score"]
    .reshape(len(grid["clf__C"]), len(grid["mf__n_components"]))
    .T
)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
image = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(grid["clf__C"])), grid["clf__C"])
ax.set_yticks(range(len(grid["mf__n_components"])), grid["mf__n_components"])
ax.set_xlabel("clf__C")
ax.set_ylabel("mf__n_components")
for (i, j), value in np.ndenumerate(scores):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="w")
fig.colorbar(image, label="mean cross-validated accuracy")
plt.show()

# %%
# Tuning FunkSVD alone
# --------------------
# Without a downstream model, :meth:`FunkSVD.score <funksgd.FunkSVD.score>`
# scores a fitted model on rows it did not train on: it folds in 80% of each
# row's ratings and returns minus the RMSE of the other 20%. So a grid search
# needs no ``y``:
search = GridSearchCV(
    FunkSVD(random_state=0), {"n_components": [10, 30], "alpha": [0.03, 0.1]}, cv=3
).fit(X_known)
print(f"best: {search.best_params_}, held-out RMSE {-search.best_score_:.4f}")
