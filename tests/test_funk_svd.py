"""FunkSVD's behaviour: accuracy on known answers, the sklearn workflow, bad input."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from funksgd import FunkSVD, train_test_split_ratings
from funksgd._inference import FIT_SOLVE_TOL, fold_in
from funksgd._validation import check_ratings
from funksgd.model_selection import _choose

from .conftest import ML100K, planted_ratings, skip_or_fail_in_ci
from .test_sgd import ridge_residuals


def rmse(model, X_test):
    test = sp.coo_array(X_test)
    pred = model.predict_ratings(test.row, test.col).astype(np.float64)
    return np.sqrt(np.mean((pred - test.data) ** 2))


def test_recovers_planted_low_rank_matrix():
    _, X = planted_ratings(n_users=400, n_items=300, rank=5, density=0.3, noise=0.1)
    X_train, X_test = train_test_split_ratings(X, test_size=0.1, random_state=0)
    model = FunkSVD(n_components=5, alpha=0.01, max_iter=60, random_state=0)
    model.fit(X_train)
    assert rmse(model, X_test) < 0.15  # noise level 0.1; rating std is about 1
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_movielens_u1_defaults(ml100k_u1):
    X, (users, items, ratings) = ml100k_u1
    model = FunkSVD(random_state=0).fit(X)
    pred = model.predict_ratings(users, items).astype(np.float64)
    assert np.sqrt(np.mean((pred - ratings) ** 2)) <= 0.95  # Surprise's SVD: 0.951


def test_same_seed_same_factors_and_threads_do_not_matter():
    _, X = planted_ratings(n_users=200, n_items=150)
    a = FunkSVD(n_components=8, random_state=3).fit(X)
    b = FunkSVD(n_components=8, random_state=3, n_jobs=2).fit(X)
    c = FunkSVD(n_components=8, random_state=4).fit(X)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_fitted_attributes():
    _, X = planted_ratings(n_users=60, n_items=40)
    model = FunkSVD(n_components=4, max_iter=3, random_state=0).fit(X)
    assert model.components_.shape == (4, 40)
    assert model.item_factors_.flags.c_contiguous
    np.testing.assert_array_equal(model.components_, model.item_factors_.T)
    assert model.user_factors_.shape == (60, 4)
    assert model.user_bias_.shape == (60,) and model.item_bias_.shape == (40,)
    assert model.global_mean_ == pytest.approx(X.data.mean())
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert model.n_features_in_ == 40
    assert model.item_factors_.dtype == np.float32
    assert FunkSVD(n_components=4, dtype="float64").fit(X).item_factors_.dtype == np.float64


def test_unbiased_model_has_no_biases():
    _, X = planted_ratings(n_users=60, n_items=40)
    model = FunkSVD(n_components=4, biased=False, random_state=0).fit(X)
    assert model.global_mean_ == 0
    assert not model.user_bias_.any() and not model.item_bias_.any()
    W = model.transform(X)
    np.testing.assert_allclose(model.complete(X), W @ model.components_, rtol=1e-5)


def test_fit_transform_equals_fit_then_transform():
    _, X = planted_ratings(n_users=80, n_items=50)
    model = FunkSVD(n_components=5, random_state=0)
    W = model.fit_transform(X)
    # fit's solve starts from the SGD factors and stops at a looser tolerance than
    # transform's (FIT_SOLVE_TOL, SOLVE_TOL): equal to sklearn's tolerance
    np.testing.assert_allclose(W, model.transform(X), atol=1e-2)
    np.testing.assert_array_equal(W, model.user_factors_)


def test_transform_folds_in_new_users():
    truth, X = planted_ratings(n_users=300, n_items=100, rank=3, density=0.4, noise=0.05)
    model = FunkSVD(n_components=3, alpha=0.01, max_iter=50, random_state=0)
    model.fit(X[:250])
    new = X[250:]
    known, held = train_test_split_ratings(new, test_size=0.3, random_state=0)
    full = model.complete(known)
    held = held.tocoo()
    err = full[held.row, held.col] - truth[250:][held.row, held.col]
    assert np.sqrt(np.mean(err**2)) < 0.05  # 0.031 measured; a 5% error in W gives 0.07


def ridge_fold_in(X, model):
    """The documented fold-in, by numpy.linalg.solve: per row, the ridge regression of its
    ratings (less global mean and item bias) on the item factors and a bias, penalty
    ``alpha`` times the row's number of ratings plus the learnt prior ``beta_``."""
    X = sp.csr_array(X)
    Q, bi = model.item_factors_.astype(np.float64), model.item_bias_.astype(np.float64)
    W, bias = np.zeros((X.shape[0], Q.shape[1])), np.zeros(X.shape[0])
    for row in range(X.shape[0]):
        cols = X.indices[X.indptr[row] : X.indptr[row + 1]]
        if len(cols) == 0:
            continue
        y = X.data[X.indptr[row] : X.indptr[row + 1]] - model.global_mean_ - bi[cols]
        A = np.hstack([Q[cols], np.ones((len(cols), 1))])
        penalty = model.alpha * len(cols) + model.beta_
        x = np.linalg.solve(A.T @ A + penalty * np.eye(A.shape[1]), A.T @ y)
        W[row], bias[row] = x[:-1], x[-1]
    return W, bias


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fold_in_matches_numpy_ridge_reference(dtype):
    _, X = planted_ratings(n_users=300, n_items=100, rank=3, density=0.3)
    model = FunkSVD(n_components=4, alpha=0.05, max_iter=10, random_state=0, dtype=dtype)
    model.fit(X[:250])
    W_ref, bias_ref = ridge_fold_in(X[250:], model)
    np.testing.assert_allclose(model.transform(X[250:]), W_ref, rtol=1e-4, atol=1e-5)
    # predict = global mean + user bias + item bias + W Q^T, with the folded-in bias
    full = model.global_mean_ + bias_ref[:, None] + model.item_bias_ + W_ref @ model.components_
    np.testing.assert_allclose(model.complete(X[250:]), full, rtol=1e-4, atol=1e-4)
    # fit's own user factors solve the same problem for the training rows, to FIT_SOLVE_TOL
    items = model.item_factors_, model.item_bias_, model.global_mean_, model.alpha, True
    residuals = ridge_residuals(sp.csr_array(X[:250]), *items, model._fitted.beta,
                                model.user_factors_, model.user_bias_)  # fmt: skip
    assert model._fitted.beta == 0 and residuals.max() <= 1.01 * FIT_SOLVE_TOL


