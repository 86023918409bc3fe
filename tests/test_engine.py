"""The training engine: schedules, early stopping, warm starts, partial_fit, Funk's mode,
the epoch callback and the loop's named steps."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from funksgd import FunkSVD, _engine
from funksgd._blocks import BlockedRatings, choose_n_blocks
from funksgd._engine import new_factors
from funksgd._validation import check_ratings

from .conftest import each_kernel, planted_ratings

SCHEDULES = [("constant", 0.02), ("invscaling", 0.04), ("adaptive", 0.02), ("adagrad", 0.1)]
FITTED = ["item_factors_", "item_bias_", "user_factors_", "user_bias_", "global_mean_", "n_iter_"]


@pytest.fixture(scope="module")
def planted():
    truth, X = planted_ratings(n_users=120, n_items=80, rank=3, density=0.4, noise=0.1)
    return truth, X


def truth_rmse(model, truth):
    """RMSE of the model's predictions against the noiseless matrix, over every entry."""
    users, items = np.indices(truth.shape).reshape(2, -1)
    pred = model.predict_ratings(users, items).astype(np.float64)
    return np.sqrt(np.mean((pred - truth.ravel()) ** 2))


def small_model(**params):
    defaults = dict(n_components=3, alpha=0.01, max_iter=60, random_state=0, dtype="float64")
    return FunkSVD(**{**defaults, **params})


def fitted_copy(model):
    return {name: np.copy(getattr(model, name)) for name in FITTED}


def assert_unchanged(model, saved):
    for name, value in saved.items():
        np.testing.assert_array_equal(getattr(model, name), value, err_msg=name)


# ----------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("learning_rate, eta0", SCHEDULES)
def test_schedule_recovers_planted_matrix(planted, learning_rate, eta0):
    truth, X = planted
    model = small_model(learning_rate=learning_rate, eta0=eta0, tol=None).fit(X)
    # the noise is 0.1 and the ratings' spread about 1: recovering the matrix means well under it
    assert truth_rmse(model, truth) < 0.1
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    again = small_model(learning_rate=learning_rate, eta0=eta0, tol=None).fit(X)
    np.testing.assert_array_equal(model.item_factors_, again.item_factors_)
    np.testing.assert_array_equal(model.user_factors_, again.user_factors_)


def test_invscaling_without_decay_is_constant(planted):
    _, X = planted
    constant = small_model(learning_rate="constant", eta0=0.02, max_iter=5).fit(X)
    flat = small_model(learning_rate="invscaling", power_t=0.0, eta0=0.02, max_iter=5).fit(X)
    np.testing.assert_array_equal(constant.item_factors_, flat.item_factors_)
    decayed = small_model(learning_rate="invscaling", power_t=0.5, eta0=0.02, max_iter=5).fit(X)
    assert not np.array_equal(constant.item_factors_, decayed.item_factors_)


def fit_rates(model, X):
    """Fit, and return the rate of each epoch as the epoch callback reports it."""
    epochs = []
    model.fit(X, callback=epochs.append)
    assert [info.epoch for info in epochs] == list(range(1, len(epochs) + 1))
    return [info.learning_rate for info in epochs]


def test_invscaling_rates(planted):
    _, X = planted
    model = small_model(learning_rate="invscaling", eta0=0.04, power_t=0.5, max_iter=4)
    np.testing.assert_allclose(fit_rates(model, X), 0.04 / np.sqrt([1, 2, 3, 4]), rtol=1e-12)


def test_adaptive_divides_rate_by_five_on_plateau(planted):
    _, X = planted
    # a tol no epoch can meet: every epoch after the first is a plateau epoch
    model = small_model(
        learning_rate="adaptive", eta0=0.02, tol=10.0, n_iter_no_change=2, max_iter=6
    )
    np.testing.assert_allclose(fit_rates(model, X), [0.02, 0.02, 0.02, 0.004, 0.004, 8e-4])
    assert model.n_iter_ == 6


