"""Each public parameter does what its documentation says (not only that it runs)."""

import os

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.random import RandomState

from funksgd import FunkSVD, Recommender, _engine, train_test_split_ratings
from funksgd._validation import check_ratings
from funksgd.datasets import load_ratings, make_ratings, ratings_to_csr

from .conftest import planted_ratings


@pytest.fixture(scope="module")
def many_blocks():
    """Ratings enough for a 4 x 4 grid of blocks (so the order of the strata matters)."""
    _, X = planted_ratings(n_users=2000, n_items=1000, rank=3, density=0.1)
    return X


class KernelSpy:
    """Stands in for the kernel module in ``_engine``: records each epoch's kernel,
    strata, thread count, rate and factor dtype, then runs the real kernel."""

    # positions of (strata, n_threads, rate, user factors) in each epoch kernel's arguments
    WHERE = {"sgd_epoch": (4, 13, 10, 5), "adagrad_epoch": (4, 15, 12, 5),
             "funk_epoch": (5, 19, 14, 7)}  # fmt: skip

    def __init__(self, real):
        self.real, self.strata, self.threads = real, [], []
        self.kernels, self.rates, self.dtypes = [], [], []

    def __getattr__(self, name):
        function = getattr(self.real, name)
        if not name.endswith("_epoch"):
            return function
        where = self.WHERE[name]

        def spy(*args):
            self.kernels.append(name)
            self.strata.append(np.array(args[where[0]]))
            self.threads.append(args[where[1]])
            self.rates.append(args[where[2]])
            self.dtypes.append({np.asarray(a).dtype for a in args if isinstance(a, np.ndarray)
                                and np.asarray(a).dtype.kind == "f" and a.ndim == 2})  # fmt: skip
            return function(*args)

        return spy


@pytest.fixture
def kernel_spy(monkeypatch):
    spy = KernelSpy(_engine._sgd)
    monkeypatch.setattr(_engine, "_sgd", spy)
    return spy


@pytest.mark.parametrize("algorithm", ["simultaneous", "funk"])
def test_shuffle_false_visits_the_strata_in_the_same_order_every_epoch(
    many_blocks, kernel_spy, algorithm
):
    params = dict(n_components=2, max_iter=3, algorithm=algorithm, random_state=0)
    FunkSVD(shuffle=False, **params).fit(many_blocks)
    assert kernel_spy.strata[0].shape == (4, 4)
    # the fixed order: stratum s pairs user block b with item block (b + s) % 4
    fixed = np.arange(4)[None, :] * 4 + (np.arange(4)[None, :] + np.arange(4)[:, None]) % 4
    for strata in kernel_spy.strata:
        np.testing.assert_array_equal(strata, fixed)
    kernel_spy.strata.clear()
    FunkSVD(shuffle=True, **params).fit(many_blocks)
    orders = {strata.tobytes() for strata in kernel_spy.strata}
    assert len(orders) > 1  # reshuffled from epoch to epoch


def test_n_jobs_minus_one_runs_the_kernel_on_every_core(many_blocks, kernel_spy):
    # popularity_weight=0: no second fit to learn it, so the spy sees this fit's epochs only
    a = FunkSVD(n_components=2, max_iter=2, n_jobs=-1, random_state=0, popularity_weight=0)
    a.fit(many_blocks)
    from funksgd import _kernels

    cores = os.cpu_count() if _kernels.sgd.openmp_enabled() else 1
    assert kernel_spy.threads == [cores, cores]
    kernel_spy.threads.clear()
    b = FunkSVD(n_components=2, max_iter=2, random_state=0, popularity_weight=0).fit(many_blocks)
    assert kernel_spy.threads == [1, 1]
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_validation_fraction_holds_out_that_share_of_the_ratings(fraction):
    _, X = planted_ratings(n_users=100, n_items=80)
    seen = []
    model = FunkSVD(n_components=3, max_iter=3, early_stopping=True, tol=None,
                    validation_fraction=fraction, random_state=0)  # fmt: skip
    model.fit(X, callback=seen.append)
    n_held = round(fraction * X.nnz)
    assert [info.n_ratings for info in seen] == [X.nnz - n_held] * 3
    assert all(info.validation_rmse is not None for info in seen)
    assert model.validation_scores_ == [-info.validation_rmse for info in seen]
    full = FunkSVD(n_components=3, max_iter=3, random_state=0).fit(X, callback=seen.append)
    # without early stopping, all but one rating each of the users that tune the prior:
    # 2% of the ratings here (every user has two or more)
    assert seen[-1].n_ratings == X.nnz - int(0.02 * X.nnz) and full.validation_scores_ is None


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adagrad"])
def test_tol_stops_non_adaptive_schedules(learning_rate):
    _, X = planted_ratings(n_users=100, n_items=80)
    params = dict(n_components=3, max_iter=30, learning_rate=learning_rate, eta0=0.01,
                  n_iter_no_change=3, random_state=0)  # fmt: skip
    # no epoch beats the best by 10: the first epoch sets the best, three more miss it
    assert FunkSVD(tol=10.0, **params).fit(X).n_iter_ == 1 + 3
    assert FunkSVD(tol=None, **params).fit(X).n_iter_ == 30
    # a tiny tol: training goes on while the training RMSE falls by more than 1e-12
    assert FunkSVD(tol=1e-12, **params).fit(X).n_iter_ > 4


