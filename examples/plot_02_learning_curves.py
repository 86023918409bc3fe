"""
Learning curves and early stopping
==================================

*How many epochs does a fit need, and how do I stop it when the held-out
error stops improving?*

Every fit records the training RMSE of each epoch in ``loss_curve_``. With
``early_stopping=True`` it also holds out a share of the training ratings,
records minus their RMSE after each epoch in ``validation_scores_`` (higher
is better, as in scikit-learn), stops once that score has not improved for
``n_iter_no_change`` epochs, and keeps the factors of the best epoch.
"""

import matplotlib.pyplot as plt
import numpy as np

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings

X = make_ratings(n_users=3000, n_items=1000, n_ratings=150_000, random_state=0)
X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
test = X_test.tocoo()


def test_rmse(model):
    predicted = model.predict_ratings(test.row, test.col)
    return float(np.sqrt(np.mean((predicted - test.data) ** 2)))


# %%
# Early stopping
# --------------
# Allow up to 200 epochs and let the validation score decide. The 10% of the
# ratings held out for validation (``validation_fraction``) are chosen with
# ``random_state``; the final solve of the user factors uses all ratings.
model = FunkSVD(
    n_components=50, max_iter=200, early_stopping=True, n_iter_no_change=5, random_state=0
).fit(X_train)
validation_rmse = -np.asarray(model.validation_scores_)
best_epoch = int(np.argmax(model.validation_scores_)) + 1
print(
    f"stopped after {model.n_iter_} epochs; best validation RMSE "
    f"{-model.best_validation_score_:.4f} at epoch {best_epoch}"
)
print(f"held-out test RMSE of the kept factors: {test_rmse(model):.4f}")

# %%
# What the held-out error does epoch by epoch
# -------------------------------------------
# To see the test error after every epoch, continue one model an epoch at a
# time with ``warm_start=True`` and ``max_iter=1``: each call picks up the
# factors and the learning-rate schedule where the last one stopped. We do it
# for the default regularisation and for a weak one, ``alpha=0.01``.
curves = {}
for alpha in [0.1, 0.01]:
    model_by_epoch = FunkSVD(
        n_components=50, alpha=alpha, max_iter=1, warm_start=True, random_state=0
    )
    curves[alpha] = [test_rmse(model_by_epoch.fit(X_train)) for _ in range(40)]
    print(
        f"alpha={alpha}: best test RMSE {min(curves[alpha]):.4f} at epoch "
        f"{int(np.argmin(curves[alpha])) + 1}, {curves[alpha][-1]:.4f} at epoch 40"
    )

# %%
# The training RMSE keeps falling: it measures how well the model fits the
# ratings it learns from, and more epochs always help there. The validation
# RMSE tracks the test RMSE and levels off; the fit ends once
# ``n_iter_no_change`` epochs in a row have lowered it by less than ``tol``
# (``1e-4``), long before the 200 allowed. With the default ``alpha`` the
# held-out error only flattens; with weak regularisation it turns up again
# after a few epochs as the factors start fitting noise: that is when
# stopping early matters most.
fig, (ax_es, ax_alpha) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
epochs = np.arange(1, len(model.loss_curve_) + 1)
ax_es.plot(epochs, model.loss_curve_, label="training RMSE (loss_curve_)")
ax_es.plot(epochs, validation_rmse, label="validation RMSE (-validation_scores_)")
ax_es.axvline(best_epoch, color="0.5", ls=":", label=f"kept epoch ({best_epoch})")
ax_es.set_xlabel("epoch")
ax_es.set_ylabel("RMSE")
ax_es.set_title("early_stopping=True")
ax_es.legend()
for alpha, curve in curves.items():
    ax_alpha.plot(np.arange(1, len(curve) + 1), curve, label=f"alpha={alpha}")
ax_alpha.set_xlabel("epoch")
ax_alpha.set_ylabel("held-out test RMSE")
ax_alpha.set_title("warm start, one epoch at a time")
ax_alpha.legend()
plt.show()

# %%
# So: keep the default ``max_iter=20`` when fits are cheap and ``alpha`` is
# tuned; switch on ``early_stopping`` when you raise ``max_iter`` or lower
# ``alpha``, or when you do not know how many epochs the data needs. A
# ``ConvergenceWarning`` tells you when early stopping hit ``max_iter`` while
# the validation error was still improving. :doc:`/training` explains the
# stopping rule and the learning-rate schedules.
