"""DaskFunkSVD: DSGD on a real LocalCluster of two worker processes."""

import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, redirect_stdout

import numpy as np
import pytest
import scipy.sparse as sp

pd = pytest.importorskip("pandas")
pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")

from distributed import Client, LocalCluster  # noqa: E402
from distributed.core import Status  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from funksgd import FunkSVD, train_test_split_ratings  # noqa: E402
from funksgd.dask import (  # noqa: E402
    DaskFunkSVD,
    _cell,
    _dsgd,  # noqa: E402
    _shuffle,
    _users,
    train_cell,
)
from funksgd.dask._executors import WorkerLost  # noqa: E402
from funksgd.datasets import IdMapping, make_ratings  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def frame(X, npartitions=3, ids=None):
    """A Dask DataFrame of the ratings of CSR ``X``, users and items renamed by ``ids``."""
    coo = X.tocoo()
    users, items = coo.row, coo.col
    if ids is not None:
        users, items = ids[0][users], ids[1][items]
    table = pd.DataFrame({"user": users, "item": items, "rating": coo.data})
    return dd.from_pandas(table, npartitions=npartitions, sort=False)


@pytest.fixture(scope="module")
def small():
    return make_ratings(600, 200, 15_000, random_state=0)


SMALL = dict(n_components=6, n_blocks=4, max_iter=4, random_state=0)


def same_model(a, b):
    for name in ["user_factors_", "item_factors_", "user_bias_", "item_bias_", "item_counts_"]:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.global_mean_ == b.global_mean_
    assert a.loss_curve_ == b.loss_curve_
    assert a._beta == b._beta and a.popularity_weight_ == b.popularity_weight_


def mapped(X, mapping, ids=None):
    """The ratings of CSR ``X`` with rows and columns in the order of a fit's ``mapping``."""
    coo = X.tocoo()
    users, items = coo.row, coo.col
    if ids is not None:
        users, items = ids[0][users], ids[1][items]
    rows, cols = mapping.user_index(users), mapping.item_index(items)
    return sp.csr_array((coo.data, (rows, cols)), shape=mapping.shape)


# --------------------------------------------------------------------------- the cell kernel
def reference_cell(users, items, ratings, P, Q, bu, bi, Gu, Gi, mu, rate, alpha, adagrad):
    """Koren's simultaneous update, one rating at a time, in float64 NumPy."""
    P, Q, bu, bi, Gu, Gi = (a.astype(np.float64) for a in (P, Q, bu, bi, Gu, Gi))
    k = P.shape[1]
    sse = 0.0
    for u, i, r in zip(users, items, ratings, strict=True):
        err = r - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        sse += err**2
        eta_u = rate / np.sqrt(Gu[u]) if adagrad else rate
        eta_i = rate / np.sqrt(Gi[i]) if adagrad else rate
        bu[u] += eta_u * (err - alpha * bu[u])
        bi[i] += eta_i * (err - alpha * bi[i])
        grad_p, grad_q = err * Q[i] - alpha * P[u], err * P[u] - alpha * Q[i]
        if adagrad:
            Gu[u] += grad_p @ grad_p / k
            Gi[i] += grad_q @ grad_q / k
        P[u], Q[i] = P[u] + eta_u * grad_p, Q[i] + eta_i * grad_q
    return sse, P, Q, bu, bi, Gu, Gi


