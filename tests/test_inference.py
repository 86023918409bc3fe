"""Inference: top-n with candidates, filters and the popularity offset, clipping; the final
user solve (its learnt prior, its chunks, its errors); early stopping's epoch 0."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, _inference
from funksgd._validation import check_ratings
from funksgd.datasets import make_ratings
from funksgd.model_selection import choose_per_row, split_by_mask

from .conftest import default_sigint
from .test_sgd import reference_fold_in, ridge_residuals


@pytest.fixture(scope="module")
def fitted():
    X = make_ratings(n_users=80, n_items=50, n_ratings=1500, random_state=0)
    # unclipped, so that the brute force can rank by predict_ratings (which clips by default)
    return FunkSVD(n_components=4, random_state=0, clip=False).fit(X), X.tocsr()


def brute_force_top(model, X, users, n, allowed):
    """Sort every allowed, unrated item of each user by its predicted rating plus the
    popularity offset ``popularity_weight_ * log(1 + n_i)``."""
    offsets = model.popularity_weight_ * np.log1p(np.bincount(X.indices, minlength=X.shape[1]))
    result = []
    for u in users:
        candidates = [i for i in allowed if i not in set(X[[u]].indices)]
        pred = model.predict_ratings(np.full(len(candidates), u), candidates)
        order = np.argsort(-(pred + offsets[candidates]), kind="stable")
        result.append([candidates[j] for j in order[:n]])
    return result


@pytest.mark.parametrize("option", ["none", "items", "filter_items", "both"])
def test_recommend_candidates_and_filters(fitted, option):
    model, X = fitted
    rng = np.random.default_rng(0)
    items = np.sort(rng.choice(50, 20, replace=False)) if option in ("items", "both") else None
    filtered = rng.choice(50, 10, replace=False) if option in ("filter_items", "both") else None
    allowed = set(range(50)) if items is None else set(items.tolist())
    allowed -= set() if filtered is None else set(filtered.tolist())
    users = np.arange(0, 80, 7)
    got, scores = model.recommend(users=users, X=X[users], n=6, items=items, filter_items=filtered)
    expected = brute_force_top(model, X, users, 6, sorted(allowed))
    for user, row, row_scores, want in zip(users, got, scores, expected, strict=True):
        assert row[row >= 0].tolist() == want
        # the scores are the predicted ratings, not the ranking scores
        np.testing.assert_allclose(
            row_scores[row >= 0], model.predict_ratings(np.full(len(want), user), want),
            rtol=1e-5,
        )  # fmt: skip
    assert model.popularity_weight_ > 0  # the ranking is not only by predicted rating


def test_recommend_pads_when_candidates_run_out(fitted):
    model, X = fitted
    user = [int(np.argmin(np.diff(X.indptr)))]  # the lightest user: many unrated items
    unrated = np.setdiff1d(np.arange(50), X[user].indices)[:2]
    items, scores = model.recommend(users=user, X=X[user], n=5, items=unrated)
    assert sorted(items[0, :2].tolist()) == sorted(unrated.tolist())
    assert items[0, 2:].tolist() == [-1, -1, -1] and np.isnan(scores[0, 2:]).all()


def test_recommend_refuses_bad_candidates(fitted):
    model, X = fitted
    with pytest.raises(ValueError, match="items\\[0\\] = 50 is out of range"):
        model.recommend(users=[0], X=X[[0]], items=[50])
    with pytest.raises(ValueError, match="filter_items"):
        model.recommend(users=[0], X=X[[0]], filter_items=[-1])


def test_clip_limits_predictions_to_the_training_range():
    rng = np.random.default_rng(0)
    X = make_ratings(n_users=60, n_items=40, n_ratings=1200, random_state=2)
    low, high = float(X.data.min()), float(X.data.max())
    clipped = FunkSVD(n_components=4, random_state=0).fit(X)
    free = FunkSVD(n_components=4, random_state=0, clip=False).fit(X)
    assert clipped.rating_range_ == (low, high) and free.rating_range_ is None
    users, items = rng.integers(0, 60, 5000), rng.integers(0, 40, 5000)
    raw = free.predict_ratings(users, items)
    assert raw.min() < low or raw.max() > high  # the test has something to clip
    np.testing.assert_array_equal(clipped.predict_ratings(users, items), np.clip(raw, low, high))
    np.testing.assert_array_equal(clipped.complete(X), np.clip(free.complete(X), low, high))
    assert clipped.score(X) >= free.score(X)
    # the scores recommend ranks by are not clipped: ties at the top would lose the order
    np.testing.assert_array_equal(
        clipped.recommend(users=[0], exclude_rated=False)[1],
        free.recommend(users=[0], exclude_rated=False)[1],
    )


def test_partial_fit_widens_the_range():
    X = make_ratings(n_users=60, n_items=40, n_ratings=1200, random_state=1).tocsr()
    low_half = X.copy()
    low_half.data = np.minimum(low_half.data, 3.0)
    model = FunkSVD(n_components=4, random_state=0).partial_fit(low_half)
    assert model.rating_range_[1] == 3.0
    model.partial_fit(X)
    assert model.rating_range_ == (float(X.data.min()), float(X.data.max()))


def test_scratch_memory_failure_is_reported_as_memory(monkeypatch):
    X = check_ratings(make_ratings(n_users=30, n_items=20, n_ratings=300, random_state=0))
    Q, bi = np.ones((20, 3), X.dtype), np.zeros(20, X.dtype)

    class NoMemory:  # the kernel's answer when a thread's scratch cannot be allocated
        def fold_in(self, *args):
            return 0, 0, 7

    monkeypatch.setattr(_inference, "_sgd", NoMemory())
    with pytest.raises(MemoryError, match="Out of memory in the users' solve: 7 rows"):
        _inference.solve_users(X, Q, bi, 3.0, 0.1, True, 1)


def planted_users(n_users=3000, n_items=60, k=4, tau=0.5, sigma=0.5, seed=0):
    """Ratings from known items and users drawn from N(0, tau^2), noise sigma; log-normal
    numbers of ratings per user (many light users). Returns X, the items and the truth."""
    rng = np.random.default_rng(seed)
    Q = rng.normal(0, 1.0, (n_items, k))
    P = rng.normal(0, tau, (n_users, k))
    counts = np.clip(np.round(rng.lognormal(1.5, 1.0, n_users)), 1, n_items).astype(int)
    rows = np.repeat(np.arange(n_users), counts)
    cols = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    values = np.einsum("ij,ij->i", P[rows], Q[cols]) + rng.normal(0, sigma, len(rows))
    X = check_ratings(sp.csr_array((values, (rows, cols)), shape=(n_users, n_items)))
    return X, Q, P


def test_solve_users_matches_reference_with_prior_and_chunks(monkeypatch):
    X, Q, _ = planted_users(n_users=200, n_items=30, k=3)
    bi = np.random.default_rng(1).normal(0, 0.2, 30)
    # chunks of about 50 ratings: many calls of the compiled solve, same answer
    monkeypatch.setattr(_inference, "SOLVE_CHUNK_RATINGS", 50)
    for beta in (0.0, 3.0):
        W, b = _inference.solve_users(X, Q, bi, 0.5, 0.02, True, 2, beta, tol=1e-12)
        want_W, want_b = reference_fold_in(X, Q, bi, 0.5, 0.02, True, beta)
        np.testing.assert_allclose(W, want_W, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(b, want_b, rtol=1e-8, atol=1e-11)


def test_row_chunks_cover_every_row_once():
    indptr = np.array([0, 0, 5, 5, 9, 30, 31, 31], dtype=np.int64)
    chunks = list(_inference.row_chunks(indptr, 6))
    assert chunks[0][0] == 0 and chunks[-1][1] == 7
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(start < stop for start, stop in chunks)


def test_learnt_prior_is_near_the_bayes_value_and_helps_light_users():
    # the Bayes posterior mean has penalty sigma^2 / tau^2 = 1 (alpha = 0, unbiased)
    X, Q, P = planted_users(tau=0.5, sigma=0.5)
    beta = _inference.choose_prior(*held_out_fifth(X), Q, np.zeros(len(Q)), 0.0, 0.0, False, 1)[0]
    grid = _inference.PRIOR_GRID * np.mean(np.sum(Q**2, axis=1))
    bayes = np.argmin(np.abs(np.log(grid[1:]) - np.log(1.0))) + 1
    assert abs(int(np.flatnonzero(grid == beta)[0]) - bayes) <= 1  # within a grid step
    # fresh ratings of the same users: the prior's solve predicts them better than none,
    # and most of all for the light users
    fresh, _, _ = planted_users(tau=0.5, sigma=0.5, seed=0)
    rng = np.random.default_rng(5)
    items = rng.integers(0, len(Q), len(P))
    truth = np.einsum("ij,ij->i", P, Q[items])
    light = np.diff(X.indptr) <= 4
    errors = {}
    for value in (0.0, beta):
        W, _ = _inference.solve_users(X, Q, np.zeros(len(Q)), 0.0, 0.0, False, 1, value)
        errors[value] = (np.einsum("ij,ij->i", W, Q[items]) - truth) ** 2
    assert errors[beta][light].mean() < 0.8 * errors[0.0][light].mean()
    assert errors[beta].mean() < errors[0.0].mean()


def test_fitted_prior_is_used_by_transform():
    X, _, _ = planted_users(n_users=600, n_items=40)
    X = X.copy()
    X.data += 3.0
    model = FunkSVD(n_components=4, max_iter=3, random_state=0).fit(X)
    fitted = model._fitted
    assert fitted.beta > 0
    items = fitted.item_factors, fitted.item_bias, fitted.global_mean, fitted.alpha, True
    want_W, want_b = reference_fold_in(X, *items, fitted.beta)
    np.testing.assert_allclose(model.transform(X), want_W, rtol=1e-4, atol=1e-5)
    # fit's own solve: from the SGD factors, to FIT_SOLVE_TOL (and transform's close by)
    residuals = ridge_residuals(X, *items, fitted.beta, model.user_factors_, model.user_bias_)
    assert residuals.max() <= 1.01 * _inference.FIT_SOLVE_TOL
    np.testing.assert_allclose(model.transform(X), model.user_factors_, atol=1e-2)
    for n_jobs in (1, 2):
        again = FunkSVD(n_components=4, max_iter=3, random_state=0, n_jobs=n_jobs).fit(X)
        np.testing.assert_array_equal(again.user_factors_, model.user_factors_)
        np.testing.assert_array_equal(again.user_bias_, model.user_bias_)
        assert again._fitted.beta == model._fitted.beta


def held_out_fifth(X, seed=0):
    """``(known, held)``: a fifth of each row's ratings held out (at least one)."""
    return split_by_mask(X, choose_per_row(X, 0.2, np.random.RandomState(seed)))


