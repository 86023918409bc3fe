"""
Simultaneous updates versus Funk's factor-at-a-time training
============================================================

*Should each rating's error update all factors at once, or should the
factors be learnt one after the other, as in Simon Funk's original method?*

With ``algorithm="simultaneous"`` (the default) the error of a rating is
computed once from all ``k`` factors and updates all of them. With
``algorithm="funk"`` factor 1 is trained alone for up to ``max_iter``
epochs, then factor 2 on what factor 1 left unexplained, and so on: the
error is readjusted after every change of the one factor being learnt. We
compare accuracy and time for several ``k``.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings

X = make_ratings(n_users=3000, n_items=1000, n_ratings=150_000, random_state=0)
X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
test = X_test.tocoo()

n_components_grid = [2, 5, 10, 20, 40]
results = {"simultaneous": [], "funk": []}
for algorithm, rows in results.items():
    for n_components in n_components_grid:
        model = FunkSVD(n_components=n_components, algorithm=algorithm, random_state=0)
        start = time.perf_counter()
        model.fit(X_train)
        seconds = time.perf_counter() - start
        error = model.predict_ratings(test.row, test.col) - test.data
        rows.append((np.sqrt(np.mean(error**2)), seconds, model.n_iter_))
    print(algorithm)
    for n_components, (rmse, seconds, n_iter) in zip(n_components_grid, rows, strict=True):
        print(f"  k={n_components:<3} RMSE {rmse:.4f}  {seconds:5.2f} s  {n_iter:4d} epochs")

# %%
# Accuracy and time
# -----------------
# Funk's method runs ``max_iter`` epochs (or fewer, when the stopping rule
# ends a factor early) for *each* factor, so its epochs add up to many times
# those of a simultaneous fit, and each of its updates still pays for
# reading the rating, its indices and the biases. The simultaneous fit shares
# that cost among all ``k`` factors.
results = {name: np.array(rows) for name, rows in results.items()}
fig, (ax_rmse, ax_time) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for name, rows in results.items():
    ax_rmse.plot(n_components_grid, rows[:, 0], "o-", label=f'algorithm="{name}"')
    ax_time.plot(n_components_grid, rows[:, 1], "o-", label=f'algorithm="{name}"')
ax_rmse.set_xlabel("n_components")
ax_rmse.set_ylabel("held-out RMSE")
ax_rmse.legend()
ax_time.set_xlabel("n_components")
ax_time.set_ylabel("fit time, s")
ax_time.set_ylim(bottom=0)
ax_time.legend()
plt.show()

# %%
# How the two fits progress
# -------------------------
# ``loss_curve_`` holds the training RMSE of every epoch. In Funk's mode it is
# a staircase: each factor lowers the error by less than the one before, as
# it fits what the earlier factors left, and the earlier factors are never
# revisited.
simultaneous = FunkSVD(n_components=10, random_state=0).fit(X_train)
funk = FunkSVD(n_components=10, algorithm="funk", random_state=0).fit(X_train)
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.plot(
    np.arange(1, simultaneous.n_iter_ + 1),
    simultaneous.loss_curve_,
    label=f'"simultaneous": {simultaneous.n_iter_} epochs',
)
ax.plot(
    np.arange(1, funk.n_iter_ + 1),
    funk.loss_curve_,
    label=f'"funk": {funk.n_iter_} epochs over 10 factors',
)
ax.set_xscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training RMSE (loss_curve_)")
ax.set_title("n_components=10")
ax.legend()
plt.show()

# %%
# The answer: compute the error once per rating and update all factors with
# it. With a handful of factors the two are about equally accurate; with more,
# factor-at-a-time training falls behind, because each factor is fitted
# greedily and then frozen, and it is several times slower for the same
# ``k``. It remains a way to watch the factors emerge in order of importance.
# :doc:`/training` has the same comparison on MovieLens-100k.
