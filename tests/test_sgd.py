"""The compiled kernels against slow, obviously correct NumPy references.

Each kernel test runs on both builds of the loops this machine can run (the portable
one and the AVX2 one, see funksgd/_kernels.py), and the threaded ones check that the
result does not depend on the number of threads.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, _kernels
from funksgd._blocks import BlockedRatings
from funksgd._validation import check_ratings, csr_arrays

from .conftest import each_kernel, planted_ratings

needs_openmp = pytest.mark.skipif(
    not _kernels.sgd.openmp_enabled(), reason="built without OpenMP: one thread only"
)


def reference_epoch(blocks, schedule, P, Q, bu, bi, mu, eta0, alpha, biased):
    """One epoch in plain Python, visiting the cells in schedule order; returns squared error."""
    loss = 0.0
    for cell in schedule.ravel():
        for n in range(blocks.block_ptr[cell], blocks.block_ptr[cell + 1]):
            u, i, r = blocks.users[n], blocks.items[n], blocks.ratings[n]
            pred = P[u] @ Q[i] + (mu + bu[u] + bi[i] if biased else 0.0)
            err = r - pred
            loss += err * err
            e = eta0 * err
            if biased:
                bu[u] += e - eta0 * alpha * bu[u]
                bi[i] += e - eta0 * alpha * bi[i]
            decay = eta0 * alpha
            P[u], Q[i] = P[u] + e * Q[i] - decay * P[u], Q[i] + e * P[u] - decay * Q[i]
    return loss


# row lengths that take every path of the vectorised row arithmetic (whole groups of
# four vectors, single vectors, a half vector, single values) for 16- and 32-byte vectors
ROW_LENGTHS = [1, 4, 45]


@each_kernel
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_blocks", [1, 3])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("k", ROW_LENGTHS)
def test_sgd_epoch_matches_reference(kernel, biased, n_blocks, dtype, rtol, k):
    _, X = planted_ratings(n_users=40, n_items=30, density=0.3)
    X = X.astype(dtype)
    rng = np.random.RandomState(0)
    blocks = BlockedRatings(X, n_blocks, rng)
    schedule = blocks.schedule(rng)
    P = rng.normal(0, 0.1, (40, k)).astype(dtype)
    Q = rng.normal(0, 0.1, (30, k)).astype(dtype)
    bu, bi = np.zeros(40, dtype), np.zeros(30, dtype)
    mu = float(X.data.mean()) if biased else 0.0
    expected = [a.astype(np.float64) for a in (P, Q, bu, bi)]
    expected_loss = reference_epoch(blocks, schedule, *expected, mu, 0.05, 0.1, biased)
    loss = kernel.sgd_epoch(
        blocks.users, blocks.items, blocks.ratings, blocks.block_ptr, schedule,
        P, Q, bu, bi, mu, 0.05, 0.1, biased, 1, np.zeros(n_blocks**2),
    )  # fmt: skip
    for got, want in zip((P, Q, bu, bi), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    assert loss == pytest.approx(expected_loss, rel=rtol)


def test_blocks_hold_every_rating_once():
    _, X = planted_ratings(n_users=50, n_items=40, density=0.4)
    blocks = BlockedRatings(X, 4, np.random.RandomState(1))
    # users and items are positions in the blocks' orders: map them back to ids
    users, items = blocks.row_order[blocks.users], blocks.item_order[blocks.items]
    got = sp.csr_array((blocks.ratings, (users, items)), shape=X.shape)
    assert got.nnz == X.nnz
    assert (got != X).nnz == 0
    # inside a cell, one user's ratings are adjacent: users change at most once per user
    for cell in range(16):
        users = blocks.users[blocks.block_ptr[cell] : blocks.block_ptr[cell + 1]]
        changes = np.count_nonzero(np.diff(users)) + (len(users) > 0)
        assert changes == len(np.unique(users))


@pytest.mark.parametrize("shuffle", [True, False])
def test_schedule_strata_are_independent_and_cover_every_cell(shuffle):
    _, X = planted_ratings(n_users=50, n_items=40, density=0.4)
    n = 5
    blocks = BlockedRatings(X, n, np.random.RandomState(0))
    schedule = blocks.schedule(np.random.RandomState(3), shuffle=shuffle)
    assert schedule.shape == (n, n)
    assert sorted(schedule.ravel()) == list(range(n * n))
    for stratum in schedule:
        assert len(set(stratum // n)) == n  # no two cells share a user block
        assert len(set(stratum % n)) == n  # nor an item block


def _threaded_epochs(kernel, epoch, dtype, n_threads):
    """Three epochs of ``epoch`` ("sgd" or "adagrad") on 200k ratings; losses and arrays."""
    # 100k ratings per stratum: enough for the kernels to use every thread asked for
    _, X = planted_ratings(2000, 1000, rank=3, density=0.1)
    X = check_ratings(X, dtype=dtype)
    rng = np.random.RandomState(0)
    blocks = BlockedRatings(X, 2, rng)
    arrays = [rng.normal(0, 0.3, shape).astype(dtype) for shape in ((2000, 6), (1000, 6))]
    arrays += [np.zeros(2000, dtype), np.zeros(1000, dtype)]
    if epoch == "adagrad":
        arrays += [np.ones(2000, dtype), np.ones(1000, dtype)]
    run = kernel.adagrad_epoch if epoch == "adagrad" else kernel.sgd_epoch
    losses = []
    for _ in range(3):
        loss = run(
            blocks.users, blocks.items, blocks.ratings, blocks.block_ptr, blocks.schedule(rng),
            *arrays, 3.0, 0.02, 0.05, True, n_threads, np.zeros(4),
        )  # fmt: skip
        losses.append(loss)
    return losses, arrays


@needs_openmp
@each_kernel
@pytest.mark.parametrize("epoch", ["sgd", "adagrad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_epochs_identical_for_any_thread_count(kernel, epoch, dtype):
    losses, arrays = _threaded_epochs(kernel, epoch, dtype, 1)
    for n_threads in (2, 3):
        other_losses, other_arrays = _threaded_epochs(kernel, epoch, dtype, n_threads)
        assert other_losses == losses
        for got, want in zip(other_arrays, arrays, strict=True):
            np.testing.assert_array_equal(got, want)


@needs_openmp
@pytest.mark.parametrize("learning_rate", ["adagrad", "constant"])
def test_fit_identical_for_n_jobs_1_and_2(learning_rate):
    _, X = planted_ratings(2000, 1000, density=0.1)  # 4x4 blocks, 50k ratings per stratum
    params = dict(n_components=8, max_iter=3, learning_rate=learning_rate, eta0=0.01)
    models = [FunkSVD(**params, random_state=0, n_jobs=n_jobs).fit(X) for n_jobs in (1, 2)]
    for name in ("item_factors_", "user_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))
    assert models[0].loss_curve_ == models[1].loss_curve_


def row_systems(X, Q, bi, mu, biased):
    """``(row, cols, A, y)`` of each row with ratings: the design (a column of ones for the
    bias) and the targets of its ridge problem."""
    for row in range(X.shape[0]):
        cols = X.indices[X.indptr[row] : X.indptr[row + 1]]
        if len(cols):
            y = X.data[X.indptr[row] : X.indptr[row + 1]] - (mu + bi[cols] if biased else 0)
            A = np.hstack([Q[cols], np.ones((len(cols), 1))]) if biased else Q[cols]
            yield row, cols, A, y


def reference_fold_in(X, Q, bi, mu, alpha, biased, beta=0.0):
    """Ridge solution per row by numpy.linalg.solve, penalty ``alpha * n_u + beta``."""
    k = Q.shape[1]
    P, bu = np.zeros((X.shape[0], k)), np.zeros(X.shape[0])
    for row, cols, A, y in row_systems(X, Q, bi, mu, biased):
        x = np.linalg.solve(A.T @ A + (alpha * len(cols) + beta) * np.eye(A.shape[1]), A.T @ y)
        P[row] = x[:k]
        bu[row] = x[k] if biased else 0
    return P, bu


def ridge_residuals(X, Q, bi, mu, alpha, biased, beta, P, bu):
    """Per row, |A'y - (A'A + rI) x| / |A'y| of the solution ``P``, ``bu`` (0 for empty rows)."""
    out = np.zeros(X.shape[0])
    Q, bi = Q.astype(np.float64), bi.astype(np.float64)
    for row, cols, A, y in row_systems(X, Q, bi, mu, biased):
        x = np.r_[P[row], bu[row]] if biased else P[row].astype(np.float64)
        rhs = A.T @ y
        residual = rhs - A.T @ (A @ x) - (alpha * len(cols) + beta) * x
        out[row] = np.linalg.norm(residual) / np.linalg.norm(rhs)
    return out