def test_feature_names_in_are_the_dataframe_columns():
    pd = pytest.importorskip("pandas")
    _, X = planted_ratings(n_users=40, n_items=6)
    dense = np.where(X.toarray() == 0, np.nan, X.toarray())
    names = [f"movie {j}" for j in range(6)]
    frame = pd.DataFrame(dense, columns=names)
    model = FunkSVD(n_components=2, max_iter=3, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, names)
    # the same model as from the array
    plain = FunkSVD(n_components=2, max_iter=3, random_state=0).fit(dense)
    np.testing.assert_array_equal(model.item_factors_, plain.item_factors_)
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(model.transform(frame), plain.transform(dense))
    np.testing.assert_array_equal(model.get_feature_names_out(), ["funksvd0", "funksvd1"])


def test_columns_in_another_order_than_at_fit_are_refused():
    pd = pytest.importorskip("pandas")
    _, X = planted_ratings(n_users=40, n_items=6)
    dense = np.where(X.toarray() == 0, np.nan, X.toarray())
    names = [f"movie {j}" for j in range(6)]
    model = FunkSVD(n_components=2, max_iter=3, random_state=0)
    model.fit(pd.DataFrame(dense, columns=names))
    with pytest.raises(ValueError, match="feature names"):
        model.transform(pd.DataFrame(dense, columns=names)[names[::-1]])


def test_integer_test_size_is_a_number_of_ratings():
    _, X = planted_ratings(n_users=50, n_items=40)
    for n in (1, 7, X.nnz - 1):
        X_train, X_test = train_test_split_ratings(X, test_size=n, random_state=0)
        assert X_test.nnz == n and X_train.nnz == X.nnz - n
    # a float is a share
    assert train_test_split_ratings(X, test_size=0.5, random_state=0)[1].nnz == round(X.nnz / 2)


@pytest.mark.parametrize(
    "duplicates, expected",
    [("last", [[1.0, 0.0], [0.0, 3.0]]), ("mean", [[3.0, 0.0], [0.0, 3.0]])],
)
def test_load_ratings_duplicates(tmp_path, duplicates, expected):
    path = tmp_path / "u.data"
    path.write_text("1\t1\t5\t0\n2\t2\t3\t0\n1\t1\t1\t0\n")
    X, _ = load_ratings(path, cache=False, duplicates=duplicates)
    np.testing.assert_array_equal(X.toarray(), expected)
    assert X.nnz == 2
    with pytest.raises(ValueError, match="(?i)duplicate"):
        load_ratings(path, cache=False)  # duplicates="raise" is the default


def test_adagrad_first_step_uses_the_documented_rate():
    """AdaGrad works in ratings divided by their spread ``scale``: the first step of a row
    moves it by ``eta0 * sqrt(scale) / sqrt(scale**3)`` times its gradient."""
    settings = FunkSVD(learning_rate="adagrad", eta0=0.1, alpha=0.0, biased=False)
    settings = settings._check_params()
    scale = 4.0
    schedule = _engine.Schedule(settings.eta0, scale)
    P, Q = np.array([[0.5, -0.25]]), np.array([[0.2, 0.4]])
    factors = _engine.Factors(P.copy(), Q.copy(), np.zeros(1), np.zeros(1), 0.0, schedule)

    class Cell:
        users = items = np.zeros(1, np.int32)
        ratings = np.array([3.0])
        block_ptr = np.array([0, 1], np.int64)

    rate = schedule.kernel_rate(schedule.rate(settings), per_row=True)
    _engine.train_cells(Cell, factors, rate, settings)
    err = 3.0 - P[0] @ Q[0]
    step = 0.1 * np.sqrt(scale) / np.sqrt(scale**3)
    np.testing.assert_allclose(factors.user_factors[0], P[0] + step * err * Q[0], rtol=1e-12)
    np.testing.assert_allclose(factors.item_factors[0], Q[0] + step * err * P[0], rtol=1e-12)