def test_choose_prior_from_a_start_matches_the_cold_solve():
    X, Q, _ = planted_users(n_users=800, tau=0.5, sigma=0.5)
    zeros = np.zeros(len(Q))
    start = np.random.default_rng(0).normal(0, 0.3, (X.shape[0], Q.shape[1])), np.zeros(
        X.shape[0])  # fmt: skip
    kept = start[0].copy()
    known, held = held_out_fifth(X)
    betas = [
        _inference.choose_prior(known, held, Q, zeros, 0.0, 0.0, False, 1, begin, 1e-8)[0]
        for begin in (None, start)
    ]
    assert betas[0] == betas[1] > 0
    np.testing.assert_array_equal(start[0], kept)  # the caller's start is left alone


def no_signal(n_users=3000, n_items=300, n_ratings=60_000, seed=0):
    """Ratings 3.5 + noise, rounded into 1..5: nothing but the mean to learn."""
    rng = np.random.default_rng(seed)
    key = np.unique(rng.integers(0, n_users * n_items, n_ratings))
    ratings = np.clip(np.round(3.5 + rng.normal(0, 0.65, len(key))), 1, 5)
    X = sp.csr_array((ratings, (key // n_items, key % n_items)), shape=(n_users, n_items))
    test = rng.random(len(key)) < 0.1
    X = check_ratings(X)
    coo = X.tocoo()
    train = sp.csr_array(
        (coo.data[~test], (coo.row[~test], coo.col[~test])), shape=X.shape
    )  # fmt: skip
    return train, (coo.row[test], coo.col[test], coo.data[test])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_on_no_signal_is_as_good_as_the_mean():
    X, (users, items, truth) = no_signal()
    mean_rmse = np.sqrt(np.mean((truth - X.data.mean()) ** 2))
    model = FunkSVD(early_stopping=True, random_state=0).fit(X)
    got = np.sqrt(np.mean((model.predict_ratings(users, items) - truth) ** 2))
    assert got <= 1.005 * mean_rmse


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_keeps_epoch_zero_when_no_epoch_beats_it():
    X, _ = no_signal(n_users=500, n_items=100, n_ratings=8000)
    scores = []
    model = FunkSVD(n_components=5, early_stopping=True, random_state=0, tol=0.0,
                    n_iter_no_change=2)  # fmt: skip
    model.fit(X, callback=lambda info: scores.append(info.validation_rmse))
    # two epochs ran and neither beat the start: the start (zero biases) is kept
    assert model.n_iter_ == 2 and len(scores) == 2
    np.testing.assert_array_equal(model.item_bias_, 0)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux's /proc")
def test_solve_out_of_memory_is_a_memory_error():
    # the address-space limit is set just above what the process uses: the solve's
    # allocations fail, whichever comes first, and must say memory
    code = textwrap.dedent("""
        import resource, numpy as np, scipy.sparse as sp
        from funksgd import _inference
        from funksgd._validation import check_ratings
        rng = np.random.default_rng(0)
        # 200,000 rows of one rating, k=200: 320 MB of user factors
        n = 200_000
        X = check_ratings(sp.csr_array((rng.random(n), (np.arange(n), np.zeros(n, int))),
                                       shape=(n, 1)))
        Q = rng.normal(size=(1, 200))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        # the address space this process maps now (not ru_maxrss: Linux hands a child
        # its parent's, and pytest's may be far larger)
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (mapped + (8 << 20), hard))
        try:
            _inference.solve_users(X, Q, np.zeros(1), 0.0, 0.1, True, 1)
        except MemoryError as error:
            print("MemoryError", error)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), timeout=120)  # fmt: skip
    assert "ill-conditioned" not in out.stdout + out.stderr
    assert "MemoryError" in out.stdout, out.stderr[-2000:]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_interrupts_the_user_solve():
    code = textwrap.dedent("""
        import sys, time, numpy as np, scipy.sparse as sp
        from funksgd import _inference
        from funksgd._validation import check_ratings
        rng = np.random.default_rng(0)
        n_users, n_items, per_user = 100_000, 2_000, 60
        rows = np.repeat(np.arange(n_users), per_user)
        cols = rng.integers(0, n_items, len(rows))
        X = check_ratings(sp.csr_array((rng.random(len(rows)), (rows, cols)),
                                       shape=(n_users, n_items)))
        Q = rng.normal(size=(n_items, 100)).astype(np.float64)
        print("solving", flush=True)
        start = time.perf_counter()
        try:
            _inference.solve_users(X, Q, np.zeros(n_items), 0.0, 0.1, True, 1)
            print("finished", time.perf_counter() - start, flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter() - start, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(__file__)),
                             preexec_fn=default_sigint)  # fmt: skip
    assert child.stdout.readline().strip() == "solving"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=120)
    assert out.startswith("interrupted"), out


def test_partial_fit_on_a_model_without_item_counts():
    """A model rebuilt without item counts (a Dask fit's local model) streams on: the
    counts start from the batch."""
    import dataclasses

    X = make_ratings(n_users=60, n_items=40, n_ratings=1200, random_state=1).tocsr()
    model = FunkSVD(n_components=4, random_state=0).fit(X)
    model._fitted = dataclasses.replace(model._fitted, item_counts=None)
    model.partial_fit(X)
    np.testing.assert_array_equal(model.item_counts_, np.bincount(X.indices, minlength=40))