def solve_inputs(dtype, k=10, n_items=40, seed=0):
    """Rows of 0, 1, ..., n_items ratings: fewer and more than the unknowns."""
    rng = np.random.default_rng(seed)
    counts = [0, 1, 2, 3, 5, 9, 10, 11, 12, 16, 17, 20, 39, 40, 0, 1]
    rows = np.repeat(np.arange(len(counts)), counts)
    cols = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    values = rng.integers(1, 6, len(rows)).astype(dtype)
    X = check_ratings(
        sp.csr_array((values, (rows, cols)), shape=(len(counts), n_items)), dtype=dtype
    )  # fmt: skip
    Q = rng.normal(0, 0.5, (n_items, k)).astype(dtype)
    bi = rng.normal(0, 0.2, n_items).astype(dtype)
    return X, Q, bi


def run_fold_in(kernel, X, Q, bi, biased, beta, tol, n_threads, start=None, max_steps=100,
                alpha=0.05):  # fmt: skip
    """The kernel's solve from ``start`` (zeros when None); returns P, bu and the steps."""
    n_rows, k = X.shape[0], Q.shape[1]
    P, bu = np.full((n_rows, k), np.nan, Q.dtype), np.full(n_rows, np.nan, Q.dtype)
    if start is None:
        start = np.empty((0, k), Q.dtype), np.empty(0, Q.dtype)
    start = start[0].astype(Q.dtype), start[1].astype(Q.dtype)
    steps, failures, no_memory = kernel.fold_in(
        *csr_arrays(X), Q, bi, 3.0, alpha, beta, biased, max_steps, tol, n_threads,
        *start, P, bu,
    )  # fmt: skip
    assert failures == no_memory == 0
    return P, bu, steps