def test_predict_and_inverse_transform_agree():
    _, X = planted_ratings(n_users=50, n_items=30)
    model = FunkSVD(n_components=4, random_state=0).fit(X)
    W = model.transform(X)
    full = model.complete(X)
    no_user_bias = model.inverse_transform(W)
    bias = fold_in(model._fitted, check_ratings(X, dtype=np.float32), 1)[1]  # transform's
    np.testing.assert_allclose(full - no_user_bias, np.repeat(bias[:, None], 30, 1),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    coo = X.tocoo()
    # fit's factors solve to FIT_SOLVE_TOL, transform's to SOLVE_TOL: sklearn's tolerance
    np.testing.assert_allclose(full[coo.row, coo.col], model.predict_ratings(coo.row, coo.col),
                               atol=1e-2)  # fmt: skip


def test_dense_nan_and_sparse_give_the_same_model():
    _, X = planted_ratings(n_users=60, n_items=40)
    dense = np.full(X.shape, np.nan)
    coo = X.tocoo()
    dense[coo.row, coo.col] = coo.data
    a = FunkSVD(n_components=4, random_state=0).fit(dense)
    b = FunkSVD(n_components=4, random_state=0).fit(X)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_explicit_zeros_are_ratings():
    X = sp.csr_array(([0.0, 5.0, 0.0, 4.0], ([0, 0, 1, 1], [0, 1, 0, 1])), shape=(2, 3))
    model = FunkSVD(n_components=2, max_iter=2, random_state=0).fit(X)
    assert model.global_mean_ == pytest.approx(9 / 4)  # the two zeros count


def test_recommend_known_and_new_users():
    _, X = planted_ratings(n_users=100, n_items=50)
    # popularity_weight=0: ranked by predicted rating alone (the offset: test_inference.py)
    model = FunkSVD(n_components=5, random_state=0, popularity_weight=0).fit(X)
    items, scores = model.recommend(users=[0, 3], X=X[[0, 3]], n=5)
    assert items.shape == scores.shape == (2, 5)
    for row, user in enumerate([0, 3]):
        rated = set(X[[user]].indices)
        assert not rated & set(items[row])
        unrated = np.setdiff1d(np.arange(50), list(rated))
        pred = model.predict_ratings(np.full(len(unrated), user), unrated)
        np.testing.assert_array_equal(items[row], unrated[np.argsort(-pred, kind="stable")][:5])
        assert np.all(np.diff(scores[row]) <= 0)
    new_items, new_scores = model.recommend(X=X[[0, 3]], n=5)
    assert new_items.shape == (2, 5)
    for row, user in enumerate([0, 3]):
        assert not set(X[[user]].indices) & set(new_items[row])
    everything, _ = model.recommend(users=[0], n=50, exclude_rated=False)
    assert sorted(everything[0]) == list(range(50))


def heavy_user_setup():
    """A model, and a heavy user who rated every item but five: the five best-scored items."""
    _, X = planted_ratings(n_users=100, n_items=50)
    # unclipped, and ranked by predicted rating alone: recommend's scores are complete's
    model = FunkSVD(n_components=5, random_state=0, clip=False, popularity_weight=0).fit(X)
    scores = model.complete(X[[7]])[0]
    unrated = np.argsort(scores)[:5]  # the five worst items are the only ones left
    rated = np.setdiff1d(np.arange(50), unrated)
    heavy = sp.csr_array((np.full(45, 4.0), (np.zeros(45, int), rated)), shape=(1, 50))
    return model, heavy, unrated


def test_recommend_to_new_users_leaves_out_their_rated_items():
    model, heavy, unrated = heavy_user_setup()
    items, scores = model.recommend(X=heavy, n=5)
    assert sorted(items[0]) == sorted(unrated)
    # in the order of the folded-in user's predicted ratings
    pred = model.complete(heavy)[0]
    np.testing.assert_allclose(scores[0], np.sort(pred[unrated])[::-1], rtol=1e-5)
    # without exclusion, the rated items (the best ones) come first
    everything, _ = model.recommend(X=heavy, n=5, exclude_rated=False)
    assert not set(everything[0]) & set(unrated)


def test_recommend_to_known_users_leaves_out_the_items_rated_in_X():
    model, heavy, unrated = heavy_user_setup()
    items, _ = model.recommend(users=[7], X=heavy, n=5)
    assert sorted(items[0]) == sorted(unrated)
    more, _ = model.recommend(users=[7], X=heavy, n=8)
    assert sorted(more[0, :5]) == sorted(unrated) and list(more[0, 5:]) == [-1, -1, -1]


def test_recommend_pads_when_too_few_items():
    X = sp.csr_array(np.array([[5.0, 4.0, 0.0], [1.0, 0.0, 2.0]]))
    model = FunkSVD(n_components=2, random_state=0).fit(X)
    items, scores = model.recommend(users=[0], X=sp.csr_array(([5.0, 4.0], ([0, 0], [0, 1])),
                                                               shape=(1, 3)), n=3)  # fmt: skip
    assert items[0, 0] == 2 and list(items[0, 1:]) == [-1, -1]
    assert np.isnan(scores[0, 1:]).all()


def test_score_is_negative_heldout_rmse_and_deterministic():
    _, X = planted_ratings(n_users=200, n_items=100, rank=3, noise=0.1)
    good = FunkSVD(n_components=3, alpha=0.01, max_iter=40, random_state=0).fit(X[:150])
    bad = FunkSVD(n_components=3, max_iter=1, eta0=1e-4, random_state=0).fit(X[:150])
    assert good.score(X[150:]) == good.score(X[150:])
    assert -0.3 < good.score(X[150:]) < 0
    assert good.score(X[150:]) == pytest.approx(documented_score(good, X[150:]), rel=1e-4)
    assert bad.score(X[150:]) < good.score(X[150:])


def documented_score(model, X):
    """``score``'s documented protocol, recomputed row by row: in each row with two or more
    ratings hold out round(20%) (at least one) of them, drawn by the seeded generator
    (RandomState(0), one uniform key per rating, the smallest keys held), fold in the rest
    with the NumPy ridge solve, and return minus the RMSE of the held-out ratings."""
    X = sp.csr_array(X)
    keys = np.random.RandomState(0).random_sample(X.nnz)
    known_rows, known_cols, known_vals, held = [], [], [], []
    for row in range(X.shape[0]):
        span = np.arange(X.indptr[row], X.indptr[row + 1])
        n_held = max(1, round(0.2 * len(span))) if len(span) >= 2 else 0
        order = span[np.argsort(keys[span], kind="stable")]
        held += [(row, X.indices[n], X.data[n]) for n in order[:n_held]]
        for n in order[n_held:]:
            known_rows.append(row), known_cols.append(X.indices[n]), known_vals.append(X.data[n])
    known = sp.csr_array((known_vals, (known_rows, known_cols)), shape=X.shape)
    W, bias = ridge_fold_in(known, model)
    rows, cols, truth = (np.array(c) for c in zip(*held, strict=True))
    pred = (model.global_mean_ + bias[rows] + model.item_bias_[cols]
            + np.einsum("ij,ij->i", W[rows], model.item_factors_[cols]))  # fmt: skip
    return -np.sqrt(np.mean((pred - truth) ** 2))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_score_follows_the_documented_protocol(dtype):
    _, X = planted_ratings(n_users=200, n_items=100, rank=3, noise=0.1, seed=2)
    model = FunkSVD(n_components=3, max_iter=10, random_state=0, dtype=dtype).fit(X[:150])
    rtol = 1e-9 if dtype == "float64" else 1e-4
    assert model.score(X[150:]) == pytest.approx(documented_score(model, X[150:]), rel=rtol)


def test_grid_search_with_own_score():
    _, X = planted_ratings(n_users=150, n_items=60, rank=3, noise=0.1)
    search = GridSearchCV(
        FunkSVD(max_iter=30, eta0=0.02, random_state=0),
        {"n_components": [1, 3], "alpha": [0.01, 0.5]},
        cv=3,
    ).fit(X)
    assert search.best_params_ == {"n_components": 3, "alpha": 0.01}


def test_pipeline_grid_search_predicts_a_user_attribute():
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 80
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    attribute = (P[:, 0] > 0).astype(int)  # a trait that shapes the ratings
    mask = rng.random((n_users, n_items)) < 0.4
    ratings = np.where(mask, 3 + P @ Q.T + rng.normal(0, 0.2, mask.shape), np.nan)
    pipe = Pipeline([("mf", FunkSVD(max_iter=30, random_state=0)), ("clf", LogisticRegression())])
    search = GridSearchCV(pipe, {"mf__n_components": [1, 3], "clf__C": [0.01, 1.0]}, cv=3)
    search.fit(ratings, attribute)
    assert search.best_params_["mf__n_components"] == 3
    assert search.best_score_ > 0.85


def test_pipeline_predicts_movielens_gender():
    if not (ML100K / "u.user").exists():
        skip_or_fail_in_ci(f"MovieLens-100k not found at {ML100K}")
    a = np.loadtxt(ML100K / "u.data", dtype=np.int64, usecols=(0, 1, 2))
    X = sp.csr_array((a[:, 2].astype(float), (a[:, 0] - 1, a[:, 1] - 1)), shape=(943, 1682))
    with open(ML100K / "u.user", encoding="latin-1") as f:
        female = np.array([line.split("|")[2] == "F" for line in f], dtype=int)
    pipe = Pipeline([
        ("mf", FunkSVD(max_iter=10, random_state=0)),
        ("clf", LogisticRegression(class_weight="balanced", max_iter=1000)),
    ])  # fmt: skip
    search = GridSearchCV(pipe, {"mf__n_components": [10, 30], "clf__C": [0.1, 1.0]}, cv=3,
                          scoring="balanced_accuracy").fit(X, female)  # fmt: skip
    # 0.62 measured (seed 0); the activity of a user (number of ratings and their mean)
    # alone gives 0.53: the factors carry what the ratings say about the user
    counts = np.diff(X.indptr)
    activity = np.c_[np.log(counts), np.add.reduceat(X.data, X.indptr[:-1]) / counts]
    baseline = cross_val_score(LogisticRegression(class_weight="balanced"), activity, female,
                               cv=3, scoring="balanced_accuracy").mean()  # fmt: skip
    assert search.best_score_ > 0.6 and search.best_score_ > baseline + 0.05


def test_pickle_clone_and_set_output():
    pytest.importorskip("pandas")
    _, X = planted_ratings(n_users=50, n_items=30)
    model = FunkSVD(n_components=4, random_state=0).fit(X)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.complete(X), model.complete(X))
    np.testing.assert_array_equal(loaded.components_, model.components_)
    assert clone(model).get_params() == model.get_params()
    frame = model.set_output(transform="pandas").transform(X)
    assert list(frame.columns) == [f"funksvd{i}" for i in range(4)]


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([1.0, 2.0]), ValueError, "2D"),
        (np.ones((2, 2, 2)), ValueError, "dim"),
        (np.full((3, 3), np.nan), ValueError, "no ratings"),
        (sp.csr_array((3, 3)), ValueError, "no ratings"),
        (np.zeros((0, 3)), ValueError, "0 sample"),
        (np.array([[1.0, np.inf]]), ValueError, "infinity"),
        (sp.csr_array(([1.0, np.nan], ([0, 1], [0, 1])), shape=(2, 2)), ValueError, "NaN"),
        (sp.csr_array(([1.0, np.inf], ([0, 1], [0, 1])), shape=(2, 2)), ValueError, "infinity"),
        (sp.coo_array(([1.0, 2.0], ([0, 0], [1, 1])), shape=(2, 2)), ValueError, "duplicate"),
        (np.array([[True, False]]), TypeError, "boolean"),
        (np.array([["a", "b"]]), ValueError, "convert|float"),
        (np.array([[1 + 1j, 2]]), ValueError, "[Cc]omplex"),
    ],
)
def test_bad_input_is_refused_clearly(X, error, match):
    with pytest.raises(error, match=match):
        FunkSVD(n_components=2, max_iter=1).fit(X)


