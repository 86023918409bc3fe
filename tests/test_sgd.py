"""The compiled kernels against slow, obviously correct NumPy references."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import _sgd
from funksgd._blocks import BlockedRatings
from funksgd._validation import csr_arrays

from .conftest import planted_ratings


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
            P[u], Q[i] = P[u] + e * Q[i] - eta0 * alpha * P[u], Q[i] + e * P[u] - eta0 * alpha * Q[i]
    return loss


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_blocks", [1, 3])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_sgd_epoch_matches_reference(biased, n_blocks, dtype, rtol):
    _, X = planted_ratings(n_users=40, n_items=30, density=0.3)
    X = X.astype(dtype)
    rng = np.random.RandomState(0)
    blocks = BlockedRatings(X, n_blocks, rng)
    schedule = blocks.schedule(rng)
    P = rng.normal(0, 0.1, (40, 4)).astype(dtype)
    Q = rng.normal(0, 0.1, (30, 4)).astype(dtype)
    bu, bi = np.zeros(40, dtype), np.zeros(30, dtype)
    mu = float(X.data.mean()) if biased else 0.0
    expected = [a.astype(np.float64) for a in (P, Q, bu, bi)]
    expected_loss = reference_epoch(blocks, schedule, *expected, mu, 0.05, 0.1, biased)
    loss = _sgd.sgd_epoch(
        blocks.users, blocks.items, blocks.ratings, blocks.block_ptr, schedule,
        P, Q, bu, bi, mu, 0.05, 0.1, biased, 1, np.zeros(n_blocks**2),
    )  # fmt: skip
    for got, want in zip((P, Q, bu, bi), expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    assert loss == pytest.approx(expected_loss, rel=rtol)


def test_blocks_hold_every_rating_once():
    _, X = planted_ratings(n_users=50, n_items=40, density=0.4)
    blocks = BlockedRatings(X, 4, np.random.RandomState(1))
    got = sp.csr_array((blocks.ratings, (blocks.users, blocks.items)), shape=X.shape)
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


def reference_fold_in(X, Q, bi, mu, alpha, biased):
    """Ridge solution per row by numpy.linalg.solve."""
    k = Q.shape[1]
    P, bu = np.zeros((X.shape[0], k)), np.zeros(X.shape[0])
    for row in range(X.shape[0]):
        cols = X.indices[X.indptr[row] : X.indptr[row + 1]]
        if len(cols) == 0:
            continue
        y = X.data[X.indptr[row] : X.indptr[row + 1]] - (mu + bi[cols] if biased else 0)
        A = np.hstack([Q[cols], np.ones((len(cols), 1))]) if biased else Q[cols]
        x = np.linalg.solve(A.T @ A + alpha * len(cols) * np.eye(A.shape[1]), A.T @ y)
        P[row] = x[:k]
        bu[row] = x[k] if biased else 0
    return P, bu


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fold_in_matches_reference(biased, n_threads):
    _, X = planted_ratings(n_users=30, n_items=20, density=0.3)
    X = sp.vstack([X, sp.csr_array((1, 20))]).tocsr()  # a row without ratings
    rng = np.random.RandomState(0)
    Q, bi = rng.normal(0, 0.5, (20, 6)), rng.normal(0, 0.3, 20)
    P, bu = np.full((31, 6), np.nan), np.full(31, np.nan)
    failures = _sgd.fold_in(*csr_arrays(X), Q, bi, 3.0, 0.05, biased, 20, n_threads, P, bu)
    assert failures == 0
    want_P, want_bu = reference_fold_in(X, Q, bi, 3.0, 0.05, biased)
    np.testing.assert_allclose(P, want_P, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bu, want_bu, rtol=1e-9, atol=1e-12)


def test_predict_pairs_matches_reference():
    rng = np.random.RandomState(0)
    P, Q = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    bu, bi = rng.normal(size=7), rng.normal(size=5)
    users = rng.randint(0, 7, 50).astype(np.int32)
    items = rng.randint(0, 5, 50).astype(np.int32)
    out = np.empty(50)
    _sgd.predict_pairs(users, items, P, Q, bu, bi, 3.5, True, 2, out)
    want = 3.5 + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    np.testing.assert_allclose(out, want, rtol=1e-12)