def test_adaptive_stops_at_rate_floor(planted):
    _, X = planted
    model = small_model(
        learning_rate="adaptive", eta0=1e-5, tol=10.0, n_iter_no_change=1, max_iter=50
    ).fit(X)
    # epoch 1 sets the best; epochs 2, 3, 4 run at 1e-5, 2e-6, 4e-7; then the floor ends it
    assert model.n_iter_ == 4


def test_adagrad_rate_does_not_depend_on_rating_scale(planted):
    _, X = planted
    # ratings x4 with alpha x4 and init_std x2 is the same model, scaled (without biases,
    # whose penalty scales differently); powers of two keep the arithmetic exact
    params = dict(biased=False, max_iter=10, tol=None)
    users, items = np.nonzero(np.ones((5, 5)))
    for learning_rate, same in [("adagrad", True), ("constant", False)]:
        small = small_model(learning_rate=learning_rate, eta0=0.02, **params).fit(X)
        large = small_model(learning_rate=learning_rate, eta0=0.02, alpha=0.04, init_std=0.2,
                            **params).fit(4 * X)  # fmt: skip
        scaled = large.predict_ratings(users, items) / 4
        assert np.allclose(scaled, small.predict_ratings(users, items), rtol=1e-9) == same


# ------------------------------------------------------------------------ early stopping
def test_early_stopping_stops_and_keeps_best_epoch(planted):
    _, X = planted
    params = dict(early_stopping=True, learning_rate="constant", eta0=0.05, alpha=0.001)
    # tol=0: it stops only after epochs that do not improve at all, so it overfits first
    model = small_model(n_components=10, max_iter=200, tol=0.0, **params).fit(X)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ < 200
    assert model.best_validation_score_ == max(scores)
    assert all(s < 0 for s in scores)  # minus the validation RMSE
    best_epoch = int(np.argmax(scores)) + 1
    assert best_epoch < model.n_iter_  # it overfits, so the best epoch is not the last
    # the same run cut at the best epoch, without a stopping rule, ends with the same factors
    cut = small_model(n_components=10, max_iter=best_epoch, tol=None, **params).fit(X)
    np.testing.assert_array_equal(cut.validation_scores_, scores[:best_epoch])
    np.testing.assert_array_equal(model.item_factors_, cut.item_factors_)
    np.testing.assert_array_equal(model.user_factors_, cut.user_factors_)


def test_early_stopping_warns_when_max_iter_comes_first(planted):
    _, X = planted
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        small_model(early_stopping=True, max_iter=2).fit(X)


def test_early_stopping_needs_two_ratings():
    X = np.full((2, 2), np.nan)
    X[0, 0] = 3.0
    with pytest.raises(ValueError, match="at least 2 ratings"):
        FunkSVD(n_components=1, early_stopping=True).fit(X)


def test_no_warning_without_early_stopping(planted):
    _, X = planted
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = small_model(max_iter=2).fit(X)
    assert model.validation_scores_ is None


def test_early_stopping_fit_transform_matches_transform(planted):
    _, X = planted
    model = small_model(early_stopping=True, max_iter=300)
    W = model.fit_transform(X)
    np.testing.assert_allclose(W, model.transform(X), atol=1e-2)  # sklearn's tolerance


# ------------------------------------------------------------------------------ divergence
@pytest.mark.parametrize(
    "extra", [{}, {"warm_start": True}, {"algorithm": "funk"}, {"early_stopping": True}]
)
def test_divergence_raises_and_keeps_fitted_model(planted, extra):
    _, X = planted
    model = small_model(max_iter=5, tol=None, **extra).fit(X)
    saved = fitted_copy(model)
    model.set_params(learning_rate="constant", eta0=1e4)
    with pytest.raises(ValueError, match="Try a smaller eta0"):
        model.fit(X)
    assert_unchanged(model, saved)
    with pytest.raises(ValueError, match="Try a smaller eta0"):
        model.partial_fit(X)
    assert_unchanged(model, saved)