@pytest.mark.parametrize(
    "learning_rate, power_t",
    [("constant", 0.5), ("invscaling", 0.5), ("invscaling", 1.0), ("adaptive", 0.5)],
)
def test_each_epoch_trains_at_the_schedule_rate(learning_rate, power_t):
    """Each epoch's rate, as the callback reports it, is the documented one (constant:
    eta0; invscaling: eta0 / t ** power_t in epoch t = 1, 2, ...; adaptive: eta0 until a
    plateau)."""
    _, X = planted_ratings(n_users=12, n_items=10, density=0.4)
    eta0 = 0.05
    rates = []

    def check(info):
        rates.append(info.learning_rate)

    FunkSVD(n_components=2, max_iter=4, learning_rate=learning_rate, eta0=eta0,
            power_t=power_t, tol=None, random_state=0).fit(X, callback=check)  # fmt: skip
    t = np.arange(4)
    want = {"constant": np.full(4, eta0), "adaptive": np.full(4, eta0),
            "invscaling": eta0 / (t + 1) ** power_t}[learning_rate]  # fmt: skip
    np.testing.assert_allclose(rates, want, rtol=1e-15)


def test_eta0_and_alpha_set_the_first_constant_step():
    """With one rating, one epoch of the constant schedule moves each factor by exactly
    eta0 times its gradient, with the L2 term alpha (no biases)."""
    X = sp.csr_array(([4.0], ([0], [0])), shape=(1, 1))
    for eta0, alpha in ((0.01, 0.02), (0.03, 0.02), (0.03, 0.5)):
        captured = {}

        def grab(info, captured=captured):
            captured["pred"] = info.predict([0], [0])[0]

        model = FunkSVD(n_components=2, max_iter=1, learning_rate="constant", eta0=eta0,
                        alpha=alpha, biased=False, random_state=0, dtype="float64")  # fmt: skip
        model.fit(X, callback=grab)
        # the initial factors as fit draws them: items, then users, from the seed's stream
        start = _engine.new_factors(check_ratings(X), model._check_params(), RandomState(0))
        Q0, P0 = start.item_factors, start.user_factors
        err = 4.0 - P0[0] @ Q0[0]
        p1 = P0[0] + eta0 * (err * Q0[0] - alpha * P0[0])
        q1 = Q0[0] + eta0 * (err * P0[0] - alpha * Q0[0])
        assert captured["pred"] == pytest.approx(p1 @ q1, rel=1e-10)


@pytest.mark.parametrize("patience", [1, 2, 5])
def test_n_iter_no_change_is_the_patience_of_the_stopping_rule(patience):
    _, X = planted_ratings(n_users=60, n_items=40)
    model = FunkSVD(n_components=2, max_iter=50, tol=10.0, n_iter_no_change=patience,
                    random_state=0).fit(X)  # fmt: skip
    assert model.n_iter_ == 1 + patience  # the first epoch sets the best, the rest miss it


@pytest.mark.parametrize("init_std", [0.01, 0.5])
def test_init_std_is_the_spread_of_the_initial_factors(init_std):
    """Before the first epoch the item factors are normal(0, init_std) and the user factors
    zero: after a rate-1e-12 epoch the items are still their initial draws, and the
    callback's predictions those of zero users."""
    _, X = planted_ratings(n_users=300, n_items=200, density=0.2)
    seen = []
    model = FunkSVD(
        n_components=20,
        max_iter=1,
        learning_rate="constant",
        eta0=1e-12,
        biased=False,
        init_std=init_std,
        random_state=0,
    ).fit(  # fmt: skip
        X, callback=lambda info: seen.append(info.predict(np.arange(300), np.arange(300) % 200))
    )
    rated = np.bincount(X.indices, minlength=200) > 0
    assert rated.sum() > 150
    # 20 values per item: the spread of the draws within 5% (their standard error is 1.2%)
    assert np.std(model.item_factors_[rated]) == pytest.approx(init_std, rel=0.05)
    assert np.abs(seen[0]).max() < 1e-9


