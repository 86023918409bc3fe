"""BaselineOnly: the bias-only yardstick against a slow reference, and its protocol."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import BaselineOnly, FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings


def reference_biases(X, reg_items, reg_users, max_iter):
    """The alternating least squares written out rating by rating."""
    coo = X.tocoo()
    coo.data = coo.data.astype(np.float64)
    mean = coo.data.mean()
    user_bias, item_bias = np.zeros(X.shape[0]), np.zeros(X.shape[1])
    for _ in range(max_iter):
        sums, counts = np.zeros(X.shape[1]), np.zeros(X.shape[1])
        for u, i, r in zip(coo.row, coo.col, coo.data, strict=True):
            sums[i] += r - mean - user_bias[u]
            counts[i] += 1
        item_bias = sums / (reg_items + counts)
        sums, counts = np.zeros(X.shape[0]), np.zeros(X.shape[0])
        for u, i, r in zip(coo.row, coo.col, coo.data, strict=True):
            sums[u] += r - mean - item_bias[i]
            counts[u] += 1
        user_bias = sums / (reg_users + counts)
    return mean, user_bias, item_bias


@pytest.mark.parametrize("reg_items, reg_users, max_iter", [(10, 15, 10), (0.5, 2.0, 3)])
def test_matches_the_reference(reg_items, reg_users, max_iter):
    X = make_ratings(n_users=60, n_items=40, n_ratings=900, random_state=0)
    model = BaselineOnly(reg_items=reg_items, reg_users=reg_users, max_iter=max_iter).fit(X)
    mean, user_bias, item_bias = reference_biases(X, reg_items, reg_users, max_iter)
    assert model.global_mean_ == pytest.approx(mean, rel=1e-12)
    np.testing.assert_allclose(model.user_bias_, user_bias, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, item_bias, rtol=1e-10, atol=1e-12)
    users, items = X.nonzero()
    np.testing.assert_allclose(
        model.predict_ratings(users, items), mean + user_bias[users] + item_bias[items]
    )


def test_transform_solves_the_user_biases_of_training_rows():
    X = make_ratings(n_users=50, n_items=30, n_ratings=600, random_state=1)
    model = BaselineOnly(max_iter=30).fit(X)
    # after many steps the user step is at its fixed point: the fold-in gives it back
    np.testing.assert_allclose(model.transform(X)[:, 0], model.user_bias_, rtol=1e-9, atol=1e-12)
    assert model.transform(sp.csr_array((2, 30))).tolist() == [[0.0], [0.0]]


def test_score_is_the_documented_protocol():
    X = make_ratings(n_users=80, n_items=40, n_ratings=1500, random_state=2)
    model = BaselineOnly().fit(X)
    # FunkSVD.score holds out the same ratings: compare with FunkSVD folded to no factors
    from funksgd._inference import SCORE_HOLDOUT_FRACTION, SCORE_SEED
    from funksgd.model_selection import choose_per_row, split_by_mask

    X = X.tocsr()
    mask = choose_per_row(X, SCORE_HOLDOUT_FRACTION, np.random.RandomState(SCORE_SEED))
    known, held = split_by_mask(X, mask.copy())
    bias = model.transform(known)[:, 0]
    held = held.tocoo()
    pred = model.global_mean_ + bias[held.row] + model.item_bias_[held.col]
    assert model.score(X) == pytest.approx(-np.sqrt(np.mean((pred - held.data) ** 2)))


def test_funksvd_beats_the_baseline_on_low_rank_data():
    X = make_ratings(n_users=400, n_items=200, n_ratings=20_000, noise=0.3, random_state=0)
    X_train, X_test = train_test_split_ratings(X, random_state=0)
    test = X_test.tocoo()
    baseline = BaselineOnly().fit(X_train).predict_ratings(test.row, test.col)
    model = FunkSVD(n_components=10, random_state=0).fit(X_train)
    funk = model.predict_ratings(test.row, test.col)

    def rmse(pred):
        return np.sqrt(np.mean((pred - test.data) ** 2))

    assert rmse(funk) < 0.95 * rmse(baseline)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no ratings"):
        BaselineOnly().fit(np.full((3, 3), np.nan))
    model = BaselineOnly().fit(np.array([[1.0, 2.0], [3.0, np.nan]]))
    with pytest.raises(ValueError, match="out of range"):
        model.predict_ratings([0, 2], [0, 0])