@each_kernel
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("beta", [0.0, 2.5])
def test_fold_in_matches_reference(kernel, biased, beta):
    X, Q, bi = solve_inputs(np.float64)
    want_P, want_bu = reference_fold_in(X, Q, bi, 3.0, 0.05, biased, beta)
    P, bu, _ = run_fold_in(kernel, X, Q, bi, biased, beta, 1e-12, 1)
    np.testing.assert_allclose(P, want_P, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(bu, want_bu, rtol=1e-8, atol=1e-11)


@each_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biased", [True, False])
def test_fold_in_at_its_tolerance_any_start_and_thread_count(kernel, dtype, biased):
    from funksgd._inference import SOLVE_TOL

    X, Q, bi = solve_inputs(dtype)
    want_P, want_bu = reference_fold_in(X, Q, bi, 3.0, 0.05, biased, 1.0)
    rng = np.random.default_rng(1)
    # a warm start anywhere, even on the rows without ratings (they get zeros)
    start = rng.normal(0, 1, (X.shape[0], Q.shape[1])).astype(dtype), rng.normal(
        0, 1, X.shape[0]).astype(dtype)  # fmt: skip
    results = []
    for begin in (None, start):
        for n_threads in (1, 2):
            P, bu, _ = run_fold_in(kernel, X, Q, bi, biased, 1.0, SOLVE_TOL, n_threads, begin)
            np.testing.assert_allclose(P, want_P, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(bu, want_bu, rtol=1e-4, atol=1e-5)
            assert P.dtype == dtype and bu.dtype == dtype
            results.append((P, bu))
    # the same start gives the same bits whatever the number of threads
    for a, b in [(results[0], results[1]), (results[2], results[3])]:
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@each_kernel
def test_fold_in_warm_start_and_step_limit(kernel):
    X, Q, bi = solve_inputs(np.float64)
    exact = reference_fold_in(X, Q, bi, 3.0, 0.05, True, 0.5)
    n_solved = int(np.count_nonzero(np.diff(X.indptr)))
    # from the answer: no step is needed
    P, bu, steps = run_fold_in(kernel, X, Q, bi, True, 0.5, 1e-6, 1, exact)
    assert steps == 0
    np.testing.assert_allclose(P, exact[0], rtol=1e-12)
    # from near the answer: fewer steps than from zeros to the same tolerance
    near = exact[0] + 1e-3, exact[1] - 1e-3
    assert run_fold_in(kernel, X, Q, bi, True, 0.5, 1e-6, 1, near)[2] < run_fold_in(
        kernel, X, Q, bi, True, 0.5, 1e-6, 1)[2]  # fmt: skip
    # rows of at most LIGHT_MAX = 16 ratings, and no more than the unknowns (k + 1), are
    # solved directly: exact, whatever the start, the tolerance and max_steps
    Xl, Ql, bil = solve_inputs(np.float64, k=16)
    light = np.diff(Xl.indptr) <= 16
    want = reference_fold_in(Xl[light], Ql, bil, 3.0, 0.05, True, 0.5)
    far = np.ones((light.sum(), 16)), np.ones(light.sum())
    P, bu, steps = run_fold_in(kernel, Xl[light], Ql, bil, True, 0.5, 0.5, 1, far, 0)
    assert steps == 0
    np.testing.assert_allclose(P, want[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bu, want[1], rtol=1e-9, atol=1e-12)
    # from zeros (transform, score) rows of up to COLD_LIGHT_MAX = 32 ratings are solved
    # directly, where conjugate gradient takes about a step per rating; from a start, 17
    # ratings or more take conjugate gradient, which is faster there
    Xc, Qc, bic = solve_inputs(np.float64, k=32)
    cold = (np.diff(Xc.indptr) > 16) & (np.diff(Xc.indptr) <= 32)  # rows of 17 and 20
    want = reference_fold_in(Xc[cold], Qc, bic, 3.0, 0.05, True, 0.5)
    P, bu, steps = run_fold_in(kernel, Xc[cold], Qc, bic, True, 0.5, 0.5, 1, max_steps=0)
    assert steps == 0
    np.testing.assert_allclose(P, want[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bu, want[1], rtol=1e-9, atol=1e-12)
    far = np.ones((cold.sum(), 32)), np.ones(cold.sum())
    assert run_fold_in(kernel, Xc[cold], Qc, bic, True, 0.5, 1e-6, 1, far)[2] > 0
    # at most max_steps per row, each a step closer
    residuals = []
    for max_steps in (1, 2, 3):
        P, bu, steps = run_fold_in(kernel, X, Q, bi, True, 0.5, 0.0, 1, max_steps=max_steps)
        assert steps <= max_steps * n_solved
        residuals.append(ridge_residuals(X, Q, bi, 3.0, 0.05, True, 0.5, P, bu)[-5])
    assert residuals[0] > residuals[1] > residuals[2] > 0


@each_kernel
def test_fold_in_preconditions_conjugate_gradient(kernel):
    """Item factors along the axes, each axis its own scale: A'A is diagonal, so the
    diagonal preconditioner solves a row in one step, where plain CG takes a step per
    distinct scale."""
    k = 6
    scales = np.arange(1.0, k + 1)
    # items i, i + k and i + 2k lie along axis i: more than LIGHT_MAX, so that conjugate
    # gradient solves the row
    Q = np.vstack([np.diag(scales)] * 3)
    rng = np.random.default_rng(0)
    X = check_ratings(sp.csr_array(rng.integers(1, 6, (1, 3 * k)).astype(float)))
    bi = np.zeros(3 * k)
    exact = reference_fold_in(X, Q, bi, 3.0, 0.05, False, 0.5)
    P, _, steps = run_fold_in(kernel, X, Q, bi, False, 0.5, 1e-10, 1)
    assert steps == 1
    np.testing.assert_allclose(P, exact[0], rtol=1e-12)


@each_kernel
def test_fold_in_of_a_singular_light_row_falls_back_to_conjugate_gradient(kernel):
    """No penalty (alpha = beta = 0) and items without factors: a light row's system is
    singular when it has two ratings or more (up to 16, the most solved directly).
    Conjugate gradient from zero then gives the least-norm answer: the bias is the mean
    of the row's ratings less the global mean and item biases."""
    dense = np.zeros((3, 16))
    dense[0, :2], dense[1, 0] = [4.0, 3.0], 5.0
    dense[2] = np.arange(16) % 5 + 1.0  # the most ratings solved directly
    X = check_ratings(sp.csr_array(dense))
    Q, bi = np.zeros((16, 16)), np.linspace(-0.5, 0.5, 16)  # 17 unknowns
    P, bu = np.empty((3, 16)), np.empty(3)
    steps, failures, _ = kernel.fold_in(
        *csr_arrays(X), Q, bi, 3.0, 0.0, 0.0, True, 10, 1e-12, 1, np.empty((0, 16)),
        np.empty(0), P, bu,
    )  # fmt: skip
    assert failures == 0 and steps >= 2  # rows 0 and 2 (singular) took CG steps
    means = X.sum(axis=1) / np.diff(X.indptr) - [(bi[0] + bi[1]) / 2, bi[0], bi.mean()]
    np.testing.assert_allclose(bu, means - 3.0, atol=1e-12)
    assert not P.any()


@each_kernel
@pytest.mark.parametrize("k, n", [(2, 16), (100, 16), (100, 32)])
def test_fold_in_in_float32_keeps_its_precision_under_a_small_penalty(kernel, k, n):
    """Rows of n ratings, alpha 1e-5: with k = 2 a row has more ratings than unknowns and
    the dual system would be held up by the penalty alone (relative errors of 1e-2 in
    float32), so conjugate gradient solves it; with k = 100 the primal system is the
    ill-conditioned one (errors up to 0.26 by conjugate gradient with 16 ratings, 3e-2
    with 17-32), and the dual solves (rows of 32 ratings: from zeros only)."""
    rng = np.random.default_rng(0)
    cols = np.concatenate([rng.choice(40, n, replace=False) for _ in range(20)])
    values = rng.integers(1, 6, len(cols)).astype(float)
    X = check_ratings(sp.csr_array((values, (np.repeat(np.arange(20), n), cols)), shape=(20, 40)))
    Q = rng.normal(0, 0.5, (40, k)).astype(np.float32)
    bi = rng.normal(0, 0.2, 40).astype(np.float32)
    want = reference_fold_in(X, Q.astype(np.float64), bi.astype(np.float64), 3.0, 1e-5, True)
    X32 = check_ratings(X, dtype=np.float32)
    P, bu, _ = run_fold_in(kernel, X32, Q, bi, True, 0.0, 1e-6, 1, max_steps=200, alpha=1e-5)
    got, exact = np.column_stack([P, bu]), np.column_stack(want)
    assert np.abs(got - exact).max() < 1e-4 * np.abs(exact).max()


@each_kernel
def test_predict_pairs_matches_reference(kernel):
    rng = np.random.RandomState(0)
    P, Q = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    bu, bi = rng.normal(size=7), rng.normal(size=5)
    users = rng.randint(0, 7, 50).astype(np.int32)
    items = rng.randint(0, 5, 50).astype(np.int32)
    out = np.empty(50)
    kernel.predict_pairs(users, items, P, Q, bu, bi, 3.5, True, 2, out)
    want = 3.5 + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    np.testing.assert_allclose(out, want, rtol=1e-12)


# ------------------------------------------- every kernel: several blocks, two real threads
def _strata_inputs(seed=0, k=4):
    """About 100k ratings in 2 x 2 blocks: 50k per stratum, so each kernel asked for two
    threads really runs two (it starts one per 20,000 ratings of a stratum)."""
    _, X = planted_ratings(n_users=800, n_items=500, rank=3, density=0.25, seed=seed)
    rng = np.random.RandomState(seed)
    blocks = BlockedRatings(check_ratings(X, dtype=np.float64), 2, rng)
    assert len(blocks.ratings) // 2 >= 2 * 20000
    schedule = blocks.schedule(rng)
    P, Q = rng.normal(0, 0.3, (800, k)), rng.normal(0, 0.3, (500, k))
    bu, bi = rng.normal(0, 0.1, 800), rng.normal(0, 0.1, 500)
    user_g, item_g = rng.uniform(1, 2, 800), rng.uniform(1, 2, 500)
    return blocks, schedule, [P, Q, bu, bi, user_g, item_g]


def _reference_in_schedule_order(blocks, schedule, arrays, per_row, factor=None, cache=None,
                                 train_biases=True):  # fmt: skip
    """The NumPy reference epoch (tests/test_engine.py) over the cells in schedule order."""
    from .test_engine import reference_epoch

    order = np.concatenate(
        [np.arange(blocks.block_ptr[c], blocks.block_ptr[c + 1]) for c in schedule.ravel()]
    )
    P, Q, bu, bi, user_g, item_g = arrays
    g = dict(user_g=user_g, item_g=item_g) if per_row else {}
    return reference_epoch(
        blocks.users[order], blocks.items[order], blocks.ratings[order], P, Q, bu, bi, 3.0,
        0.05, 0.02, True, factor=factor, cache=None if cache is None else cache[order],
        train_biases=train_biases, **g,
    )  # fmt: skip


@needs_openmp
@each_kernel
@pytest.mark.parametrize("epoch", ["sgd_epoch", "adagrad_epoch", "funk_epoch"])
def test_every_kernel_on_several_blocks_and_two_threads_matches_reference(kernel, epoch):
    """Each epoch kernel visits every rating once, in the cells' order, with two threads
    sharing each stratum: against the NumPy loop, to 1e-10 (a skipped or repeated rating,
    or a race between the threads, moves the factors far more)."""
    blocks, schedule, arrays = _strata_inputs()
    expected = [a.copy() for a in arrays]
    args = (blocks.users, blocks.items, blocks.ratings)
    P, Q, bu, bi, user_g, item_g = arrays
    if epoch == "funk_epoch":
        factor = 1
        cache = np.einsum("ij,ij->i", P[blocks.users, :factor], Q[blocks.items, :factor])
        want = _reference_in_schedule_order(blocks, schedule, expected, True, factor, cache)
        loss = kernel.funk_epoch(
            *args, cache, blocks.block_ptr, schedule, factor, P, Q, bu, bi, user_g, item_g,
            3.0, 0.05, 0.02, True, True, True, 2, np.zeros(4),
        )  # fmt: skip
    elif epoch == "adagrad_epoch":
        want = _reference_in_schedule_order(blocks, schedule, expected, True)
        loss = kernel.adagrad_epoch(
            *args, blocks.block_ptr, schedule, P, Q, bu, bi, user_g, item_g, 3.0, 0.05, 0.02,
            True, 2, np.zeros(4),
        )  # fmt: skip
    else:
        want = _reference_in_schedule_order(blocks, schedule, expected, False)
        loss = kernel.sgd_epoch(
            *args, blocks.block_ptr, schedule, P, Q, bu, bi, 3.0, 0.05, 0.02, True, 2,
            np.zeros(4),
        )  # fmt: skip
    assert loss == pytest.approx(want, rel=1e-10)
    for got, ref in zip(arrays, expected, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@needs_openmp
@each_kernel
@pytest.mark.parametrize("per_row", [True, False])
def test_funk_epoch_identical_for_any_thread_count(kernel, per_row):
    results = []
    for n_threads in (1, 2, 3):
        blocks, schedule, arrays = _strata_inputs(seed=1)
        P, Q = arrays[0], arrays[1]
        cache = np.einsum("ij,ij->i", P[blocks.users, :2], Q[blocks.items, :2])
        loss = kernel.funk_epoch(
            blocks.users, blocks.items, blocks.ratings, cache, blocks.block_ptr, schedule, 2,
            *arrays, 3.0, 0.05, 0.02, True, True, per_row, n_threads, np.zeros(4),
        )  # fmt: skip
        results.append((loss, arrays))
    for loss, arrays in results[1:]:
        assert loss == results[0][0]
        for got, want in zip(arrays, results[0][1], strict=True):
            np.testing.assert_array_equal(got, want)


@needs_openmp
@pytest.mark.parametrize("learning_rate", ["adagrad", "constant"])
def test_funk_fit_identical_for_n_jobs_1_and_2(learning_rate):
    _, X = planted_ratings(2000, 1000, density=0.1)  # 4x4 blocks, 50k ratings per stratum
    params = dict(n_components=3, max_iter=2, algorithm="funk", learning_rate=learning_rate)
    models = [FunkSVD(**params, eta0=0.01, random_state=0, n_jobs=n).fit(X) for n in (1, 2)]
    for name in ("item_factors_", "user_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))
    assert models[0].loss_curve_ == models[1].loss_curve_


@each_kernel
def test_fold_in_counts_an_answer_that_overflows_as_a_failure(kernel):
    """The arithmetic stays finite in double, but the answer does not fit float32."""
    X = check_ratings(sp.csr_array(np.array([[3e38]], dtype=np.float32)), dtype=np.float32)
    Q = np.array([[1e-20]], dtype=np.float32)  # x = 3e38 / 1e-20, beyond float32
    P, bu = np.empty((1, 1), np.float32), np.empty(1, np.float32)
    start = np.empty((0, 1), np.float32), np.empty(0, np.float32)
    _, failures, _ = kernel.fold_in(
        *csr_arrays(X), Q, np.zeros(1, np.float32), 0.0, 0.0, 0.0, False, 10, 1e-6, 1,
        *start, P, bu,
    )  # fmt: skip
    assert failures == 1


@each_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_permute_rows_in_place_matches_fancy_indexing(kernel, dtype):
    rng = np.random.default_rng(0)
    for source in [rng.permutation(50), np.arange(50), np.roll(np.arange(50), 1)]:
        source = source.astype(np.int32)
        F, b = rng.normal(size=(50, 3)).astype(dtype), rng.normal(size=50).astype(dtype)
        want_F, want_b = F[source], b[source]
        kernel.permute_rows(F, b, source)
        np.testing.assert_array_equal(F, want_F)
        np.testing.assert_array_equal(b, want_b)
    # not a permutation: a clear error, never an endless cycle
    for source in [np.zeros(50), np.arange(1, 51)]:
        with pytest.raises(ValueError, match="permutation|not a row"):
            kernel.permute_rows(F, b, source.astype(np.int32))


def test_solve_users_in_place_equals_the_copying_solve():
    """Reordered in place from training's order, then solved where they stand: the same
    bits as the solve into new arrays, in the very arrays given."""
    from funksgd import _inference

    X, Q, bi = solve_inputs(np.float32)
    rng = np.random.default_rng(1)
    positions = rng.permutation(X.shape[0]).astype(np.int32)  # row u of X at positions[u]
    W = rng.normal(0, 0.1, (X.shape[0], Q.shape[1])).astype(np.float32)
    b = rng.normal(0, 0.1, X.shape[0]).astype(np.float32)
    items = Q, bi, 3.0, 0.05, True
    want = _inference.solve_users(X, *items, 1, 0.5, (W[positions], b[positions]), 1e-3)
    got = _inference.solve_users(X, *items, 1, 0.5, (W, b, positions), 1e-3, in_place=True)
    assert got[0] is W and got[1] is b
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
