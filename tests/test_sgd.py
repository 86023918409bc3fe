"""The compiled kernels against slow NumPy references, and their thread-count invariance."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import planted_ratings

from funksgd import FunkSVD, _kernels
from funksgd._blocks import BlockedRatings
from funksgd._validation import check_ratings

# both builds of the loops, where this machine has them (see funksgd/_kernels.py)
KERNELS = [_kernels.generic]
if _kernels.avx2 is not None and _kernels.generic.cpu_has_avx2_fma():
    KERNELS.append(_kernels.avx2)
each_kernel = pytest.mark.parametrize("kernel", KERNELS, ids=lambda kernel: kernel.__name__)
needs_openmp = pytest.mark.skipif(
    not _kernels.sgd.openmp_enabled(), reason="built without OpenMP: one thread only"
)
TOLERANCE = {np.float32: dict(rtol=1e-4, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-13)}


def _problem(dtype, n_users=40, n_items=30, k=6, n_blocks=3, density=0.4, seed=0):
    """Blocked ratings and random factors of a small problem."""
    _, X = planted_ratings(n_users, n_items, rank=3, density=density, seed=seed)
    X = check_ratings(X, dtype=dtype)
    rng = np.random.RandomState(seed)
    blocks = BlockedRatings(X, n_blocks, rng)
    user_factors = rng.normal(0, 0.3, (n_users, k)).astype(dtype)
    item_factors = rng.normal(0, 0.3, (n_items, k)).astype(dtype)
    user_bias = rng.normal(0, 0.1, n_users).astype(dtype)
    item_bias = rng.normal(0, 0.1, n_items).astype(dtype)
    return X, blocks, rng, [user_factors, item_factors, user_bias, item_bias]


def _epoch(kernel, blocks, schedule, factors, mean, eta0, alpha, biased, n_threads):
    """The compiled epoch; returns its summed squared error."""
    block_loss = np.zeros(blocks.n_blocks**2)
    return kernel.sgd_epoch(
        blocks.users, blocks.items, blocks.ratings, blocks.block_ptr, schedule, *factors,
        mean, eta0, alpha, biased, n_threads, block_loss,
    )  # fmt: skip


def _reference_epoch(blocks, schedule, factors, mean, eta0, alpha, biased):
    """One epoch rating by rating, in the kernel's order, with NumPy scalars of its dtype."""
    user_factors, item_factors, user_bias, item_bias = factors
    dtype = user_factors.dtype.type
    eta0, mean, shrink = dtype(eta0), dtype(mean), dtype(1) - dtype(eta0) * dtype(alpha)
    squared_error = 0.0
    for cell in schedule.ravel():
        for n in range(blocks.block_ptr[cell], blocks.block_ptr[cell + 1]):
            u, i = blocks.users[n], blocks.items[n]
            p, q = user_factors[u].copy(), item_factors[i].copy()
            err = blocks.ratings[n] - p @ q
            if biased:
                err -= mean + user_bias[u] + item_bias[i]
            squared_error += float(err) ** 2
            e = eta0 * err
            if biased:
                user_bias[u] = shrink * user_bias[u] + e
                item_bias[i] = shrink * item_bias[i] + e
            user_factors[u] = shrink * p + e * q
            item_factors[i] = shrink * q + e * p
    return squared_error


@each_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biased", [True, False])
def test_sgd_epoch_matches_numpy_reference(kernel, dtype, biased):
    X, blocks, rng, factors = _problem(dtype)
    expected = [f.copy() for f in factors]
    mean = float(X.data.mean())
    for _ in range(2):
        schedule = blocks.schedule(rng)
        loss = _epoch(kernel, blocks, schedule, factors, mean, 0.05, 0.1, biased, 1)
        expected_loss = _reference_epoch(blocks, schedule, expected, mean, 0.05, 0.1, biased)
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-5 if dtype == np.float32 else 1e-12)
    for got, want in zip(factors, expected, strict=True):
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])
    # the updates did something, and the biases only move when modelled
    assert not np.allclose(factors[1], _problem(dtype)[3][1])
    assert np.array_equal(factors[3], _problem(dtype)[3][3]) != biased