@pytest.mark.parametrize("learning_rate", ["adagrad", "constant"])
def test_train_cell_matches_numpy_reference(learning_rate):
    rng = np.random.RandomState(0)
    n_users, n_items, k, n = 7, 5, 4, 30
    pairs = rng.choice(n_users * n_items, n, replace=False)
    pairs.sort()  # grouped by user, as in a cell
    users, items = (pairs // n_items).astype(np.int32), (pairs % n_items).astype(np.int32)
    ratings = rng.uniform(1, 5, n)
    P, Q = rng.normal(0, 0.1, (n_users, k)), rng.normal(0, 0.1, (n_items, k))
    bu, bi = rng.normal(0, 0.1, n_users), rng.normal(0, 0.1, n_items)
    Gu, Gi = rng.uniform(1, 2, n_users), rng.uniform(1, 2, n_items)
    adagrad = learning_rate == "adagrad"
    expected = reference_cell(users, items, ratings, P, Q, bu, bi, Gu, Gi, 3.0, 0.05, 0.02, adagrad)
    got = [a.copy() for a in (P, Q, bu, bi, Gu, Gi)]
    sse = train_cell(users, items, ratings, got[0], got[1], got[2], got[3], got[4], got[5],
                     3.0, 0.05, 0.02, True, learning_rate)  # fmt: skip
    assert sse == pytest.approx(expected[0], rel=1e-10)
    for a, b in zip(got, expected[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_train_cell_empty():
    empty = np.empty(0, dtype=np.int32)
    P = np.ones((2, 3), np.float32)
    zeros = np.zeros(2, np.float32)
    args = (empty, empty, np.empty(0, np.float32), P, P.copy(), zeros, zeros.copy(), None, None)
    assert train_cell(*args, 0.0, 0.1, 0.1, True, "constant") == 0
    np.testing.assert_array_equal(P, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("learning_rate", ["adagrad", "constant"])
@pytest.mark.parametrize("cuts", [(), (20, 20, 45)])
def test_train_task_is_train_cell_on_copies(monkeypatch, dtype, learning_rate, cuts):
    """The task copies the user block a chunk at a time as it trains (and computes the row
    norms AdaGrad starts from): the same cell as train_cell on copies, bit for bit, its
    squared error too, whether the cell comes whole or in segments of users (one empty)."""
    monkeypatch.setattr(_cell, "CHUNK_ROWS", 7)  # many chunks
    rng = np.random.RandomState(1)
    n_users, n_items, k, n = 60, 20, 7, 400
    pairs = np.sort(rng.choice(50 * n_items, n, replace=False))  # users 50-59 rate nothing
    users, items = (pairs // n_items).astype(np.int32), (pairs % n_items).astype(np.int32)
    ratings = rng.uniform(1, 5, n).astype(dtype)
    at = np.searchsorted(users, [0, *cuts, n_users])
    cell = [_shuffle.Cell(users[a:z], items[a:z], ratings[a:z], users[:0], items[:0], ratings[:0])
            for a, z in zip(at[:-1], at[1:], strict=True)]  # fmt: skip

    def state(rows):
        factors = rng.normal(0, 0.3, (rows, k)).astype(dtype)
        return _dsgd.BlockState(factors, rng.normal(0, 0.1, rows).astype(dtype),
                                rng.uniform(1, 2, rows).astype(dtype), 1.5)  # fmt: skip

    user, item = state(n_users), state(n_items)
    kept = [a.copy() for a in (*user[:3], *item[:3])]
    common = (3.0, 0.05, 0.02, True, learning_rate)
    new_user, new_item = _cell.train_task(cell, (user, None), item, *common, False, True)
    u, i = (_dsgd.BlockState(*(a.copy() for a in s[:3]), 0.0) for s in (user, item))
    sse = train_cell(users, items, ratings, u.factors, i.factors, u.bias, i.bias, u.grad_sq,
                     i.grad_sq, *common)  # fmt: skip
    assert new_user.sse == sse + 1.5
    for got, expected in zip([*new_user[:3], *new_item[:3]], [*u[:3], *i[:3]], strict=True):
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(new_user.factors[:50], kept[0][:50])  # it trained...
    for a, b in zip([*user[:3], *item[:3]], kept, strict=True):
        np.testing.assert_array_equal(a, b)  # ...on copies
    (copied, norms), (_, none) = _cell.copy_state(item, True), _cell.copy_state(item)
    assert none is None and copied.factors is not item.factors
    np.testing.assert_array_equal(copied.factors, item.factors)
    np.testing.assert_allclose(norms, np.square(item.factors).sum(axis=1), rtol=1e-5)
    # an overflowed factor (of a user without ratings here) or item bias: NaN, in the last
    # stratum, which checks
    user.factors[55, 3] = np.inf
    assert np.isnan(_cell.train_task(cell, (user, None), item, *common, True, True)[0].sse)
    assert np.isfinite(_cell.train_task(cell, (user, None), item, *common, True, False)[0].sse)
    user.factors[55, 3] = 0
    item.bias[2] = np.nan
    assert np.isnan(_cell.train_task(cell, (user, None), item, *common, True, True)[0].sse)


def test_new_array_reuses_the_memory_of_outputs_nothing_refers_to(monkeypatch):
    """A large array handed out earlier serves again once only the recycler refers to it:
    never while the caller, or a view of it, still does. Small arrays are not followed,
    and ``release_spares`` lets go of the others."""
    monkeypatch.setattr(_cell, "_spares", [])
    shape = (1000, 40)  # 160 kB in float32: recycled
    first = _cell.new_array(shape, np.float32)
    second = _cell.new_array(shape, np.float32)
    assert not np.shares_memory(first, second)
    address = first.ctypes.data
    view = first[10:]
    del first
    third = _cell.new_array(shape, np.float32)  # the view holds the first one's memory
    assert not any(np.shares_memory(third, a) for a in (view, second))
    del view
    assert _cell.new_array(shape, np.float32).ctypes.data == address
    assert _cell.new_array(shape, np.float64).dtype == np.float64  # no other dtype's memory
    assert _cell.new_array((10, 40), np.float32).base is None
    assert len(_cell._spares) == 4  # three of the shape (at most in use at once), one float64
    _cell.release_spares()
    assert _cell._spares == []


def test_new_array_never_hands_one_array_to_two_threads(monkeypatch):
    """Threads of a worker taking and dropping arrays at once never share one, even when
    each lets the others run between finding an array unused and taking it."""
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    def yielding(value):
        count = sys.getrefcount(value) - extra
        time.sleep(0)  # the other threads run now
        return count

    probe, extra = [np.zeros(1)], 0
    extra = yielding(probe[0]) - sys.getrefcount(probe[0])  # this wrapper's references
    monkeypatch.setattr(_cell, "sys", SimpleNamespace(getrefcount=yielding))
    monkeypatch.setattr(_cell, "_spares", [])

    def take(n):
        held = []
        for _ in range(200):
            held.append(_cell.new_array((300, 128), np.float32))
            held[-1].fill(n)
            if len(held) > 2:
                held.pop(0)
            assert all((a == n).all() for a in held), "another thread wrote to my array"
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(take, range(4)))


@pytest.mark.parametrize("biased", [True, False])
def test_statistics_give_the_engines_scale_and_mean(small, biased):
    from types import SimpleNamespace

    from funksgd import _engine
    from funksgd.dask._executors import InProcess
    from funksgd.dask._ingest import ingest

    data = ingest(InProcess(), frame(small), user_col="user", item_col="item",
                  rating_col="rating", dtype=np.dtype(np.float32))  # fmt: skip
    settings = SimpleNamespace(biased=biased, n_components=6, init_std=0.1, eta0=0.05, alpha=0.1)
    expected = _engine.rating_scale(small, settings)
    assert _dsgd.rating_scale(data, settings) == pytest.approx(expected, rel=1e-9)
    assert data.mean == pytest.approx(small.data.mean(dtype=np.float64), rel=1e-12)
    assert (data.low, data.high, data.n_ratings) == (1.0, 5.0, small.nnz)
    np.testing.assert_array_equal(data.user_counts, np.diff(small.indptr))


@pytest.mark.parametrize("n_blocks", [2, 3])
def test_cells_come_in_segments_of_consecutive_users(small, n_blocks, monkeypatch):
    """Each cell is SEGMENTS segments over consecutive ranges of its block's users, the
    same ranges in every cell of the block, balanced by the users' ratings; joined, they
    are the cell sorted by user then item, and the cells hold every rating once. With the
    default piece size these small partitions would make one segment a cell."""
    from funksgd.dask._executors import InProcess
    from funksgd.dask._ingest import ingest

    monkeypatch.setattr(_shuffle, "SEGMENT_PIECE_RATINGS", 1)
    executor = InProcess()
    data = ingest(executor, frame(small, npartitions=4), user_col="user", item_col="item",
                  rating_col="rating", dtype=np.dtype(np.float32))  # fmt: skip
    grid = _dsgd.draw_grid(np.random.RandomState(0), data.user_counts, data.item_counts,
                           n_blocks)  # fmt: skip
    cells, _ = _shuffle.make_cells(executor, data, grid, np.random.RandomState(1), 0.0, None)
    segment = _shuffle.user_segments(grid, np.diff(small.indptr), _shuffle.SEGMENTS)
    found = []
    for b, row in enumerate(cells):
        members = grid.user_members[b]
        ratings = np.bincount(segment[members], np.diff(small.indptr)[members])
        assert ratings.max() < 1.5 * ratings.mean()  # balanced
        for j, cell in enumerate(row):
            assert len(cell) == _shuffle.SEGMENTS
            for s, part in enumerate(cell):
                part = part.value
                np.testing.assert_array_equal(segment[members[part.users]], s)
                found.append((members[part.users], grid.item_members[j][part.items],
                              part.ratings))  # fmt: skip
            users, items = (_shuffle.joined([s.value for s in cell], f) for f in ("users", "items"))
            assert np.all(np.diff(users.astype(np.int64) * small.shape[1] + items) > 0)
    users, items, ratings = (np.concatenate([f[n] for f in found]) for n in range(3))
    got = sp.csr_array((ratings, (users, items)), shape=small.shape)
    assert got.nnz == small.nnz
    np.testing.assert_array_equal(got.toarray(), small.toarray())


def test_segments_per_cell_keep_pieces_large():
    piece = _shuffle.SEGMENT_PIECE_RATINGS
    assert _shuffle.segments_per_cell(1_600_000, 8, 2) == 1  # the tests' data
    assert _shuffle.segments_per_cell(10_000_000, 8, 2) == _shuffle.SEGMENTS
    assert _shuffle.segments_per_cell(10_000_000, 32, 2) == 2
    assert _shuffle.segments_per_cell(3 * 4 * piece, 1, 2) == 3
    assert _shuffle.segments_per_cell(0, 1, 1) == 1


def test_partitions_are_cut_in_rounds_of_each_workers_share(client):
    """Round k holds the k-th quarter of the partitions each worker holds, in order."""
    from distributed import wait

    from funksgd.dask._executors import OnCluster

    workers = sorted(client.scheduler_info()["workers"])
    held = [0, 0, 1, 0, 1, 0, 0, 1, 0]  # 6 partitions on the first worker, 3 on the other
    handles = [client.submit(np.arange, t, workers=[workers[w]], pure=False)
               for t, w in enumerate(held)]  # fmt: skip
    wait(handles)
    executor = OnCluster(client, 30)
    rounds = _shuffle.rounds(executor.holders(handles), 4)
    assert sorted(t for r in rounds for t in r) == list(range(len(held)))
    assert len(rounds) == 4
    for w, n in ((0, 6), (1, 3)):
        mine = [[t for t in r if held[t] == w] for r in rounds]
        assert [t for r in mine for t in r] == [t for t in range(len(held)) if held[t] == w]
        assert max(map(len, mine)) == -(-n // 4)


def test_partitions_are_ingested_and_cut_where_they_live(client):
    """The tasks that read a partition (and a value sent to every worker) are placed where
    the partition is, even when one worker holds them all: the scheduler, counting every
    worker as holding their data, sent partitions to the idle one otherwise. (Its work
    stealing, off here, may still move a task to an idle worker, as it moves any task.)"""
    from distributed import get_task_stream, wait

    workers = sorted(client.scheduler_info()["workers"])
    X = make_ratings(4000, 300, 120_000, random_state=3)
    df = client.persist(frame(X, npartitions=8), workers=[workers[0]])
    wait(df)
    with get_task_stream(client) as stream, _no_stealing(client):
        DaskFunkSVD(n_components=4, max_iter=1, random_state=0, client=client).fit(df)
    ran = {}
    for task in stream.data:
        name = str(task["key"]).split("-")[0]
        if name in ("_frame_stats", "split_by_cell"):
            ran.setdefault(name, set()).add(task["worker"])
    assert ran == {"_frame_stats": {workers[0]}, "split_by_cell": {workers[0]}}


# --------------------------------------------------------------------------- determinism
def test_bit_identical_for_any_number_of_workers_and_in_process(client, small):
    df = frame(small)
    in_process = DaskFunkSVD(client="sync", **SMALL).fit(df)
    two = DaskFunkSVD(client=client, **SMALL).fit(df)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                     dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as one_worker,
    ):  # fmt: skip
        one = DaskFunkSVD(client=one_worker, **SMALL).fit(df)
    same_model(two, in_process)
    same_model(one, in_process)
    assert two.n_blocks_ == 4 and two.n_iter_ == 4
    # a different seed gives different factors: the comparison above can fail
    other = DaskFunkSVD(client="sync", **{**SMALL, "random_state": 1}).fit(df)
    assert not np.array_equal(other.item_factors_, in_process.item_factors_)


def _spare_min_bytes(value):
    """Set ``_cell.SPARE_MIN_BYTES`` where this runs; returns the arrays kept for reuse."""
    from funksgd.dask import _cell

    _cell.SPARE_MIN_BYTES = value
    return len(_cell._spares)


@pytest.mark.filterwarnings("ignore:Early stopping did not trigger")
@pytest.mark.parametrize(
    "params",
    [{}, {"learning_rate": "constant"}, {"early_stopping": True, "eta0": 0.5, "max_iter": 8},
     {"algorithm": "funk"}],
)  # fmt: skip
def test_recycled_memory_gives_the_factors_of_fresh_memory(client, small, monkeypatch, params):
    """Every array the tasks return in recycled memory, however small, in process and on
    the cluster: the factors of fresh memory, bit for bit. Early stopping's best epoch,
    kept while later epochs train, included. No worker keeps an array after the fit."""
    df, default = frame(small), _cell.SPARE_MIN_BYTES
    monkeypatch.setattr(_cell, "SPARE_MIN_BYTES", np.inf)
    fresh = DaskFunkSVD(client="sync", **{**SMALL, **params}).fit(df)
    monkeypatch.setattr(_cell, "SPARE_MIN_BYTES", 0)
    recycled = DaskFunkSVD(client="sync", **{**SMALL, **params}).fit(df)
    client.run(_spare_min_bytes, 0)
    try:
        on_cluster = DaskFunkSVD(client=client, **{**SMALL, **params}).fit(df)
        assert set(client.run(_spare_min_bytes, 0).values()) == {0}
    finally:
        client.run(_spare_min_bytes, default)
    same_model(recycled, fresh)
    same_model(on_cluster, fresh)
    if "early_stopping" in params:  # the kept epoch was not the last one trained
        assert fresh.n_iter_ > np.argmax(fresh.validation_scores_) + 1


@pytest.mark.filterwarnings("ignore:Early stopping did not trigger")
@pytest.mark.parametrize("params", [{}, {"early_stopping": True}, {"algorithm": "funk"}])
def test_same_factors_whatever_the_segments_a_cell_has(monkeypatch, params):
    """Four segments a cell train as one (some empty: a user with most ratings), held-out
    and tuning ratings included; Funk's squared errors then sum in another order."""
    rng = np.random.RandomState(0)
    users = np.r_[np.zeros(200, int), np.repeat(np.arange(1, 61), 3)]
    items = np.r_[np.arange(200), [i for _ in range(60) for i in rng.choice(200, 3, False)]]
    X = sp.csr_array((rng.randint(1, 6, len(users)) * 1.0, (users, items)), shape=(61, 200))
    df = frame(X, npartitions=4)
    params = {**SMALL, "n_blocks": 2, **params}
    one = DaskFunkSVD(client="sync", **params).fit(df)
    monkeypatch.setattr(_shuffle, "SEGMENT_PIECE_RATINGS", 1)
    four = DaskFunkSVD(client="sync", **params).fit(df)
    if params.get("algorithm") == "funk":
        np.testing.assert_allclose(four.loss_curve_, one.loss_curve_, rtol=1e-12)
        four.loss_curve_ = one.loss_curve_
    same_model(four, one)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_global_schedules_match_in_process(client, small, learning_rate):
    # "invscaling" submits the next epoch ahead of the error; "adaptive" waits for it
    params = dict(SMALL, learning_rate=learning_rate, eta0=0.02, max_iter=6, n_iter_no_change=1)
    model = DaskFunkSVD(client=client, **params).fit(frame(small))
    same_model(model, DaskFunkSVD(client="sync", **params).fit(frame(small)))
    assert model.t_ == model.n_iter_ == len(model.loss_curve_)


def test_same_factors_for_any_partitioning_and_sparse_array_input(client, small):
    reference = DaskFunkSVD(client="sync", **SMALL).fit(frame(small, npartitions=1))
    # two partitions with an empty one between them: empty partitions are harmless
    table = frame(small, npartitions=2).compute()
    parts = [table.iloc[:5000], table.iloc[:0], table.iloc[5000:]]
    with_empty = dd.concat([dd.from_pandas(p, npartitions=1) for p in parts])
    assert with_empty.npartitions == 3
    same_model(DaskFunkSVD(client=client, **SMALL).fit(with_empty), reference)
    array = da.from_array(small, chunks=(250, 120), asarray=False)
    from_array = DaskFunkSVD(client=client, **SMALL).fit(array)
    same_model(from_array, reference)
    assert from_array.mapping_.shape == small.shape
    dense = np.full(small.shape, np.nan)  # NumPy chunks: NaN marks a missing rating
    coo = small.tocoo()
    dense[coo.row, coo.col] = coo.data
    same_model(DaskFunkSVD(client=client, **SMALL).fit(da.from_array(dense, chunks=150)), reference)


# --------------------------------------------------------------------------- accuracy
def test_heldout_rmse_within_half_percent_of_funksvd_defaults(client):
    # a planted rank-10 model with noise 0.5 (ratings 1-5): held-out RMSE near 0.6
    X = make_ratings(3000, 800, 120_000, random_state=1)
    train, test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    test = test.tocoo()
    local = FunkSVD(random_state=0).fit(train)
    dask_model = DaskFunkSVD(random_state=0, client=client).fit(frame(train))
    model, mapping = dask_model.to_local()
    users, items = mapping.user_index(test.row), mapping.item_index(test.col)

    def rmse(m, u, i):
        return float(np.sqrt(np.mean((m.predict_ratings(u, i) - test.data) ** 2)))

    local_rmse, dask_rmse = rmse(local, test.row, test.col), rmse(model, users, items)
    assert dask_rmse <= 1.005 * local_rmse, (dask_rmse, local_rmse)
    assert dask_rmse < 0.9 * np.std(test.data)  # and it learned something


@pytest.mark.slow
def test_movielens_heldout_rmse_within_half_percent_of_funksvd(client, ml100k_u1):
    X, (users, items, ratings) = ml100k_u1
    local = FunkSVD(random_state=0).fit(X)
    model, mapping = DaskFunkSVD(random_state=0, client=client).fit(frame(X)).to_local()
    known = np.isin(items, mapping.item_ids)  # 0.16% of u1.test rate items u1.base lacks
    assert known.mean() > 0.99
    users, items, ratings = users[known], items[known], ratings[known]
    pred = model.predict_ratings(mapping.user_index(users), mapping.item_index(items))
    dask_rmse = np.sqrt(np.mean((pred - ratings) ** 2))
    local_rmse = np.sqrt(np.mean((local.predict_ratings(users, items) - ratings) ** 2))
    assert dask_rmse <= 1.005 * local_rmse, (dask_rmse, local_rmse)


# --------------------------------------------------------------------------- the local model
def test_to_local_gives_a_working_funksvd_with_ids(client):
    X = make_ratings(300, 80, 6000, random_state=2)
    user_ids = np.array([f"u{j}" for j in range(300)], dtype=object)
    item_ids = np.arange(80) * 7 + 1000
    df = frame(X, ids=(user_ids, item_ids))
    dask_model = DaskFunkSVD(n_components=5, n_blocks=3, max_iter=6, random_state=0,
                             client=client).fit(df)  # fmt: skip
    model, mapping = dask_model.to_local()
    assert isinstance(model, FunkSVD) and model.n_components == 5
    assert model.rating_range_ == dask_model.rating_range_ == (1.0, 5.0)  # clip=True
    assert sorted(mapping.user_ids.tolist()) == sorted(user_ids.tolist())
    np.testing.assert_array_equal(mapping.item_ids, item_ids)  # sorted ints
    # row r of the model is user mapping.user_ids[r]: rebuild X in the mapping's order
    rows = mapping.user_index(user_ids[X.tocoo().row])
    cols = mapping.item_index(item_ids[X.tocoo().col])
    X_mapped = sp.csr_array((X.tocoo().data, (rows, cols)), shape=X.shape)
    # the users were solved exactly on the workers: FunkSVD's own fold-in agrees
    np.testing.assert_allclose(model.transform(X_mapped), model.user_factors_, atol=2e-4)
    u, i = mapping.user_index(["u3"])[0], mapping.item_index([item_ids[5]])[0]
    by_hand = (model.global_mean_ + model.user_bias_[u] + model.item_bias_[i]
               + model.user_factors_[u] @ model.item_factors_[i])  # fmt: skip
    assert model.predict_ratings([u], [i])[0] == pytest.approx(by_hand, rel=1e-5)
    assert model.recommend([u], X_mapped[[u]], n=3)[0].shape == (1, 3)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_ratings([u], [i]), model.predict_ratings([u], [i]))
    # the Dask model itself pickles (without its client) and clones (sharing it)
    unpickled = pickle.loads(pickle.dumps(dask_model))
    assert unpickled.client is None
    np.testing.assert_array_equal(unpickled.item_factors_, dask_model.item_factors_)
    copy = clone(dask_model)
    assert copy.client is client and copy.get_params()["n_blocks"] == 3
    assert not hasattr(copy, "item_factors_")


@pytest.fixture(scope="module")
def many_users():
    # more users than the prior samples (700 in the tests that use it)
    return make_ratings(5000, 250, 50_000, random_state=6)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_tunes_prior_and_popularity_weight_on_held_out_ratings(client, many_users, monkeypatch,
                                                              early_stopping):  # fmt: skip
    """As FunkSVD.fit: ratings of a sample of users are held out of the epochs (one each,
    or with early stopping their validation ratings), and beta and the popularity weight
    are chosen on them with FunkSVD's functions."""
    from funksgd import _inference, _tuning

    monkeypatch.setattr(_tuning, "TUNING_USERS", 700)
    seen = {}
    learn, check = _tuning.learn, _dsgd._check_reports

    def spy_learn(tuning, *args):
        seen["tuning"] = tuning
        return learn(tuning, *args)

    def spy_check(reports, *args):
        seen["reports"] = reports
        return check(reports, *args)

    monkeypatch.setattr(_tuning, "learn", spy_learn)
    monkeypatch.setattr(_dsgd, "_check_reports", spy_check)
    params = dict(n_components=5, n_blocks=3, max_iter=5, random_state=0,
                  early_stopping=early_stopping)  # fmt: skip
    model = DaskFunkSVD(client=client, **params).fit(frame(many_users))
    X = mapped(many_users, model.mapping_)
    tuning = seen["tuning"]
    n_train = sum(sum(report["n_train"]) for report in seen["reports"])
    assert len(tuning.rows) == 700 and np.all(np.diff(tuning.rows) > 0)
    # a sampled user's training and held-out ratings are all its ratings
    np.testing.assert_array_equal((tuning.known + tuning.held).toarray(), X[tuning.rows].toarray())
    if early_stopping:
        # the validation share of each user block, rounded: nothing more held out
        assert abs(n_train - (X.nnz - model.validation_fraction * X.nnz)) <= 3
        # sampled among the users with validation ratings, as FunkSVD samples them
        assert np.all(np.diff(tuning.held.indptr) > 0)
    else:
        assert list(np.diff(tuning.held.indptr)) == [1] * 700
        assert n_train == X.nnz - 700
    side = (model.item_factors_, model.item_bias_, model.global_mean_, model.alpha, True)
    beta, W, _ = _inference.choose_prior(tuning.known, tuning.held, *side, 1)
    assert model._beta == beta > 0
    weight = _tuning.learn_popularity(tuning, W, side, model.item_counts_, 1)
    assert model.popularity_weight_ == weight > 0
    np.testing.assert_array_equal(model.item_counts_, np.bincount(X.indices, minlength=X.shape[1]))
    if early_stopping:
        return
    # the same on one process, and a fixed weight is not learnt
    same_model(model, DaskFunkSVD(client="sync", **params).fit(frame(many_users)))
    fixed = DaskFunkSVD(client="sync", popularity_weight=0.5, **params).fit(frame(many_users))
    assert fixed.popularity_weight_ == 0.5 and fixed._beta == model._beta


def test_to_local_ranks_and_folds_in_with_the_learnt_prior_and_weight(client, many_users):
    import dataclasses

    model = DaskFunkSVD(n_components=5, n_blocks=3, max_iter=5, random_state=0,
                        client=client).fit(frame(many_users))  # fmt: skip
    local, mapping = model.to_local()
    X = mapped(many_users, mapping)
    assert local._fitted.beta == model._beta > 0
    assert local.popularity_weight_ == model.popularity_weight_ > 0
    np.testing.assert_array_equal(local.item_counts_, np.bincount(X.indices, minlength=X.shape[1]))
    # recommend ranks by predicted rating + weight * log(1 + n_i), the rated items left out
    users = np.arange(0, X.shape[0], 97)
    items, scores = local.recommend(users, X[users], n=5)
    P, Q = local.user_factors_.astype(np.float64), local.item_factors_.astype(np.float64)
    predicted = (P[users] @ Q.T + local.item_bias_ + local.user_bias_[users, None]
                 + local.global_mean_)  # fmt: skip
    ranking = predicted + local.popularity_weight_ * np.log1p(local.item_counts_)
    rated = X[users].toarray() != 0
    ranking[rated] = -np.inf
    expected = np.argsort(-ranking, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(predicted, expected, 1), rtol=1e-5)
    predicted[rated] = -np.inf  # the weight changes the lists
    assert not np.array_equal(items, np.argsort(-predicted, axis=1, kind="stable")[:, :5])
    # the fold-in shrinks with the learnt prior, as the workers' solve did
    np.testing.assert_allclose(local.transform(X), local.user_factors_, atol=2e-4)
    without = FunkSVD()
    without._fitted = dataclasses.replace(local._fitted, beta=0.0)
    without.n_features_in_ = local.n_features_in_
    assert np.abs(without.transform(X) - local.user_factors_).max() > 1e-2


def test_early_stopping_verbose_and_warm_start(client, small, capsys):
    df = frame(small)
    params = dict(SMALL, max_iter=30, early_stopping=True, n_iter_no_change=2, tol=1e-3)
    model = DaskFunkSVD(verbose=1, client=client, **params).fit(df)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == model.n_iter_ < 30
    assert all("validation RMSE" in line for line in lines)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    same_model(model, DaskFunkSVD(client="sync", **params).fit(df))

    first = DaskFunkSVD(client=client, warm_start=True, **SMALL).fit(df)
    first_loss = first.loss_curve_
    first.fit(df)
    assert first.t_ == 2 * SMALL["max_iter"]
    assert first.loss_curve_[0] < first_loss[0]  # continued from the fitted factors
    in_process = DaskFunkSVD(client="sync", warm_start=True, **SMALL).fit(df).fit(df)
    same_model(first, in_process)
    other_ids = frame(small[:500])
    with pytest.raises(ValueError, match="warm_start=True continues a model of 600 users"):
        first.fit(other_ids)


def test_funk_one_factor_at_a_time_on_the_cluster(client, small):
    """algorithm="funk": the same factors on 2 workers as in process, FunkSVD's accuracy."""
    train, test = train_test_split_ratings(small, test_size=0.2, random_state=0)
    df = frame(train)
    params = dict(SMALL, algorithm="funk", n_components=4, n_blocks=3, max_iter=6)
    model = DaskFunkSVD(client=client, **params).fit(df)
    same_model(model, DaskFunkSVD(client="sync", **params).fit(df))
    assert model.n_iter_ == len(model.loss_curve_) == model.t_ == 4 * 6  # tol: per factor
    # each factor's epochs lower the training error below the previous factor's
    curve = np.reshape(model.loss_curve_, (4, 6))
    assert np.all(curve[1:, -1] < curve[:-1, -1])
    local, mapping = model.to_local()
    test = test.tocoo()
    funk = FunkSVD(**{k: v for k, v in params.items() if k != "n_blocks"}).fit(train)

    def rmse(m, u, i):
        return float(np.sqrt(np.mean((m.predict_ratings(u, i) - test.data) ** 2)))

    dask_rmse = rmse(local, mapping.user_index(test.row), mapping.item_index(test.col))
    assert dask_rmse <= 1.02 * rmse(funk, test.row, test.col)
    assert dask_rmse < 0.9 * np.std(test.data)
    # early stopping per factor, and warm start, as in process
    stopping = dict(params, max_iter=10, early_stopping=True, n_iter_no_change=2)
    with pytest.warns(ConvergenceWarning, match="of the factors"):
        stopped = DaskFunkSVD(client=client, **stopping).fit(df)
    assert len(stopped.validation_scores_) == stopped.n_iter_ < 4 * 10
    with pytest.warns(ConvergenceWarning, match="of the factors"):
        same_model(stopped, DaskFunkSVD(client="sync", **stopping).fit(df))
    params = dict(params, max_iter=3)
    warm = DaskFunkSVD(client=client, warm_start=True, **params).fit(df)
    first = warm.loss_curve_
    warm.fit(df)
    assert warm.t_ == 2 * 4 * 3 and warm.loss_curve_[0] < first[0]
    same_model(warm, DaskFunkSVD(client="sync", warm_start=True, **params).fit(df).fit(df))


# --------------------------------------------------------------------------- bad input
@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(_dsgd, "_run_epochs", refuse)


def table(**columns):
    base = {"user": [1, 1, 2, 3], "item": ["a", "b", "a", "c"], "rating": [4.0, 3.0, 5.0, 1.0]}
    return dd.from_pandas(pd.DataFrame({**base, **columns}), npartitions=2)


@pytest.mark.parametrize(
    "data, params, error, match",
    [
        (table(), dict(rating_col="stars"), ValueError, "X has no column 'stars'"),
        (table(rating=[4.0, np.nan, 5.0, 1.0]), {}, ValueError, "1 NaN or infinite values"),
        (table(rating=["4", "3", "5", "1"]), {}, TypeError, "must hold numbers"),
        (table(user=[1, None, 2, 3]), {}, ValueError, "missing user or item id"),
        (table(item=["a", "a", "a", "c"]), {}, ValueError, "user 1 rated item 'a' more than"),
        (table()[table()["rating"] > 10], {}, ValueError, "holds no ratings"),
        (table().compute(), {}, TypeError, "must be a dask.dataframe.DataFrame"),
        (table(rating=[4.0, 3.0, 5.0, 1e300]), {}, ValueError, "too large for float32"),
    ],
)
def test_bad_input_raises_before_training(no_training, data, params, error, match):
    with pytest.raises(error, match=match):
        DaskFunkSVD(n_components=2, client="sync", **params).fit(data)


def test_ids_are_looked_up_a_chunk_at_a_time(monkeypatch):
    """A partition's ids mapped to rows and columns, and its ratings cast to the model's
    dtype (12 bytes a rating in all), in chunks of 7, the last one short: the same as at
    once, and an unknown id or a rating too large for the dtype in a later chunk is still
    named."""
    import pandas as pd

    from funksgd.dask import _ingest

    monkeypatch.setattr(_ingest, "CHUNK_RATINGS", 7)
    rng = np.random.default_rng(0)
    part = pd.DataFrame({"u": rng.choice(["x", "y", "z"], 40), "i": rng.integers(0, 9, 40),
                         "r": rng.uniform(1, 5, 40)})  # fmt: skip
    mapping = IdMapping(np.array(["x", "y", "z"]), np.arange(9))
    columns, float32 = ("u", "i", "r"), np.dtype(np.float32)

    def read(part, dtype=float32):
        chunks = list(_ingest.frame_chunks(part, mapping, columns, dtype))
        assert [len(c[2]) for c in chunks] == [7] * 5 + [5]
        return [np.concatenate(f) for f in zip(*chunks, strict=True)]

    rows, cols, ratings = read(part)
    np.testing.assert_array_equal(rows, mapping.user_index(part["u"].to_numpy()))
    np.testing.assert_array_equal(cols, part["i"].to_numpy())
    np.testing.assert_array_equal(ratings, part["r"].to_numpy().astype(np.float32))
    assert rows.dtype == cols.dtype == np.int32 and ratings.dtype == np.float32
    huge = part.copy()
    huge.loc[36, "r"] = -1e39
    with pytest.raises(ValueError, match="too large for float32 .largest magnitude 1e.39"):
        read(huge)
    assert read(huge, np.dtype(np.float64))[2][36] == -1e39
    part.loc[37, "i"] = 99
    with pytest.raises(KeyError, match="unknown item id 99"):
        read(part)
    empty = list(_ingest.frame_chunks(part.iloc[:0], mapping, columns, float32))
    assert [len(f) for f in empty[0]] == [0, 0, 0] and len(empty) == 1  # one, empty


def test_statistics_are_taken_a_chunk_at_a_time(monkeypatch):
    """The statistics of a partition's ratings and its ids' counts, in chunks of 7: the
    same as at once; an array chunk's counts in its rows' and columns' places."""
    import pandas as pd

    from funksgd.dask import _ingest

    monkeypatch.setattr(_ingest, "CHUNK_RATINGS", 7)
    rng = np.random.default_rng(0)
    ratings = rng.uniform(-5, 5, 40)
    ratings[[3, 10, 11, 39]] = [np.nan, np.inf, -np.inf, np.nan]
    rows, cols = rng.integers(0, 6, 40).astype(np.int32), rng.integers(0, 4, 40).astype(np.int32)
    part = pd.DataFrame({"u": rows * 10, "i": np.array(list("abcd"), dtype=object)[cols],
                         "r": ratings})  # fmt: skip
    stats = _ingest._frame_stats(part, ("u", "i", "r"), np.dtype(np.float64))
    good = ratings[np.isfinite(ratings)]
    assert (stats["n"], stats["n_bad"], stats["missing_ids"]) == (40, 4, 0)
    assert stats["total"] == pytest.approx(good.sum(), rel=1e-12)
    assert stats["squares"] == pytest.approx(np.square(good).sum(), rel=1e-12)
    assert (stats["low"], stats["high"]) == (good.min(), good.max())
    assert stats["max_abs"] == np.abs(good).max()
    for (ids, counts), expected in ((stats["users"], rows * 10), (stats["items"], part["i"])):
        distinct, n = np.unique(np.asarray(expected), return_counts=True)
        np.testing.assert_array_equal(ids, distinct)
        np.testing.assert_array_equal(counts, n)
    chunk = sp.csr_array((ratings, (rows, cols)), shape=(6, 4))
    stats = _ingest._chunk_stats(chunk, 2, 1, (9, 7), np.dtype(np.float64))
    assert (stats["n"], stats["n_bad"]) == (chunk.nnz, 4)
    np.testing.assert_array_equal(stats["user_counts"][2:8], np.diff(chunk.indptr))
    np.testing.assert_array_equal(stats["item_counts"][1:5], np.bincount(chunk.indices))
    assert stats["user_counts"].sum() == stats["item_counts"].sum() == chunk.nnz


def test_ids_of_mixed_types_keep_their_order_of_appearance():
    """Ids that do not compare are counted in order of appearance, over chunks and
    partitions merged in turn; ids that do are sorted (integers counted by value when
    they are dense, else by hashing)."""
    from funksgd.dask import _ingest

    a = _ingest._id_counts(np.array([3, "b", 3, 1], dtype=object))
    b = _ingest._id_counts(np.array(["z", 1, "b"], dtype=object))
    ids, counts = _ingest._merge_counts(a, b)
    assert ids.tolist() == [3, "b", 1, "z"] and counts.tolist() == [2, 2, 2, 1]
    ids, counts = _ingest._merge_counts(_ingest._id_counts(np.array([5, 2, 5])),
                                        _ingest._id_counts(np.array([9, 2])))  # fmt: skip
    assert ids.tolist() == [2, 5, 9] and counts.tolist() == [2, 2, 1]
    ids, counts = _ingest._merge_counts(_ingest._id_counts(np.array([10**9, 2, 10**9])),
                                        _ingest._id_counts(np.array([7, 2])))  # fmt: skip
    assert ids.tolist() == [2, 7, 10**9] and counts.tolist() == [2, 1, 2]


def test_bad_input_on_the_cluster(client):
    with pytest.raises(ValueError, match="user 1 rated item 'a' more than once"):
        DaskFunkSVD(n_components=2, client=client).fit(table(item=["a", "a", "a", "c"]))
    nan_chunks = da.from_array(sp.csr_array(np.array([[1.0, np.nan], [2.0, 3.0]])),
                               chunks=1, asarray=False)  # fmt: skip
    with pytest.raises(ValueError, match="1 NaN or infinite ratings"):
        DaskFunkSVD(n_components=2, client=client).fit(nan_chunks)


def test_divergence_raises_and_keeps_the_fitted_model(client, small):
    model = DaskFunkSVD(client=client, **SMALL).fit(frame(small))
    fitted = model.item_factors_
    with pytest.raises(ValueError, match="Training diverged at epoch 1"):
        model.set_params(learning_rate="constant", eta0=50.0).fit(frame(small))
    assert model.item_factors_ is fitted


def test_no_client(client, monkeypatch):
    def no_current_client(*args, **kwargs):
        raise ValueError("No clients found")

    monkeypatch.setattr(Client, "current", no_current_client)  # as if none had been started
    with pytest.raises(ValueError, match="found no Dask client"):
        DaskFunkSVD(n_components=2).fit(table())
    with pytest.raises(ValueError, match="client must be a distributed.Client, 'sync' or None"):
        DaskFunkSVD(n_components=2, client="threads").fit(table())


# --------------------------------------------------------------------------- the cluster
def test_client_never_receives_the_ratings(client, monkeypatch):
    """What the client gathers: statistics, ids, counts, factors and bounded samples of users."""
    from dask.sizeof import sizeof
    from distributed.client import Client as ClientClass

    received = []
    original = ClientClass._gather

    async def counting(self, futures, *args, **kwargs):
        result = await original(self, futures, *args, **kwargs)
        received.append(sizeof(result))
        return result

    monkeypatch.setattr(ClientClass, "_gather", counting)
    # 100k users: the 5,000 users sampled for the prior hold 5% of the ratings
    X = make_ratings(100_000, 300, 1_000_000, random_state=3)
    df = frame(X, npartitions=4)
    ratings_bytes = X.nnz * (8 + 8 + 8)  # the DataFrame's three int64/float64 columns
    model = DaskFunkSVD(n_components=4, n_blocks=4, max_iter=2, random_state=0,
                        client=client).fit(df)  # fmt: skip
    arrays = [model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_,
              model.mapping_.user_ids, model.mapping_.item_ids, model.item_counts_]  # fmt: skip
    # and the users' counts and AdaGrad sums
    model_bytes = sum(a.nbytes for a in arrays) + (8 + 4) * X.shape[0] + 4 * X.shape[1]
    assert received, "the spy saw no gather"
    assert sum(received) - model_bytes < 0.1 * ratings_bytes
    # the first: the ratings' statistics, the distinct ids and their counts (int64)
    counted, *others, solved = received  # the last: the users' factors, biases, AdaGrad sums
    assert counted < (8 + 8) * sum(X.shape) + 10_000
    assert solved < (4 + 1 + 1) * 4 * X.shape[0] + 10_000
    assert max(others) < 0.05 * ratings_bytes  # the largest: the samples' 4% of the ratings
    assert model.popularity_weight_ > 0 and model._beta > 0  # the samples were gathered


def _start_tracing(chunk, shuffle_chunk=_shuffle.CHUNK_RATINGS, dask_worker=None):
    import tracemalloc

    from funksgd.dask import _ingest, _shuffle, _users

    _users.SOLVE_CHUNK_RATINGS = chunk
    _shuffle.CHUNK_RATINGS = _ingest.CHUNK_RATINGS = shuffle_chunk
    # Dask's sampling profiler reads source lines into linecache as it meets new code:
    # MiBs of Dask's own, at any time
    for name in ("profile", "profile-cycle"):
        if name in dask_worker.periodic_callbacks:
            dask_worker.periodic_callbacks[name].stop()
    tracemalloc.stop()
    tracemalloc.start()


def _traced(reset=False, dask_worker=None):
    """(current, peak) bytes NumPy and Python allocated in this worker since tracing began."""
    import tracemalloc

    traced = tracemalloc.get_traced_memory()
    if reset:
        tracemalloc.reset_peak()
    return traced


@contextmanager
def _no_stealing(client):
    """The scheduler's work stealing (moving queued tasks to idle workers) off."""

    async def switch(on, dask_scheduler=None):
        stealing = dask_scheduler.extensions["stealing"]
        await (stealing.start() if on else stealing.stop())

    client.run_on_scheduler(switch, False)
    try:
        yield
    finally:
        client.run_on_scheduler(switch, True)


def _settled(client):
    """The workers' traced memory once it stops changing (Dask frees released data soon)."""
    last = None
    for _ in range(100):
        now = {worker: current for worker, (current, _) in client.run(_traced).items()}
        if now == last:
            break
        last = now
        time.sleep(0.05)
    return client.run(_traced, True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_memory_per_worker_is_its_share_of_the_ratings_plus_two_blocks(client):
    """Each worker holds its share of the ratings (12 bytes each), its user block and an
    item block, each twice at most (a training task's input and output), and a few MiB of
    Dask's own: during the shuffle, and from the first epoch to the end of the users'
    solve. The partitions of the DataFrame, persisted before, are not the fit's memory."""
    from distributed import wait

    X = make_ratings(120_000, 3000, 4_800_000, random_state=7)
    df = frame(X, npartitions=8).persist()
    wait(df)
    # the ratings of the partitions each worker cuts (Dask may place 5 and 3)
    held = {worker: 0 for worker in client.scheduler_info()["workers"]}
    k = 8
    # the solve's copy of a chunk's ratings: ~0.2 MB; the ingest's and the shuffle's
    # chunks: ~0.6 MB (a partition holds 600,000 ratings)
    client.run(_start_tracing, 1 << 12, 1 << 14)
    seen = {}
    run_epochs, make_cells = _dsgd._run_epochs, _dsgd.make_cells

    def spy_cells(executor, data, *args):
        for workers in client.who_has(data.parts).values():
            held[workers[0]] += -(-X.nnz // df.npartitions)
        return make_cells(executor, data, *args)

    def spy(executor, cells, states, grid, *args):
        seen["shuffle"] = _settled(client)  # (current, peak) since tracing began
        seen["owner"] = {b: executor.owner(b) for b in range(grid.n_blocks)}
        seen["grid"] = grid
        return run_epochs(executor, cells, states, grid, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_dsgd, "_run_epochs", spy)
        patch.setattr(_dsgd, "make_cells", spy_cells)
        # eight segments a cell, as partitions of 1M ratings or more have (here 600,000)
        patch.setattr(_shuffle, "SEGMENT_PIECE_RATINGS", 1)
        # the scheduler's work stealing may move a partition to the other worker to be
        # cut: a copy of it there, Dask's choice and not the fit's memory (docs/dask.rst)
        with _no_stealing(client):
            model = DaskFunkSVD(n_components=k, max_iter=3, random_state=0, client=client).fit(df)
    steady = client.run(_traced)
    client.run(_start_tracing, _users.SOLVE_CHUNK_RATINGS)  # back to the default
    grid, counts = seen["grid"], np.diff(X.indptr)
    assert grid.n_blocks == 2 and len(set(seen["owner"].values())) == 2  # a block per worker
    item_block = max(len(m) for m in grid.item_members) * (k + 2) * 4  # factors, bias, sums
    # Dask's own: its records of the fit's tasks (more since the shuffle builds a cell
    # in eight segments, a task each, and cuts the partitions in rounds), a few buffers
    slack = 9 << 19  # 4.5 MiB
    for b, worker in seen["owner"].items():
        cells = 12 * counts[grid.user_members[b]].sum()  # user, item (int32), rating (float32)
        blocks = 2 * (len(grid.user_members[b]) * (k + 2) * 4 + item_block)
        assert cells > 5 * slack  # the ratings dominate the bound
        # the user block's first state is let go once the first epoch has read it:
        # 0.93-0.97 of the bound in 20 runs (0.99 when the fit held it to the end)
        assert steady[worker][1] < cells + blocks + slack, (b, steady[worker][1] / cells)
        # the shuffle: the worker's cells, or the pieces it cut for both blocks while
        # they wait to move, if more; on top, the segment being built (a sixteenth of
        # the share), the bookkeeping of the block's users, a chunk's sort and Dask's
        # buffers: 0.69-0.95 of the bound in 20 runs. 1.00-1.01 when each partition
        # became triplets before it was cut (the cut's input and output coexisted)
        share = 12 * max(held[worker], counts[grid.user_members[b]].sum())
        peak = seen["shuffle"][worker][1]
        assert peak < share + blocks + slack, (b, peak / share)
    assert model.n_iter_ == 3


class _FirstEpoch(io.StringIO):
    """Captures the fit's verbose lines and signals the first one."""

    def __init__(self):
        super().__init__()
        self.seen = threading.Event()

    def write(self, text):
        if text.startswith("epoch"):
            self.seen.set()
        return super().write(text)


def _fault_setup(client, **params):
    """Ratings, the fit's parameters, the in-process reference fit, and the pid of the
    worker to kill."""
    df = frame(make_ratings(3000, 600, 150_000, random_state=4), npartitions=4)
    params = dict(params, tol=None, random_state=0)
    reference = DaskFunkSVD(client="sync", **params).fit(df)
    pids = client.run(os.getpid)
    return df, params, reference, pids[sorted(pids)[1]]


def test_worker_killed_mid_fit_gives_same_factors_or_clear_error(client):
    df, params, reference, victim = _fault_setup(client, n_components=16, n_blocks=4,
                                                 max_iter=25)  # fmt: skip
    out = _FirstEpoch()
    state = {"done": False}

    def kill():  # right after the first of 25 epochs
        if out.seen.wait(timeout=120):
            state["killed_during_fit"] = not state["done"]
            os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill)
    started = time.perf_counter()
    killer.start()
    try:
        with pytest.warns(RuntimeWarning, match="lost a worker"), redirect_stdout(out):
            model = DaskFunkSVD(client=client, timeout=60, verbose=1, **params).fit(df)
        same_model(model, reference)
        assert model.n_iter_ == 25
    except (WorkerLost, TimeoutError) as error:  # the other allowed outcome: a clear error
        assert "lost workers" in str(error) or "timeout" in str(error)
    finally:
        state["done"] = True
        out.seen.set()
        killer.join()
        client.wait_for_workers(2, timeout=60)
    assert state.get("killed_during_fit"), "the fit ended before the worker was killed"
    assert time.perf_counter() - started < 180


def test_worker_killed_while_partitions_are_cut_is_recomputed(client, monkeypatch):
    """The fit holds each partition until it is cut: a worker lost then, Dask reads its
    partitions again (from the DataFrame's graph) and the fit goes on, to the same
    factors, without starting again."""
    import warnings

    from funksgd.dask import _executors

    df, params, reference, victim = _fault_setup(client, n_components=4, n_blocks=2,
                                                 max_iter=2)  # fmt: skip
    part, calls = _executors.OnCluster.part, []

    def kill_then_part(self, handle, index, priority=0):
        # the shuffle's first part: a partition's cut is submitted, the cells are not
        if not calls and _shuffle.split_by_cell.__name__ in str(handle.key):
            os.kill(victim, signal.SIGKILL)
            calls.append(1)
        return part(self, handle, index, priority)

    monkeypatch.setattr(_executors.OnCluster, "part", kill_then_part)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", "The Dask cluster lost a worker")
            model = DaskFunkSVD(client=client, timeout=60, **params).fit(df)
        same_model(model, reference)
    finally:
        client.wait_for_workers(2, timeout=60)
    assert calls


def test_worker_killed_mid_shuffle_restarts_the_fit(client, monkeypatch):
    """The shuffle's chain of tasks lets go of what it has cut: a worker lost while the
    cells are built cannot be recomputed, so the fit starts again, to the same factors.
    (Lost while the partitions are cut, Dask recomputes them: the fit holds them.)"""
    from distributed import wait

    from funksgd.dask import _executors

    df, params, reference, victim = _fault_setup(client, n_components=4, n_blocks=2,
                                                 max_iter=2)  # fmt: skip
    submit, calls = _executors.OnCluster.submit, []

    def kill_then_submit(self, fn, *args, **kwargs):
        # the first segment's task: once every partition is cut and its pieces are with
        # their block's worker (the first block's start), Dask let go of the partitions
        if not calls and fn is _shuffle.next_segment:
            wait(args[0])
            os.kill(victim, signal.SIGKILL)
            calls.append(1)
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(_executors.OnCluster, "submit", kill_then_submit)
    started = time.perf_counter()
    try:
        with pytest.warns(RuntimeWarning, match="lost a worker"):
            model = DaskFunkSVD(client=client, timeout=60, **params).fit(df)
        same_model(model, reference)
    finally:
        client.wait_for_workers(2, timeout=60)
    assert calls and time.perf_counter() - started < 120


def test_scatter_has_a_time_limit_and_a_lost_worker_is_a_worker_lost(client, monkeypatch):
    """Dask's scatter can stall when a worker is lost while data is sent: the fit's
    ``timeout`` bounds it. Data for a worker that has left restarts the fit."""
    import asyncio

    from funksgd.dask._executors import OnCluster

    executor = OnCluster(client, timeout=0.2)
    with pytest.raises(WorkerLost, match="left the cluster"):
        executor.scatter(np.ones(3), worker="tcp://127.0.0.1:9")
    assert client.gather(executor.scatter(np.ones(3), broadcast=True)).sum() == 3

    def stalled(*args, asynchronous=False, **kwargs):
        return asyncio.sleep(30)

    monkeypatch.setattr(client, "scatter", stalled)
    started = time.perf_counter()
    with pytest.raises(TimeoutError, match="did not take data for the fit within timeout=0.2"):
        executor.scatter(np.ones(3), broadcast=True)
    assert time.perf_counter() - started < 5


def test_cluster_without_workers_raises_not_hangs(small):
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                     dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as lonely,
    ):  # fmt: skip
        with pytest.raises(TimeoutError, match="within timeout=0.001 s"):
            DaskFunkSVD(client=lonely, timeout=1e-3, **SMALL).fit(frame(small))
        worker = next(iter(lonely.run(os.getpid).values()))
        out = _FirstEpoch()

        def kill_for_good():
            if out.seen.wait(timeout=120):
                for nanny in cluster.workers.values():  # in this process: no restart
                    nanny.status = Status.closing_gracefully
                os.kill(worker, signal.SIGKILL)

        killer = threading.Thread(target=kill_for_good)
        killer.start()
        started = time.perf_counter()
        try:
            with (
                pytest.raises(RuntimeError, match="no workers, and none joined within 3 s"),
                pytest.warns(RuntimeWarning, match="lost a worker"),
                redirect_stdout(out),
            ):
                params = dict(SMALL, max_iter=1000, tol=None)
                DaskFunkSVD(client=lonely, timeout=3, verbose=1, **params).fit(frame(small))
        finally:
            out.seen.set()
            killer.join()
        assert time.perf_counter() - started < 60


def test_grid_search_over_the_cluster(client):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    X = make_ratings(400, 60, 8000, random_state=5)
    grid = {"alpha": [0.05, 0.2], "n_components": [2, 4]}
    estimator = FunkSVD(max_iter=5, random_state=0)
    local = GridSearchCV(estimator, grid, cv=2, n_jobs=1).fit(X)
    with parallel_backend("dask"):
        remote = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(X)
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_


def test_import_funksgd_does_not_import_dask():
    code = "import sys, funksgd; print('dask' in sys.modules or 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), check=True)  # fmt: skip
    assert out.stdout.strip() == "False"