@pytest.mark.parametrize(
    "poisoned, max_iter, caught",
    [(1, 3, 2), (3, 3, 3), (2, 2, 2)],
    ids=["in the next epoch's errors", "after the last epoch", "last and only check"],
)
@pytest.mark.parametrize("extra", [{}, {"early_stopping": True}])
def test_factors_turned_infinite_are_caught(planted, monkeypatch, poisoned, max_iter, caught,
                                            extra):  # fmt: skip
    # the factors are no longer scanned after every epoch: an infinite factor shows in the
    # next epoch's errors, or in the check after the last epoch
    _, X = planted
    real, calls = _engine.train_cells, []

    def train_cells(cells, factors, *args, **kwargs):
        loss = real(cells, factors, *args, **kwargs)
        calls.append(1)
        if len(calls) == poisoned:
            factors.item_factors[1, 0] = np.inf  # after the epoch's errors were summed
        return loss

    monkeypatch.setattr(_engine, "train_cells", train_cells)
    model = small_model(max_iter=max_iter, tol=None, **extra)
    with pytest.raises(ValueError, match="diverged at epoch") as error:
        model.fit(X)
    epoch = int(str(error.value).split("epoch ")[1].split(" ")[0])
    # with early stopping the validation ratings of item 1 may show it at once
    assert epoch in ((poisoned, caught) if extra else (caught,))


# ---------------------------------------------------------------- warm start, partial_fit
def test_warm_start_continues(planted):
    _, X = planted
    model = small_model(max_iter=5, warm_start=True, learning_rate="adagrad", eta0=0.1).fit(X)
    first_curve = model.loss_curve_
    model.fit(X)
    assert model.t_ == 10 and model.n_iter_ == 5
    assert model.loss_curve_[0] < first_curve[0]
    cold = small_model(max_iter=5, learning_rate="adagrad", eta0=0.1).fit(X)
    np.testing.assert_array_equal(cold.loss_curve_, first_curve)
    with pytest.raises(ValueError, match="same shape"):
        model.fit(X[:, :-1])


def split_ratings(X, n_chunks, seed=0):
    """The ratings of ``X`` dealt at random into ``n_chunks`` matrices of its shape."""
    coo = X.tocoo()
    part = np.random.default_rng(seed).integers(0, n_chunks, coo.nnz)
    return [
        sp.csr_array((coo.data[part == c], (coo.row[part == c], coo.col[part == c])), X.shape)
        for c in range(n_chunks)
    ]


def test_partial_fit_chunks_approach_one_epoch(planted):
    _, X = planted
    params = dict(n_components=3, learning_rate="constant", eta0=0.002, random_state=0)
    start = FunkSVD(**params, max_iter=1).fit(X)  # same initial factors as the runs below
    one_epoch = FunkSVD(**params, max_iter=1).fit(X)
    streamed = FunkSVD(**params)
    for chunk in split_ratings(X, 4):
        streamed.partial_fit(chunk)
    assert streamed.n_iter_ == streamed.t_ == 4 and len(streamed.loss_curve_) == 4
    initial = reference_normals(np.random.RandomState(0), *start.item_factors_.shape, 0.1)
    step = one_epoch.item_factors_ - initial
    gap = streamed.item_factors_ - one_epoch.item_factors_
    # the same ratings in another order with a small rate: nearly the same step
    assert np.linalg.norm(gap) < 0.1 * np.linalg.norm(step)
    with pytest.raises(ValueError, match="same shape"):
        streamed.partial_fit(X[:-1])


def test_partial_fit_predictions_use_sgd_user_factors(planted):
    _, X = planted
    model = small_model(max_iter=3).fit(X)
    exact = model.user_factors_.copy()
    model.partial_fit(X)
    assert not np.allclose(model.user_factors_, exact)
    users, items = [0, 1], [0, 1]
    expected = (
        np.sum(model.user_factors_[users] * model.item_factors_[items], axis=1)
        + model.global_mean_
        + model.user_bias_[users]
        + model.item_bias_[items]
    )
    np.testing.assert_allclose(model.predict_ratings(users, items), expected)