def test_wrong_number_of_items_after_fit():
    _, X = planted_ratings(n_users=30, n_items=20)
    model = FunkSVD(n_components=2, max_iter=1).fit(X)
    for method in (model.transform, model.complete, model.score):
        with pytest.raises(ValueError, match="20 features"):
            method(X[:, :10])


def test_predict_ratings_refuses_bad_indices():
    _, X = planted_ratings(n_users=30, n_items=20)
    model = FunkSVD(n_components=2, max_iter=1).fit(X)
    with pytest.raises(ValueError, match="out of range"):
        model.predict_ratings([0, 30], [0, 1])
    with pytest.raises(ValueError, match="out of range"):
        model.predict_ratings([0], [-1])
    with pytest.raises(ValueError, match="same length"):
        model.predict_ratings([0, 1], [0])
    with pytest.raises(TypeError, match="integer"):
        model.predict_ratings([0.5], [0])


def test_divergence_is_an_error():
    _, X = planted_ratings(n_users=30, n_items=20)
    with pytest.raises(ValueError, match="diverged.*eta0"):
        FunkSVD(n_components=2, eta0=50.0, max_iter=20).fit(X * 1000)


def test_train_test_split_ratings():
    _, X = planted_ratings(n_users=50, n_items=30)
    X_train, X_test = train_test_split_ratings(X, test_size=0.25, random_state=0)
    assert X_train.shape == X_test.shape == X.shape
    assert X_test.nnz == round(0.25 * X.nnz)
    assert (X_train + X_test != X).nnz == 0
    assert X_train.multiply(X_test).nnz == 0
    again, _ = train_test_split_ratings(X, test_size=0.25, random_state=0)
    assert (again != X_train).nnz == 0
    with pytest.raises(ValueError, match="test_size"):
        train_test_split_ratings(X, test_size=1.5)


def test_split_draws_every_test_set_equally_often():
    # chunks of 2 over 5 ratings: the per-chunk draw must still make the 10 possible
    # test sets of 2 ratings equally likely
    rng = np.random.RandomState(0)
    draws = [tuple(np.flatnonzero(_choose(5, 2, rng, chunk=2))) for _ in range(20000)]
    sets, counts = np.unique(draws, axis=0, return_counts=True)
    assert len(sets) == 10
    np.testing.assert_allclose(counts / len(draws), 0.1, atol=0.01)  # 4.7 standard errors