@pytest.fixture(scope="module")
def by_ids():
    """A model fitted on ratings by original ids (users 1.., items 100..), popularity off."""
    coo = make_ratings(n_users=60, n_items=30, n_ratings=900, random_state=0).tocoo()
    X, mapping = ratings_to_csr(coo.row + 1, coo.col + 100, coo.data)
    model = FunkSVD(n_components=3, max_iter=5, random_state=0, popularity_weight=0.0).fit(X)
    return X, mapping, model


def test_recommender_leaves_out_a_heavy_users_rated_items_and_ranks_the_rest(by_ids):
    """Recommender(...).recommend(user_id, n=every item): exactly the unrated items, by
    predicted rating (NumPy), with the given titles; recommend_new likewise for a dict."""
    X, mapping, model = by_ids
    row = int(np.argmin(np.abs(np.diff(X.indptr) - 24)))  # a heavy user: 24 of 30 rated
    rated = X[[row]].indices
    assert 20 <= len(rated) < 30
    titles = {int(i): f"movie {i}" for i in mapping.item_ids}
    rec = Recommender(model, mapping, X, titles=titles)
    result = rec.recommend(mapping.user_ids[row], n=30)
    scores = model.user_factors_[row] @ model.item_factors_.T + model.item_bias_
    scores += model.global_mean_ + model.user_bias_[row]
    unrated = np.setdiff1d(np.arange(30), rated)
    want = unrated[np.argsort(-scores[unrated], kind="stable")]
    assert [r.item_id for r in result] == mapping.item_id(want).tolist()
    np.testing.assert_allclose([r.score for r in result], scores[want], rtol=1e-5)
    assert [r.title for r in result] == [f"movie {r.item_id}" for r in result]
    # options go to FunkSVD.recommend: filter_items (column indices) never recommended
    blocked = want[:2]
    kept = rec.recommend(mapping.user_ids[row], n=30, filter_items=blocked)
    assert [r.item_id for r in kept] == mapping.item_id(want[2:]).tolist()
    assert Recommender(model, mapping, X).recommend(mapping.user_ids[row])[0].title is None
    # a new user rating all but four items gets exactly those four
    ratings = {int(i): 4.0 for i in mapping.item_id(np.arange(26))}
    new = rec.recommend_new(ratings, n=30)
    assert sorted(r.item_id for r in new) == mapping.item_id(np.arange(26, 30)).tolist()


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64])
def test_dtype_is_the_type_of_the_factors_the_kernel_and_the_outputs(dtype, kernel_spy):
    _, X = planted_ratings(n_users=60, n_items=40)
    model = FunkSVD(n_components=3, max_iter=2, dtype=dtype, random_state=0).fit(X)
    want = np.dtype(dtype)
    for name in ("item_factors_", "user_factors_", "item_bias_", "user_bias_", "components_"):
        assert getattr(model, name).dtype == want, name
    # the compiled loop ran on factors of that type (the fused-type specialisation)
    assert kernel_spy.dtypes and all(seen == {want} for seen in kernel_spy.dtypes)
    assert model.transform(X).dtype == want and model.complete(X).dtype == want
    assert model.predict_ratings([0, 1], [0, 1]).dtype == want
    assert model.recommend(users=[0], X=X[[0]])[1].dtype == want


def test_float32_and_float64_fits_agree_from_the_same_start(monkeypatch):
    """From the same initial factors (float32 normals for both), the float32 and float64
    fits of each schedule agree to float32 rounding, not bit for bit."""
    draw = _engine.normal_factors
    monkeypatch.setattr(
        _engine,
        "normal_factors",
        lambda rng, n, k, std, dtype, n_threads=1: draw(
            rng, n, k, std, np.dtype(np.float32), n_threads
        ).astype(dtype),
    )
    truth, X = planted_ratings(n_users=200, n_items=150, rank=3, density=0.3)
    for learning_rate, eta0 in (("adagrad", 0.05), ("constant", 0.01)):
        fits = {
            dtype: FunkSVD(n_components=3, max_iter=10, learning_rate=learning_rate, eta0=eta0,
                           random_state=0, dtype=dtype, popularity_weight=0.0).fit(X)
            for dtype in ("float32", "float64")
        }  # fmt: skip
        low, high = fits["float32"], fits["float64"]
        assert low.item_factors_.dtype == np.float32 and high.item_factors_.dtype == np.float64
        np.testing.assert_allclose(low.item_factors_, high.item_factors_, atol=1e-4)
        np.testing.assert_allclose(low.complete(X), high.complete(X), atol=1e-3)
        assert not np.array_equal(low.item_factors_, high.item_factors_.astype(np.float32))