@needs_openmp
@each_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_epoch_identical_for_any_thread_count(kernel, dtype):
    results = []
    for n_threads in (1, 2, 3):
        # 100k ratings per stratum: enough for the kernel to use every thread asked for
        X, blocks, rng, factors = _problem(dtype, 2000, 1000, n_blocks=2, density=0.1)
        losses = [
            _epoch(kernel, blocks, blocks.schedule(rng), factors, 3.0, 0.02, 0.05, True, n_threads)
            for _ in range(3)
        ]
        results.append((losses, factors))
    for losses, factors in results[1:]:
        assert losses == results[0][0]
        for got, want in zip(factors, results[0][1], strict=True):
            np.testing.assert_array_equal(got, want)


@needs_openmp
def test_fit_identical_for_n_jobs_1_and_2():
    _, X = planted_ratings(2000, 1000, density=0.1)  # 4x4 blocks, 50k ratings per stratum
    models = [
        FunkSVD(n_components=8, max_iter=3, random_state=0, n_jobs=n_jobs).fit(X)
        for n_jobs in (1, 2)
    ]
    for name in ("item_factors_", "user_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))
    assert models[0].loss_curve_ == models[1].loss_curve_


def _reference_fold_in(X, item_factors, item_bias, mean, alpha, biased):
    """Ridge regression per row, in float64: min |A x - b|^2 + alpha * n_ratings * |x|^2."""
    k = item_factors.shape[1]
    rows = np.zeros((X.shape[0], k + biased))
    for row in range(X.shape[0]):
        cols = X.indices[X.indptr[row] : X.indptr[row + 1]]
        if len(cols) == 0:
            continue
        A = item_factors[cols].astype(np.float64)
        b = X.data[X.indptr[row] : X.indptr[row + 1]].astype(np.float64)
        if biased:
            A = np.hstack([A, np.ones((len(cols), 1))])
            b = b - mean - item_bias[cols]
        penalty = alpha * len(cols) * np.eye(A.shape[1])
        rows[row] = np.linalg.solve(A.T @ A + penalty, A.T @ b)
    return rows[:, :k], rows[:, k] if biased else np.zeros(X.shape[0])


@each_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biased", [True, False])
def test_fold_in_matches_ridge_reference(kernel, dtype, biased):
    # rows with fewer ratings than factors take the dual solve, the others the primal one
    rng = np.random.default_rng(0)
    n_rows, n_items, k = 12, 40, 10
    counts = [0, 1, 2, 5, 9, 10, 11, 12, 20, 39, 40, 3]
    rows = np.repeat(np.arange(n_rows), counts)
    cols = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    values = rng.integers(1, 6, len(rows)).astype(dtype)
    X = check_ratings(sp.csr_array((values, (rows, cols)), shape=(n_rows, n_items)), dtype=dtype)
    item_factors = rng.normal(0, 0.5, (n_items, k)).astype(dtype)
    item_bias = rng.normal(0, 0.2, n_items).astype(dtype)
    expected = _reference_fold_in(X, item_factors, item_bias, 3.0, 0.05, biased)
    for n_threads in (1, 2):
        user_factors = np.full((n_rows, k), np.nan, dtype=dtype)
        user_bias = np.full(n_rows, np.nan, dtype=dtype)
        failures = kernel.fold_in(
            X.indptr, X.indices, X.data, item_factors, item_bias, 3.0, 0.05, biased,
            max(counts), n_threads, user_factors, user_bias,
        )  # fmt: skip
        assert failures == 0
        tolerance = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9)
        np.testing.assert_allclose(user_factors, expected[0], **tolerance)
        np.testing.assert_allclose(user_bias, expected[1], **tolerance)
