"""Inference: top-n items with candidates and filters against a brute-force reference."""

import numpy as np
import pytest

from funksgd import FunkSVD
from funksgd.datasets import make_ratings


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
    X = make_ratings(n_users=60, n_items=40, n_ratings=1200, random_state=1)
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


# --------------------------------------------------------------- the users' solve
def test_scratch_memory_failure_is_reported_as_memory(monkeypatch):
    from funksgd import _inference, _kernels
    from funksgd._validation import check_ratings, csr_arrays

    X = check_ratings(make_ratings(n_users=30, n_items=20, n_ratings=300, random_state=0))
    Q, bi = np.ones((20, 3), X.dtype), np.zeros(20, X.dtype)
    P, bu = np.zeros((30, 3), X.dtype), np.zeros(30, X.dtype)
    # a longest row of 2**31 - 1 ratings asks the kernel for ~100 GB of scratch: refused
    result = _kernels.sgd.fold_in(*csr_arrays(X), Q, bi, 3.0, 0.1, True, 2**31 - 1, 1, P, bu)
    assert result == (0, 30) and not P.any()

    class NoMemory:
        def fold_in(self, *args):
            return 0, 7

    monkeypatch.setattr(_inference, "_sgd", NoMemory())
    with pytest.raises(MemoryError, match="Out of memory in the users' solve: 7 rows"):
        _inference.solve_users(X, Q, bi, 3.0, 0.1, True, 1)


def test_solve_in_chunks_matches_one_solve(monkeypatch):
    from funksgd import _inference

    X = make_ratings(n_users=200, n_items=50, n_ratings=4000, random_state=0).tocsr()
    model = FunkSVD(n_components=4, random_state=0).fit(X)
    whole = model.transform(X)
    real = _inference._row_chunks

    def small_chunks(indptr):
        found = real(indptr, 97)
        assert len(found) > 10 and found[0].start == 0 and found[-1].stop == len(indptr) - 1
        assert all(a.stop == b.start for a, b in zip(found[:-1], found[1:], strict=True))
        return found

    monkeypatch.setattr(_inference, "_row_chunks", small_chunks)
    np.testing.assert_array_equal(model.transform(X), whole)


CTRL_C = """
import os, signal
import numpy as np
from funksgd import FunkSVD, _inference
from funksgd.datasets import make_ratings

X = make_ratings(n_users=300, n_items=50, n_ratings=6000, random_state=0)
model = FunkSVD(n_components=4, max_iter=2, random_state=0).fit(X)
real, calls = _inference._sgd, []

class Interrupted:
    def __getattr__(self, name):
        return getattr(real, name)

    def fold_in(self, *args):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the first chunk is solved
        return real.fold_in(*args)

_inference._sgd = Interrupted()
_inference._row_chunks.__defaults__ = (100,)  # 60 chunks of about 100 ratings
try:
    model.transform(X)
except KeyboardInterrupt:
    print("interrupted after", len(calls), "chunk")
"""


def test_ctrl_c_is_honoured_during_the_users_solve():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", CTRL_C], capture_output=True, text=True, timeout=120
    )
    assert "interrupted after 1 chunk" in result.stdout, result.stderr[-2000:]