# ------------------------------------------------------------------ kernels vs NumPy loops
def reference_epoch(users, items, ratings, P, Q, bu, bi, mu, eta0, alpha, biased, user_g=None,
                    item_g=None, factor=None, cache=None, train_biases=True):  # fmt: skip
    """One SGD epoch in plain Python, in the given order; returns the squared error.

    ``user_g``/``item_g``: per-row AdaGrad sums (rates eta0 / sqrt(G)). ``factor``:
    Funk's mode, training only that column with the other factors in ``cache``.
    """
    loss = 0.0
    cols = slice(None) if factor is None else slice(factor, factor + 1)
    bias_step = biased and train_biases
    for u, i, r, n in zip(users, items, ratings, range(len(users)), strict=True):
        p, q = P[u, cols].copy(), Q[i, cols].copy()
        err = r - p @ q - (cache[n] if factor is not None else 0) - (mu + bu[u] + bi[i]) * biased
        loss += err**2
        eta_u = eta0 if user_g is None else eta0 / np.sqrt(user_g[u])
        eta_i = eta0 if item_g is None else eta0 / np.sqrt(item_g[i])
        g_p, g_q = err * q - alpha * p, err * p - alpha * q
        g_bu, g_bi = err - alpha * bu[u], err - alpha * bi[i]
        P[u, cols] += eta_u * g_p
        Q[i, cols] += eta_i * g_q
        if bias_step:
            bu[u] += eta_u * g_bu
            bi[i] += eta_i * g_bi
        if user_g is not None:  # the mean squared gradient of the factors, biases left out
            user_g[u] += np.mean(g_p**2)
            item_g[i] += np.mean(g_q**2)
    return loss


def kernel_inputs(seed=0, n_users=7, n_items=5, n=40, k=4):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    ratings = rng.uniform(1, 5, n)
    P, Q = rng.normal(0, 0.3, (n_users, k)), rng.normal(0, 0.3, (n_items, k))
    bu, bi = rng.normal(0, 0.1, n_users), rng.normal(0, 0.1, n_items)
    user_g, item_g = rng.uniform(1, 2, n_users), rng.uniform(1, 2, n_items)
    return users, items, ratings, P, Q, bu, bi, user_g, item_g


ONE_BLOCK = dict(block_ptr=np.array([0, 40], dtype=np.int64), schedule=np.zeros((1, 1), np.int32))


