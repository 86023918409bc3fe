"""What issue 6 promises: bad input refused clearly, no NaN, no lost model, no shared state.

One test (or one small parametrized group) per guarantee of ``docs/guarantees.rst``;
``tests/README.md`` lists them. The basic bad inputs (1-D, NaN/inf, duplicates, bool,
complex, wrong item count, bad indices) are in ``test_funk_svd.py``; random ones in
``test_fuzz.py``.
"""

import pickle
import threading
import tracemalloc
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from funksgd import FunkSVD, _inference, _validation, train_test_split_ratings
from funksgd.datasets import ratings_to_csr

from .conftest import planted_ratings


def small_model(**params):
    return FunkSVD(**{"n_components": 3, "max_iter": 5, "random_state": 0, **params})


@pytest.fixture(scope="module")
def ratings():
    return planted_ratings(n_users=40, n_items=25, density=0.3)[1]


@pytest.fixture(scope="module")
def fitted(ratings):
    return small_model().fit(ratings)


def fitted_state(model):
    return {name: value for name, value in vars(model).items() if name.endswith("_")}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ---------------------------------------------------------------- 1. every bad input refused
def corrupt(fmt, how):
    """A 3 x 3 matrix of ``fmt`` whose index arrays were edited in place afterwards."""
    X = sp.csr_array(np.array([[1.0, 2, 0], [0, 3, 4], [5, 0, 6]])).asformat(fmt)
    if how == "index":
        X.indices[1] = 7
    elif how == "negative":
        X.indices[0] = -1
    elif how == "stale flag":  # scipy's cached "canonical" flag no longer tells the truth
        X.has_canonical_format = True
        X.indices[1] = 9
    elif how == "stale duplicate":
        X.has_canonical_format = True
        X.indices[1] = X.indices[0]  # row 0 now rates item 0 twice
    elif how == "indptr order":
        X.indptr[1], X.indptr[2] = X.indptr[2], X.indptr[1]
    elif how == "indptr end":
        X.indptr[-1] = 50
    elif how == "indptr length":
        X.indptr = X.indptr[:-1]
    elif how == "row":
        X.row[0] = 1000
    elif how == "col":
        X.col[2] = -2
    elif how == "coords length":
        X.col = X.col[:-1]
    elif how == "lil row":
        X.rows[0] = [0, 99]
        X.data[0] = [1.0, 2.0]
    return X


@pytest.mark.parametrize(
    "fmt, how",
    [
        ("csr", "index"),
        ("csr", "negative"),
        ("csr", "stale flag"),
        ("csr", "stale duplicate"),
        ("csr", "indptr order"),
        ("csr", "indptr end"),
        ("csr", "indptr length"),
        ("csc", "index"),
        ("bsr", "index"),
        ("coo", "row"),
        ("coo", "col"),
        ("coo", "coords length"),
        ("lil", "lil row"),
    ],
)
def test_corrupt_sparse_structure_is_refused_before_any_conversion(fmt, how, fitted):
    # before the fix, coo "row" and bsr "index" crashed the interpreter inside scipy's
    # conversion, and csr "stale flag" made the kernel write past the item factors
    X = corrupt(fmt, how)
    with pytest.raises(ValueError, match="corrupt|outside|shape|length|duplicate"):
        small_model().fit(X)
    with pytest.raises(ValueError, match="corrupt|outside|shape|length|duplicate"):
        fitted.transform(X)  # refused before the item count is even compared


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([["1", "2"], ["3", "4"]]), ValueError, "strings"),
        ([["1", "2"], ["3", "4"]], ValueError, "strings"),
        (np.array([[b"1", b"2"]]), ValueError, "strings"),
        (np.array([["2020-01-01"]], dtype="datetime64[D]"), TypeError, "datetime"),
        (np.array([[{"a": 1}, 2.0]], dtype=object), TypeError, "dict"),
        (np.array([[1e39, 2.0]]), ValueError, "too large for float32"),
        (sp.coo_array(([1.0, 1e300], ([0, 1], [0, 1]))), ValueError, "too large for float32"),
        # CSR whose indices pass through unchanged but whose ratings are converted
        (sp.csr_array(([1.0, 1e300], ([0, 1], [0, 1]))), ValueError, "too large for float32"),
        (sp.coo_array(np.ones(3)), ValueError, "2-D"),
        (np.empty((0, 0)), ValueError, "0 sample"),
        (np.empty((3, 0)), ValueError, "0 feature"),
    ],
)
def test_bad_dtypes_and_shapes_are_refused(X, error, match):
    with pytest.raises(error, match=match):
        small_model().fit(X)


