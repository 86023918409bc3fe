"""Degenerate but valid ratings fit and predict finitely, with every schedule and mode;
misshapen input (a long-format table of ratings) is refused clearly."""

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


# ---------------------------------------------------------- long-format DataFrames
def long_table(names=("userId", "movieId", "rating"), n=2000):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {names[0]: rng.integers(1, 500, n), names[1]: rng.integers(1, 300, n),
         names[2]: rng.integers(1, 6, n).astype(float)}
    )  # fmt: skip


@pytest.mark.parametrize(
    "names", [("userId", "movieId", "rating"), ("user_id", "item_id", "score"), ("a", "b", "c")]
)
def test_long_format_dataframe_is_refused_naming_ratings_to_csr(names):
    with pytest.raises(ValueError, match="ratings_to_csr"):
        FunkSVD().fit(long_table(names))


def test_wide_dataframe_of_ratings_is_a_matrix():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    # 3 items and many users, ratings 1-5 with gaps: a genuine (tall) ratings matrix
    values = rng.integers(1, 6, (400, 3)).astype(float)
    values[rng.random((400, 3)) < 0.3] = np.nan
    model = FunkSVD(n_components=2, max_iter=3, random_state=0)
    model.fit(pd.DataFrame(values, columns=["a", "b", "c"]))
    assert model.n_features_in_ == 3
