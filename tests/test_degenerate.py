"""Degenerate but valid ratings fit and predict finitely, with every schedule and mode."""

import numpy as np
import pytest

from funksgd import FunkSVD

CASES = {
    "one rating": np.array([[4.0]]),
    "all ratings equal": np.full((30, 20), 3.0),
    "all ratings zero": np.zeros((6, 5)),
    "one user": np.array([[1.0, 2, 3, 4, 5, 3, 2]]),
    "one item": np.array([[1.0], [2], [3], [4], [5]]),
}
PARAMS = [
    {},
    {"n_components": 1},
    {"learning_rate": "constant", "eta0": 0.01},
    {"learning_rate": "invscaling", "eta0": 0.01},
    {"learning_rate": "adaptive", "eta0": 0.01},
    {"algorithm": "funk", "n_components": 2},
    {"biased": False, "n_components": 1},
]


@pytest.mark.parametrize("params", PARAMS, ids=repr)
@pytest.mark.parametrize("name", CASES)
def test_degenerate_ratings_fit_and_predict_finitely(name, params):
    X = CASES[name]
    model = FunkSVD(random_state=0, **params).fit(X)
    users, items = np.nonzero(~np.isnan(X))
    pred = model.predict_ratings(users, items)
    assert np.isfinite(pred).all() and np.isfinite(model.user_factors_).all()
    if len(np.unique(X)) == 1 and model.biased:  # constant ratings: predicted exactly
        np.testing.assert_allclose(pred, X[users, items], atol=0.05)
    assert np.isfinite(model.transform(X)).all()


def test_one_rating_cannot_hold_one_out():
    with pytest.raises(ValueError, match="at least 2 ratings"):
        FunkSVD(early_stopping=True).fit(np.array([[4.0]]))