def test_a_csr_that_needs_no_conversion_is_checked_once_and_not_copied(ratings, monkeypatch):
    """A pass over the index arrays per check: at 100M ratings the second one cost 0.05 s."""
    calls = []
    check = _validation._check_compressed
    monkeypatch.setattr(_validation, "_check_compressed", lambda X: calls.append(X) or check(X))
    X = sp.csr_array(ratings, dtype=np.float32)
    checked = _validation.check_ratings(X)
    assert len(calls) == 1
    for name in ("indptr", "indices", "data"):
        assert np.shares_memory(getattr(checked, name), getattr(X, name))
    calls.clear()
    _validation.check_ratings(X, dtype=np.float64)  # new ratings, the same index arrays
    assert len(calls) == 1
    _validation.check_ratings(X.tocsc())  # converted: the result is checked as well
    assert len(calls) == 3


def test_numeric_dtypes_are_converted(ratings):
    """Integer, float16 and object ratings are upcast: the same model as from float32 values."""
    values = np.round(ratings.toarray())
    dense = np.where(values == 0, np.nan, values)
    reference = small_model().fit(dense.astype(np.float32))
    for X in (sp.csr_array(values.astype(np.int8)), dense.astype(np.float16), dense.astype(object)):
        np.testing.assert_array_equal(small_model().fit(X).item_factors_, reference.item_factors_)


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"n_components": True},
        {"n_components": 2.0},
        {"max_iter": False},
        {"alpha": 0.0},
        {"alpha": np.inf},
        {"eta0": np.nan},
        {"eta0": -1.0},
        {"init_std": np.inf},
        {"n_jobs": 0},
        {"n_jobs": 1.5},
        {"n_jobs": True},
        {"dtype": "float16"},
        {"biased": "yes"},
        {"random_state": "seed"},
    ],
)
def test_parameters_out_of_range_are_refused(params, ratings):
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter"):  # InvalidParameterError
        small_model(**params).fit(ratings)


def test_absurd_sizes_are_refused_before_allocating(ratings, fitted, monkeypatch):
    with pytest.raises(ValueError, match=r"n_components=10+ .* would need .* GiB"):
        small_model(n_components=10**12).fit(ratings)
    with pytest.raises(ValueError, match=r"recommend\(n=10+\) .* would need"):
        fitted.recommend([0], n=10**12, exclude_rated=False)
    monkeypatch.setattr(_validation, "_total_memory", lambda: 100)  # a very small machine
    with pytest.raises(ValueError, match="Folding in rows .* would need"):
        fitted.transform(ratings)
    with pytest.raises(ValueError, match=r"\(40, 25\) matrix of predicted ratings"):
        fitted.complete(ratings)
    with pytest.raises(ValueError, match="matrix of predicted ratings would need"):
        fitted.inverse_transform(np.zeros((40, 3)))


def test_too_many_threads_are_capped_not_crashed(ratings):
    many = small_model(n_jobs=100_000).fit(ratings)
    np.testing.assert_array_equal(many.item_factors_, small_model().fit(ratings).item_factors_)


def test_bad_arguments_of_inference_methods(fitted, ratings):
    with pytest.raises(ValueError, match="positive integer"):
        fitted.recommend([0], n=True, exclude_rated=False)
    with pytest.raises(TypeError, match="exclude_rated"):
        fitted.recommend([0], X=ratings[[0]], exclude_rated="no")
    with pytest.raises(ValueError, match="25 features"):
        fitted.recommend(X=np.ones((1, 24)))
    with pytest.raises(ValueError, match="n_components=3"):
        fitted.inverse_transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.inverse_transform(np.full((2, 3), np.nan))
    for users in ([np.nan], ["a"], [True], np.array([1, None], dtype=object)):
        with pytest.raises(TypeError, match="integer indices"):
            fitted.predict_ratings(users, [0] * len(users))
    with pytest.raises(ValueError, match="out of range"):
        fitted.predict_ratings(np.array([2**32], dtype=np.int64), [0])  # would wrap to 0 in C