@pytest.mark.parametrize("power_t", [0.0, 0.5, 1.0, 2.0])
def test_power_t_alone_sets_the_invscaling_decay(power_t, kernel_spy):
    """eta = eta0 / t ** power_t in epoch t, counted over warm-started fits: as the callback
    reports it and as the kernel receives it; the other schedules ignore power_t."""
    _, X = planted_ratings(n_users=60, n_items=40)
    rates = []
    model = FunkSVD(n_components=2, max_iter=3, learning_rate="invscaling", eta0=0.02,
                    power_t=power_t, tol=None, warm_start=True, random_state=0,
                    popularity_weight=0.0)  # fmt: skip
    model.fit(X, callback=lambda info: rates.append(info.learning_rate))
    model.fit(X, callback=lambda info: rates.append(info.learning_rate))  # epochs 4 to 6
    want = 0.02 / np.arange(1, 7) ** power_t
    np.testing.assert_allclose(rates, want, rtol=1e-15)
    np.testing.assert_allclose(kernel_spy.rates, want, rtol=1e-15)
    params = dict(n_components=2, max_iter=3, learning_rate="constant", eta0=0.02,
                  random_state=0, popularity_weight=0.0)  # fmt: skip
    constant = FunkSVD(power_t=power_t, **params).fit(X)
    np.testing.assert_array_equal(constant.item_factors_, FunkSVD(**params).fit(X).item_factors_)


@pytest.mark.parametrize("weight", [0.0, 0.7, "auto"])
def test_popularity_weight_ranks_by_rating_plus_weighted_log_count(weight):
    """recommend ranks each user's unrated items by predicted rating plus
    ``popularity_weight_ * log(1 + n_i)`` (NumPy), and returns the predicted ratings; a
    fixed weight is kept as given, "auto" learns one; the fit itself does not change."""
    X = make_ratings(n_users=100, n_items=40, n_ratings=2000, random_state=0)
    params = dict(n_components=3, max_iter=5, random_state=0, dtype="float64")
    model = FunkSVD(popularity_weight=weight, **params).fit(X)
    plain = FunkSVD(popularity_weight=0.0, **params).fit(X)
    np.testing.assert_array_equal(model.item_factors_, plain.item_factors_)
    np.testing.assert_array_equal(model.predict_ratings([0, 5], [1, 2]),
                                  plain.predict_ratings([0, 5], [1, 2]))  # fmt: skip
    w = model.popularity_weight_
    assert w == weight if weight != "auto" else (isinstance(w, float) and w >= 0)
    counts = np.bincount(X.indices, minlength=40)
    np.testing.assert_array_equal(model.item_counts_, counts)
    users = np.arange(30)
    items, scores = model.recommend(users=users, X=X[users], n=40)
    pred = model.user_factors_[users] @ model.item_factors_.T + model.item_bias_
    pred += model.global_mean_ + model.user_bias_[users, None]
    rank = pred + w * np.log1p(counts)
    for u in users:
        rank[u, X[[u]].indices] = -np.inf
        n_unrated = 40 - X[[u]].nnz
        np.testing.assert_array_equal(items[u, :n_unrated], np.argsort(-rank[u])[:n_unrated])
        assert np.all(items[u, n_unrated:] == -1)
        np.testing.assert_allclose(scores[u, :n_unrated], pred[u, items[u, :n_unrated]])


def test_random_state_int_instance_or_none():
    """An int and a RandomState seeded with it give the same model; None a fresh one."""
    _, X = planted_ratings(n_users=60, n_items=40)
    params = dict(n_components=3, max_iter=3, popularity_weight=0.0)
    by_int = FunkSVD(random_state=5, **params).fit(X).item_factors_
    by_instance = FunkSVD(random_state=RandomState(5), **params).fit(X).item_factors_
    np.testing.assert_array_equal(by_int, by_instance)
    unseeded = [FunkSVD(random_state=None, **params).fit(X).item_factors_ for _ in range(2)]
    assert not np.array_equal(*unseeded)