@each_kernel
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("k", [1, 4, 45])  # every path of the vectorised row arithmetic
def test_adagrad_epoch_matches_numpy(kernel, biased, k):
    users, items, ratings, P, Q, bu, bi, user_g, item_g = kernel_inputs(k=k)
    ref = [a.copy() for a in (P, Q, bu, bi, user_g, item_g)]
    expected = reference_epoch(users, items, ratings, ref[0], ref[1], ref[2], ref[3], 3.0, 0.1,
                               0.05, biased, user_g=ref[4], item_g=ref[5])  # fmt: skip
    loss = kernel.adagrad_epoch(
        users, items, ratings, ONE_BLOCK["block_ptr"], ONE_BLOCK["schedule"], P, Q, bu, bi,
        user_g, item_g, 3.0, 0.1, 0.05, biased, 1, np.zeros(1),
    )  # fmt: skip
    assert loss == pytest.approx(expected, rel=1e-12)
    for got, want in zip((P, Q, bu, bi, user_g, item_g), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@each_kernel
@pytest.mark.parametrize("per_row", [True, False])
@pytest.mark.parametrize("biased, train_biases", [(True, True), (True, False), (False, False)])
def test_funk_epoch_matches_numpy(kernel, per_row, biased, train_biases):
    users, items, ratings, P, Q, bu, bi, user_g, item_g = kernel_inputs()
    factor = 2
    cache = np.einsum("ij,ij->i", P[users, :factor], Q[items, :factor])
    ref = [a.copy() for a in (P, Q, bu, bi, user_g, item_g)]
    g = dict(user_g=ref[4], item_g=ref[5]) if per_row else {}
    expected = reference_epoch(users, items, ratings, ref[0], ref[1], ref[2], ref[3], 3.0, 0.1,
                               0.05, biased, factor=factor, cache=cache,
                               train_biases=train_biases, **g)  # fmt: skip
    loss = kernel.funk_epoch(
        users, items, ratings, cache, ONE_BLOCK["block_ptr"], ONE_BLOCK["schedule"], factor,
        P, Q, bu, bi, user_g, item_g, 3.0, 0.1, 0.05, biased, train_biases, per_row, 1,
        np.zeros(1),
    )  # fmt: skip
    assert loss == pytest.approx(expected, rel=1e-12)
    for got, want in zip((P, Q, bu, bi, user_g, item_g), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------ Funk's method
def reference_normals(rng, n_rows, k, std, dtype=np.float64):
    """The initial factors' documented draw: normals from one ``Generator`` per piece of
    rows, seeded by a ``SeedSequence`` from ``rng``."""
    piece = _engine.INIT_CHUNK_ROWS
    n_pieces = -(-n_rows // piece)
    seeds = np.random.SeedSequence(rng.randint(np.iinfo(np.int32).max)).spawn(n_pieces)
    draws = [
        np.random.default_rng(seed).standard_normal((min(piece, n_rows - i * piece), k), dtype)
        for i, seed in enumerate(seeds)
    ]
    return np.concatenate(draws).astype(np.float64) * std if draws else np.zeros((0, k))


def test_initial_factors_are_generator_normals(monkeypatch):
    monkeypatch.setattr(_engine, "INIT_CHUNK_ROWS", 16)  # several pieces, drawn in threads
    _, X = planted_ratings(n_users=50, n_items=40, density=0.2)
    settings = FunkSVD(n_components=5, init_std=0.3)._check_params()
    for dtype in (np.float32, np.float64):
        rng = np.random.RandomState(7)
        factors = new_factors(check_ratings(X, dtype=dtype), settings, rng)
        threaded = FunkSVD(n_components=5, init_std=0.3, n_jobs=2)._check_params()
        again = new_factors(check_ratings(X, dtype=dtype), threaded, np.random.RandomState(7))
        np.testing.assert_array_equal(again.item_factors, factors.item_factors)
        want_q = reference_normals(np.random.RandomState(7), 40, 5, 0.3, dtype)
        assert factors.item_factors.dtype == factors.user_factors.dtype == dtype
        np.testing.assert_allclose(factors.item_factors, want_q, rtol=1e-5, atol=1e-7)
        # users start at zero (fit solves them at the end; SGD moves them from the items)
        assert factors.user_factors.shape == (50, 5) and not factors.user_factors.any()
        assert abs(factors.item_factors.std() - 0.3) < 0.05


def reference_hold_out(X, rng):
    """X less the ratings fit holds out to tune its prior: one random rating of each of
    min(5000, 2% of the ratings, all) random users with two ratings or more."""
    counts = np.diff(X.indptr)
    eligible = np.flatnonzero(counts >= 2)
    rows = np.sort(rng.choice(eligible, min(5000, len(eligible), int(0.02 * X.nnz)), False))
    held = X.indptr[rows] + (rng.random_sample(len(rows)) * counts[rows]).astype(int)
    keep = np.ones(X.nnz, dtype=bool)
    keep[held] = False
    rows_of = np.repeat(np.arange(X.shape[0]), counts)
    return sp.csr_array((X.data[keep], (rows_of[keep], X.indices[keep])), shape=X.shape)


def reference_funk_fit(X, n_components, eta0, alpha, epochs_per_factor, seed):
    """Funk's factor-at-a-time SGD in plain Python, visiting ratings in the estimator's order."""
    X = check_ratings(X)
    rng = np.random.RandomState(seed)
    n_users, n_items = X.shape
    Q = reference_normals(rng, n_items, n_components, 0.1)
    P = np.zeros((n_users, n_components))
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    mu = X.data.mean()
    X = reference_hold_out(X, rng)
    blocks = BlockedRatings(X, choose_n_blocks(n_users, n_items, X.nnz, n_components, 8), rng)
    # blocks.users and .items are positions in the blocks' orders; the estimator trains in
    # those orders, its users taking the initial rows in turn and its items their own row
    P = P[blocks.user_position()]
    user_ids, item_ids = blocks.row_order[blocks.users], blocks.item_order[blocks.items]
    for f in range(n_components):
        for _ in range(epochs_per_factor):
            order = np.concatenate(
                [np.arange(blocks.block_ptr[b], blocks.block_ptr[b + 1])
                 for b in blocks.schedule(rng).ravel()]
            )  # fmt: skip
            u, i = user_ids[order], item_ids[order]
            # the error of the factors trained so far, recomputed for this factor only
            cache = np.einsum("ij,ij->i", P[u, :f], Q[i, :f])
            # the biases train with the first factor, then stay fixed
            reference_epoch(u, i, blocks.ratings[order], P, Q, bu, bi, mu, eta0, alpha, True,
                            factor=f, cache=cache, train_biases=f == 0)  # fmt: skip
    return Q, bi


def test_funk_fit_matches_numpy_reference():
    _, X = planted_ratings(n_users=30, n_items=20, rank=2, density=0.5)
    model = FunkSVD(
        n_components=3, algorithm="funk", learning_rate="constant", eta0=0.02, alpha=0.02,
        max_iter=4, tol=None, random_state=0, dtype="float64",
    ).fit(X)  # fmt: skip
    assert model.n_iter_ == 12 and len(model.loss_curve_) == 12
    Q, bi = reference_funk_fit(X, 3, 0.02, 0.02, 4, seed=0)
    np.testing.assert_allclose(model.item_factors_, Q, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("learning_rate, eta0", [("constant", 0.02), ("adagrad", 0.1)])
def test_funk_recovers_planted_matrix(planted, learning_rate, eta0):
    truth, X = planted
    model = small_model(algorithm="funk", learning_rate=learning_rate, eta0=eta0, warm_start=True)
    errors = [truth_rmse(model.fit(X), truth)]
    # one factor at a time never revisits the first ones: good, but short of the joint fit
    assert errors[0] < 0.25 * truth.std()
    np.testing.assert_allclose(model.fit_transform(X), model.transform(X), atol=1e-2)
    # warm starts retrain each factor with all the others fixed, nearing the joint optimum
    errors += [truth_rmse(model.fit(X), truth) for _ in range(2)]
    assert errors[2] < errors[1] < errors[0] and errors[2] < 0.11


def test_funk_early_stopping_per_factor(planted):
    _, X = planted
    model = small_model(algorithm="funk", early_stopping=True, max_iter=100).fit(X)
    assert len(model.validation_scores_) == model.n_iter_ < 3 * 100
    # each factor lowers the validation error further
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.validation_scores_[-1] > model.validation_scores_[0]


@pytest.mark.parametrize("learning_rate", ["adagrad", "constant"])
def test_funk_threads_do_not_matter(learning_rate):
    # enough ratings for a 4 x 4 block grid, so two threads share the strata
    _, X = planted_ratings(n_users=400, n_items=300, rank=3, density=0.3)
    fits = [
        small_model(
            algorithm="funk",
            learning_rate=learning_rate,
            eta0=0.05,
            max_iter=3,
            n_jobs=n_jobs,
            dtype="float32",
        ).fit(X)  # fmt: skip
        for n_jobs in (1, 2)
    ]
    np.testing.assert_array_equal(fits[0].item_factors_, fits[1].item_factors_)
    np.testing.assert_array_equal(fits[0].user_bias_, fits[1].user_bias_)


def test_verbose_prints_epochs_and_shows_a_progress_bar(capsys):
    _, X = planted_ratings(n_users=40, n_items=30)
    FunkSVD(n_components=2, max_iter=3, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "epoch 1: training RMSE" in out and "epoch 3: training RMSE" in out
    pytest.importorskip("tqdm")
    FunkSVD(n_components=2, max_iter=3, verbose=2, random_state=0).fit(X)
    captured = capsys.readouterr()
    assert "epoch 1:" not in captured.out
    assert "3/3" in captured.err and "training RMSE" in captured.err


# ------------------------------------------------------------------- the loop's steps
def test_stopping_rule_counts_epochs_that_miss_tol():
    rule = _engine.StoppingRule(tol=0.1, n_iter_no_change=2)
    # -1.0 sets the best; -0.95 beats it by less than tol; -0.5 by more; then two misses
    assert [rule.update(s) for s in (-1.0, -0.95, -0.5, -0.45, -0.5)] == [
        False, False, False, False, True,
    ]  # fmt: skip
    assert rule.best == -0.45
    never = _engine.StoppingRule(tol=None, n_iter_no_change=1)
    assert not any(never.update(s) for s in (-1.0, -2.0, -3.0))


def test_best_epoch_restores_the_best_copy():
    values = np.array([1.0, 2.0])
    best = _engine.BestEpoch([values])
    for score, new in ((-3.0, 10.0), (-1.0, 20.0), (-2.0, 30.0)):
        values[:] = new
        best.update(score)
    best.restore()
    np.testing.assert_array_equal(values, [20.0, 20.0])


@pytest.mark.parametrize(
    "learning_rate, expected",
    [("constant", [0.1, 0.1, 0.1]), ("invscaling", 0.1 / np.arange(1, 4) ** 0.5),
     ("adagrad", [0.1, 0.1, 0.1]), ("adaptive", [0.1, 0.1, 0.1])],
)  # fmt: skip
def test_schedule_rates(learning_rate, expected):
    settings = FunkSVD(learning_rate=learning_rate, eta0=0.1, power_t=0.5)._check_params()
    schedule = _engine.Schedule(settings.eta0, scale=1.0)
    rates = []
    for _ in range(3):
        rates.append(schedule.rate(settings))
        schedule.t += 1
    np.testing.assert_allclose(rates, expected, rtol=1e-15)
    assert schedule.slow_down() and schedule.eta == pytest.approx(0.02)


def test_callback_sees_every_epoch_and_the_current_factors(planted):
    _, X = planted
    seen = []

    def callback(info):
        users, items = X.nonzero()
        seen.append((info, info.predict(users, items)))

    model = small_model(max_iter=4, tol=None, early_stopping=True, validation_fraction=0.2)
    model.fit(X, callback=callback)
    assert [info.epoch for info, _ in seen] == [1, 2, 3, 4]
    assert [info.training_rmse for info, _ in seen] == model.loss_curve_
    assert [-info.validation_rmse for info, _ in seen] == model.validation_scores_
    assert all(info.n_ratings == round(0.8 * X.nnz) and info.seconds > 0 for info, _ in seen)
    # the predictions of the epochs' factors approach the ratings
    errors = [np.sqrt(np.mean((pred - X.data) ** 2)) for _, pred in seen]
    assert errors[-1] < errors[0]
    # partial_fit keeps the SGD user factors: the last epoch's predictions are the model's
    users, items = X.nonzero()
    last = []
    streamed = small_model().partial_fit(
        X, callback=lambda info: last.append(info.predict(users, items))
    )
    np.testing.assert_allclose(last[-1], streamed.predict_ratings(users, items), rtol=1e-12)


def test_train_cells_on_one_cell_and_its_slices_is_the_in_process_result(planted):
    """The block-level entry point: a cell run with only its ratings (local indices) and its
    factor slices gives the bit-identical factors of a run over the whole arrays."""
    _, X = planted
    X = check_ratings(X)
    settings = small_model(learning_rate="adagrad")._check_params()
    rng = np.random.RandomState(0)
    whole = _engine.new_factors(X, settings, rng)
    blocks = BlockedRatings(X, 2, np.random.RandomState(1))
    cell = 3  # user block 1, item block 1
    start, stop = blocks.block_ptr[cell], blocks.block_ptr[cell + 1]
    users, items = blocks.users[start:stop], blocks.items[start:stop]
    u0, i0 = users.min(), items.min()
    u1, i1 = users.max() + 1, items.max() + 1
    part = _engine.Factors(
        whole.user_factors[u0:u1].copy(), whole.item_factors[i0:i1].copy(),
        whole.user_bias[u0:u1].copy(), whole.item_bias[i0:i1].copy(), whole.global_mean,
        _engine.Schedule(settings.eta0, whole.schedule.scale),
    )  # fmt: skip

    class Cell:
        pass

    one = Cell()
    one.users, one.items = users - u0, items - i0
    one.ratings, one.block_ptr = blocks.ratings[start:stop], np.array([0, stop - start])
    rate = whole.schedule.kernel_rate(settings.eta0, per_row=True)
    strata = np.array([[cell]], dtype=np.int32)
    _engine.train_cells(blocks, whole, rate, settings, strata)
    _engine.train_cells(one, part, rate, settings)
    np.testing.assert_array_equal(part.user_factors, whole.user_factors[u0:u1])
    np.testing.assert_array_equal(part.item_factors, whole.item_factors[i0:i1])
    np.testing.assert_array_equal(part.item_bias, whole.item_bias[i0:i1])
    np.testing.assert_array_equal(part.schedule.user_grad_sq, whole.schedule.user_grad_sq[u0:u1])


def test_warm_start_without_biases_drops_them(planted):
    _, X = planted
    model = small_model(max_iter=3).fit(X)
    assert np.abs(model.item_bias_).max() > 0 and model.global_mean_ > 0
    model.set_params(warm_start=True, biased=False, clip=False).fit(X)
    assert model.global_mean_ == 0
    assert not model.item_bias_.any() and not model.user_bias_.any()
    users, items = X.nonzero()
    dots = np.einsum("ij,ij->i", model.user_factors_[users], model.item_factors_[items])
    np.testing.assert_allclose(model.predict_ratings(users, items), dots, rtol=1e-9, atol=1e-15)


# ------------------------------------------- the best epoch of early stopping (issue 17)
def test_best_validation_score_is_the_best_epoch_and_its_factors_are_kept():
    """Validation RMSE falls, then rises (over-fitting): the model keeps the best epoch's
    item factors, the same as a fit stopped right after that epoch."""
    _, X = planted_ratings(n_users=100, n_items=80, rank=3, density=0.3, noise=0.5)
    params = dict(n_components=20, alpha=0.001, learning_rate="constant", eta0=0.05,
                  early_stopping=True, tol=None, random_state=0)  # fmt: skip
    seen = []
    model = FunkSVD(max_iter=30, **params).fit(X, callback=seen.append)
    rmses = [info.validation_rmse for info in seen]
    best = int(np.argmin(rmses))
    assert 0 < best < 29 and rmses[-1] > rmses[best] + 0.01  # an inner best epoch
    assert model.best_validation_score_ == -rmses[best]
    stopped = FunkSVD(max_iter=best + 1, **params).fit(X)
    np.testing.assert_array_equal(model.item_factors_, stopped.item_factors_)
    np.testing.assert_array_equal(model.item_bias_, stopped.item_bias_)
    last = FunkSVD(max_iter=30, **{**params, "early_stopping": False}).fit(X)
    assert not np.array_equal(model.item_factors_, last.item_factors_)