def test_train_test_split_refuses_what_it_cannot_split():
    one = sp.csr_array(([4.0], ([0], [0])), shape=(1, 1))
    with pytest.raises(ValueError, match="at least 2"):
        train_test_split_ratings(one)
    X = sp.csr_array(np.eye(3))
    for test_size in (None, "0.2", True):
        with pytest.raises(TypeError, match="test_size"):
            train_test_split_ratings(X, test_size=test_size)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_ratings_to_csr_refuses_ratings_that_overflow_float32():
    # found by fuzz_ratings_to_csr: finite in float64, inf once stored as float32
    with pytest.raises(ValueError, match="overflow dtype float32"):
        ratings_to_csr([0, 0], [0, 1], [1.0, 3.5e38])
    X, _ = ratings_to_csr([0, 0], [0, 1], [1.0, 3.5e38], dtype=np.float64)
    assert np.isfinite(X.data).all()


def test_unfitted_estimator_says_so(ratings):
    model = FunkSVD()
    calls = [
        lambda: model.transform(ratings),
        lambda: model.complete(ratings),
        lambda: model.predict_ratings([0], [0]),
        lambda: model.recommend([0], exclude_rated=False),
        lambda: model.score(ratings),
        lambda: model.inverse_transform(np.zeros((1, 100))),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


def test_users_and_items_without_ratings_get_bias_only_predictions(ratings):
    X = ratings.tolil()
    X[:, 4] = 0  # item 4 and user 7 have no training ratings
    X[7, :] = 0
    X = sp.csr_array(X)
    X.eliminate_zeros()
    model = small_model().fit(X)
    assert not model.item_factors_[4].any() and model.item_bias_[4] == 0
    assert not model.user_factors_[7].any() and model.user_bias_[7] == 0
    mu = model.global_mean_
    np.testing.assert_allclose(model.predict_ratings([7, 7, 3], [2, 4, 4]),
                               [mu + model.item_bias_[2], mu, mu + model.user_bias_[3]],
                               rtol=1e-6)  # fmt: skip
    # new users with no ratings at all: zero factors, the item-bias-only prediction
    empty = sp.csr_array((2, 25))
    assert not model.transform(empty).any()
    np.testing.assert_allclose(model.complete(empty), np.tile(mu + model.item_bias_, (2, 1)))


# ------------------------------------------------------------------- 2. numerical safety
@pytest.mark.parametrize(
    "scale, params",
    [(1.0, {"eta0": 50.0}), (2e5, {"eta0": 0.005}), (1e30, {"eta0": 0.005, "dtype": "float64"})],
    ids=["huge eta0", "ratings up to 1e6", "ratings up to 5e30"],
)
def test_divergence_stops_with_an_error(ratings, scale, params):
    # a constant rate does not adapt to the scale of the ratings: these diverge
    with pytest.raises(ValueError, match="diverged at epoch 1 .* eta0="):
        small_model(learning_rate="constant", **params).fit(ratings * scale)


@pytest.mark.parametrize("scale, dtype", [(2e5, "float32"), (1e30, "float64")])
def test_default_schedule_does_not_diverge_on_huge_ratings(ratings, scale, dtype):
    model = small_model(dtype=dtype).fit(ratings * scale)  # learning_rate="adagrad"
    coo = ratings.tocoo()
    predicted = model.predict_ratings(coo.row, coo.col).astype(np.float64) / scale
    assert np.isfinite(model.item_factors_).all() and np.isfinite(model.user_factors_).all()
    assert model.loss_curve_[-1] <= model.loss_curve_[0] * (1 + 1e-6)
    assert np.sqrt(np.mean((predicted - coo.data) ** 2)) <= coo.data.std()  # beats the mean


def test_finite_but_exploding_training_is_divergence_too():
    # found by fuzz_reader: two ratings, 1 and 35203; the factors grow but stay finite
    X = sp.csr_array(([1.0, 35203.0], ([1, 0], [1, 0])), shape=(2, 2))
    constant = {"n_components": 2, "learning_rate": "constant", "eta0": 0.005, "alpha": 0.05}
    with pytest.raises(ValueError, match="diverged at epoch 4"):  # RMSE 1.9e8 > 10 x 17601
        small_model(max_iter=5, dtype="float64", **constant).fit(X)
    # float32 still solves these users: one rating each takes the dual form, a 1 x 1
    # system however large the factors. A user side it cannot solve raises:
    model = small_model(max_iter=2, **constant).fit(X)
    model.item_factors_[:] = 1e20  # their squares overflow float32
    with pytest.raises(ValueError, match="fold-in failed .* may have diverged .* eta0"):
        model.transform(sp.csr_array(([1.0, 2.0], ([0, 0], [0, 1])), shape=(1, 2)))


# the outcome of each degenerate case (measured; see tests/README.md): "converges" with the
# final training RMSE below the bound (AdaGrad's scale is floored so that a bias's first
# steps cannot overshoot, and is the ratings' root mean square without biases), or the
# divergence error
DEGENERATE = {
    ("constant", True, "all equal"): ("converges", 0.02),
    ("constant", True, "one rating"): ("converges", 0.04),
    # without biases the factors make the rating, from zero users: slow from 4.0
    ("constant", False, "all equal"): ("converges", 3.6),
    ("constant", False, "one rating"): ("converges", 3.995),  # from 4.0 at eta0=0.005
    ("adagrad", True, "all equal"): ("converges", 0.01),
    ("adagrad", True, "one rating"): ("converges", 0.05),
    ("adagrad", False, "all equal"): ("converges", 3.0),
    ("adagrad", False, "one rating"): ("converges", 3.98),  # from 4.0: the rate is eta0 / rms
}


@pytest.mark.parametrize("learning_rate, biased, data", list(DEGENERATE))
def test_degenerate_ratings_converge_or_stop_clearly(ratings, learning_rate, biased, data):
    if data == "all equal":
        X = ratings.copy()
        X.data[:] = 4.0
    else:
        X = sp.csr_array(([4.0], ([2], [1])), shape=(4, 3))
    eta0 = 0.005 if learning_rate == "constant" else 0.05
    model = small_model(max_iter=20, biased=biased, learning_rate=learning_rate, eta0=eta0)
    outcome, bound = DEGENERATE[learning_rate, biased, data]
    if outcome == "diverges":
        with pytest.raises(ValueError, match="diverged"):
            model.fit(X)
        return
    model.fit(X)
    coo = X.tocoo()
    predicted = model.predict_ratings(coo.row, coo.col)
    assert np.isfinite(model.item_factors_).all() and np.isfinite(predicted).all()
    # with biases, zero users predict the global mean from the start: exact already
    assert model.loss_curve_[-1] <= model.loss_curve_[0] and model.loss_curve_[-1] < bound
    if biased:  # the global mean is the answer
        np.testing.assert_allclose(predicted, 4.0, atol=0.01)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_overflow_at_inference_is_an_error_not_inf(fitted):
    huge = sp.csr_array(([3e38, 3e38], ([0, 0], [0, 1])), shape=(1, 25))
    # the fold-in's dual solve gets through without overflowing: finite, huge predictions,
    # clipped to the top of the training ratings
    predicted = fitted.complete(huge)
    assert np.isfinite(predicted).all() and (predicted == fitted.rating_range_[1]).all()
    model = pickle.loads(pickle.dumps(fitted))
    model.item_factors_ = np.ones_like(model.item_factors_)
    with pytest.raises(ValueError, match="overflowed"):  # finite factors, infinite product
        model.inverse_transform(np.full((1, 3), 3e38, dtype=np.float32))


def test_failed_fit_keeps_the_earlier_model(ratings, monkeypatch):
    model = small_model().fit(ratings)
    before = fitted_state(model)
    prediction = model.complete(ratings)
    with pytest.raises(ValueError, match="diverged"):  # fails during training
        model.set_params(learning_rate="constant", eta0=50.0).fit(planted_ratings()[1][:30, :10])
    with pytest.raises(ValueError, match="no ratings"):  # fails in validation
        model.fit(np.full((5, 10), np.nan))

    def interrupted(*args):
        raise KeyboardInterrupt  # Ctrl-C during the final solve of the user side

    monkeypatch.setattr(_inference, "solve_users", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(learning_rate="adagrad", eta0=0.05).fit(ratings[:20])
    monkeypatch.undo()
    assert_same_state(fitted_state(model), before)
    assert model.n_features_in_ == 25
    np.testing.assert_array_equal(model.complete(ratings), prediction)


def test_failed_partial_fit_and_warm_start_keep_the_model(ratings):
    model = small_model()
    for _ in range(2):
        model.partial_fit(ratings)
    before = fitted_state(model)
    with pytest.raises(ValueError, match="25 features"):  # other items
        model.partial_fit(ratings[:, :20])
    with pytest.raises(ValueError, match="Cannot continue training"):  # other users
        model.partial_fit(ratings[:30])
    with pytest.raises(ValueError, match="diverged"):
        model.set_params(learning_rate="constant", eta0=50.0).partial_fit(ratings)
    with pytest.raises(ValueError, match="diverged"):
        model.set_params(warm_start=True).fit(ratings)
    assert_same_state(fitted_state(model), before)
    # a first partial_fit that fails leaves the estimator unfitted, not half-fitted
    fresh = small_model(learning_rate="constant", eta0=50.0)
    with pytest.raises(ValueError, match="diverged"):
        fresh.partial_fit(ratings)
    with pytest.raises(NotFittedError):
        fresh.transform(ratings)


# ------------------------------------------------------------------ 3. read-only inputs
def unsorted_csr(X):
    """The same ratings with each row's indices reversed: valid CSR, not canonical."""
    X = sp.csr_array(X, copy=True)
    for row in range(X.shape[0]):
        part = slice(X.indptr[row], X.indptr[row + 1])
        X.indices[part] = X.indices[part][::-1]
        X.data[part] = X.data[part][::-1]
    X.has_sorted_indices = False
    return X


def read_only(X):
    for array in (X.data, X.indices, X.indptr) if sp.issparse(X) else (X,):
        array.flags.writeable = False
    return X


def test_read_only_inputs_work_and_are_never_written(ratings, fitted, tmp_path):
    dense = np.where(ratings.toarray() == 0, np.nan, ratings.toarray())
    path = Path(tmp_path) / "ratings.dat"
    dense.tofile(path)
    inputs = {
        "memmap": np.memmap(path, dtype=np.float64, mode="r", shape=dense.shape),
        "dense": read_only(dense.copy()),
        "csr": read_only(sp.csr_array(ratings, copy=True)),
        "unsorted csr": read_only(unsorted_csr(ratings)),
        "csc": read_only(sp.csc_array(ratings)),
    }
    reference = small_model().fit(ratings)
    want = [reference.transform(ratings), reference.complete(ratings), reference.score(ratings),
            *reference.recommend(X=ratings, n=3),
            *train_test_split_ratings(ratings, random_state=0)]  # fmt: skip
    for name, X in inputs.items():
        arrays = [X] if not sp.issparse(X) else [X.data, X.indices, X.indptr]
        copies = [np.array(a) for a in arrays]
        model = small_model().fit(X)
        np.testing.assert_array_equal(model.item_factors_, reference.item_factors_, err_msg=name)
        got = [model.transform(X), model.complete(X), model.score(X), *model.recommend(X=X, n=3)]
        got += train_test_split_ratings(X, random_state=0)
        for g, w in zip(got, want, strict=True):
            if sp.issparse(w):
                assert (sp.csr_array(g) != w).nnz == 0, name
            else:
                np.testing.assert_array_equal(g, w, err_msg=name)
        for array, copy, now in zip(arrays, copies, [X] if not sp.issparse(X) else
                                    [X.data, X.indices, X.indptr], strict=True):  # fmt: skip
            assert array is now, name  # not even replaced by a converted copy
            np.testing.assert_array_equal(array, copy, err_msg=name)
    users, items = read_only(np.array([0, 1])), read_only(np.array([2, 3]))
    np.testing.assert_array_equal(
        fitted.predict_ratings(users, items), fitted.predict_ratings([0, 1], [2, 3])
    )
    np.testing.assert_array_equal(
        fitted.inverse_transform(read_only(np.ones((2, 3)))),
        fitted.inverse_transform(np.ones((2, 3))),
    )


# -------------------------------------------------------------------- 4. determinism
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_same_seed_same_model_and_round_trips(ratings, n_jobs, tmp_path):
    a = small_model(n_jobs=n_jobs).fit(ratings)
    b = small_model(n_jobs=n_jobs).fit(ratings)
    assert_same_state(fitted_state(a), fitted_state(b))
    path = Path(tmp_path) / "model.joblib"
    joblib.dump(a, path)
    for loaded in (pickle.loads(pickle.dumps(a)), joblib.load(path)):
        assert_same_state(fitted_state(loaded), fitted_state(a))
        np.testing.assert_array_equal(loaded.complete(ratings), a.complete(ratings))
        np.testing.assert_array_equal(loaded.transform(ratings), a.transform(ratings))
        np.testing.assert_array_equal(loaded.predict_ratings([0, 5], [1, 2]),
                                      a.predict_ratings([0, 5], [1, 2]))  # fmt: skip
        assert loaded.score(ratings) == a.score(ratings)
        # an unpickled estimator refits to the same factors
        assert_same_state(fitted_state(loaded.fit(ratings)), fitted_state(a))


# --------------------------------------------------------------------- 5. concurrency
def test_fits_in_threads_match_sequential_fits():
    data = [planted_ratings(n_users=300, n_items=200, seed=seed)[1] for seed in (1, 2)]
    models = [small_model(n_components=8, max_iter=10, n_jobs=1) for _ in data]
    threads = [threading.Thread(target=m.fit, args=(X,)) for m, X in zip(models, data, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for model, X in zip(models, data, strict=True):
        alone = small_model(n_components=8, max_iter=10).fit(X)
        assert_same_state(fitted_state(model), fitted_state(alone))


def test_one_model_predicts_from_many_threads(fitted, ratings):
    expected = fitted.complete(ratings)
    results = [None] * 4

    def work(slot):
        results[slot] = fitted.complete(ratings)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_grid_search_in_two_processes(ratings):
    grid = {"n_components": [2, 3], "alpha": [0.05, 0.5]}
    parallel = GridSearchCV(small_model(), grid, cv=2, n_jobs=2).fit(ratings)
    serial = GridSearchCV(small_model(), grid, cv=2, n_jobs=1).fit(ratings)
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])  # fmt: skip


# ----------------------------------------------------------------------- 6. resources
def current_rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        pytest.skip("needs /proc/self/statm (Linux) to read the resident set size")


@pytest.mark.slow
def test_no_memory_growth_over_repeated_fits():
    # one user rated all 3000 items, so each fit's fold-in scratch is about
    # 3000 x 31 x 4 = 370 kB per thread: a leak of it would add over 15 MB in 50 fits
    _, X = planted_ratings(n_users=150, n_items=3000, density=0.02)
    X = sp.vstack([X, sp.csr_array(np.ones((1, 3000)))], format="csr")

    def fit():
        model = FunkSVD(n_components=30, max_iter=2, random_state=0, n_jobs=2).fit(X)
        model.predict_ratings(np.arange(150), np.arange(150))

    for _ in range(5):  # warm up allocator pools and caches
        fit()
    rss = current_rss()
    tracemalloc.start()
    traced = tracemalloc.get_traced_memory()[0]
    for _ in range(50):
        fit()
    traced_growth = tracemalloc.get_traced_memory()[0] - traced
    tracemalloc.stop()
    rss_growth = current_rss() - rss
    assert traced_growth < 256 * 1024, f"Python-level allocations grew by {traced_growth} B"
    assert rss_growth < 8 * 2**20, f"resident memory grew by {rss_growth / 2**20:.1f} MiB"
