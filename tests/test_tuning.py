"""funksgd._tuning: the ratings fit holds out of its epochs, and the prior and popularity
weight it chooses on them, each against a NumPy recomputation."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, _tuning
from funksgd._blocks import BlockedRatings
from funksgd._inference import PRIOR_GRID
from funksgd._ranking import POPULARITY_WEIGHTS, popularity_offsets
from funksgd._validation import check_ratings, item_counts
from funksgd.datasets import make_ratings
from funksgd.metrics import ranking_metrics_at_k

from .test_funk_svd import ridge_fold_in
from .test_inference import no_signal


def test_hold_out_takes_one_rating_of_each_sampled_user():
    X = check_ratings(make_ratings(n_users=400, n_items=100, n_ratings=8000, random_state=0))
    skip, tuning = _tuning.hold_out(X, np.random.RandomState(0))
    counts = np.diff(X.indptr)
    assert len(tuning.rows) == int(0.02 * X.nnz)  # the share bounds it here
    assert np.all(np.diff(tuning.rows) > 0) and np.all(counts[tuning.rows] >= 2)
    assert list(np.diff(tuning.held.indptr)) == [1] * len(tuning.rows)
    np.testing.assert_array_equal((tuning.known + tuning.held).toarray(), X[tuning.rows].toarray())
    # skip points at the held-out rating of a sampled row, -1 elsewhere
    np.testing.assert_array_equal(X.indices[skip[tuning.rows]], tuning.held.indices)
    np.testing.assert_array_equal(X.data[skip[tuning.rows]], tuning.held.data)
    others = np.setdiff1d(np.arange(X.shape[0]), tuning.rows)
    assert np.all(skip[others] == -1)
    assert all(X.indptr[r] <= skip[r] < X.indptr[r + 1] for r in tuning.rows)


def test_hold_out_is_bounded_by_the_user_count(monkeypatch):
    X = check_ratings(make_ratings(n_users=400, n_items=100, n_ratings=8000, random_state=0))
    monkeypatch.setattr(_tuning, "TUNING_USERS", 30)
    assert len(_tuning.hold_out(X, np.random.RandomState(0))[1].rows) == 30
    one_each = sp.csr_array(sp.eye(50))  # nobody has two ratings: nothing held out
    assert _tuning.hold_out(check_ratings(one_each), np.random.RandomState(0)) == (None, None)


def test_blocks_leave_out_exactly_the_skipped_ratings():
    X = check_ratings(make_ratings(n_users=400, n_items=100, n_ratings=8000, random_state=0))
    skip, _ = _tuning.hold_out(X, np.random.RandomState(0))
    keep = np.ones(X.nnz, dtype=bool)
    keep[skip[skip >= 0]] = False
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    less = sp.csr_array((X.data[keep], (rows[keep], X.indices[keep])), shape=X.shape)
    skipped = BlockedRatings(X, 3, np.random.RandomState(1), skip=skip)
    removed = BlockedRatings(check_ratings(less), 3, np.random.RandomState(1))
    for name in ("block_ptr", "users", "items", "ratings", "row_order", "item_order"):
        np.testing.assert_array_equal(getattr(skipped, name), getattr(removed, name))


def test_from_validation_samples_the_users_with_validation_ratings(monkeypatch):
    X = check_ratings(make_ratings(n_users=400, n_items=100, n_ratings=8000, random_state=0))
    valid = check_ratings(make_ratings(n_users=400, n_items=100, n_ratings=500, random_state=1))
    monkeypatch.setattr(_tuning, "TUNING_USERS", 100)
    tuning = _tuning.from_validation(X, valid, np.random.RandomState(0))
    assert len(tuning.rows) == 100 and np.all(np.diff(tuning.rows) > 0)
    assert np.all(np.diff(valid.indptr)[tuning.rows] > 0)
    assert (tuning.known != X[tuning.rows]).nnz == 0
    assert (tuning.held != valid[tuning.rows]).nnz == 0


def spy_tuning(monkeypatch):
    """Record the tuning sample of the next fits."""
    seen = []

    def hold_out(X, rng):
        seen.append(real(X, rng))
        return seen[-1]

    real = _tuning.hold_out
    monkeypatch.setattr(_tuning, "hold_out", hold_out)
    return seen


def heldout_mse(tuning, model, beta):
    """MSE on the held-out ratings after the NumPy ridge fold-in of the known ones, each
    user's mean error weighted by its number of ratings."""
    W, bias = ridge_fold_in(tuning.known, _with_beta(model, beta))
    total = weight = 0.0
    for row in range(len(tuning.rows)):
        cols = tuning.held.indices[tuning.held.indptr[row] : tuning.held.indptr[row + 1]]
        if len(cols) == 0:
            continue
        truth = tuning.held.data[tuning.held.indptr[row] : tuning.held.indptr[row + 1]]
        pred = (
            model.global_mean_
            + bias[row]
            + model.item_bias_[cols]
            + model.item_factors_[cols] @ W[row]
        )
        n_ratings = len(cols) + tuning.known.indptr[row + 1] - tuning.known.indptr[row]
        total += n_ratings * np.mean((pred - truth) ** 2)
        weight += n_ratings
    return total / weight


class _with_beta:
    """The attributes ``ridge_fold_in`` reads, with another prior."""

    def __init__(self, model, beta):
        self.__dict__.update(
            item_factors_=model.item_factors_, item_bias_=model.item_bias_,
            global_mean_=model.global_mean_, alpha=model.alpha, beta_=beta,
        )  # fmt: skip


def test_fit_chooses_the_prior_that_predicts_the_held_out_ratings_best(monkeypatch):
    seen = spy_tuning(monkeypatch)
    X, _ = no_signal()
    model = FunkSVD(n_components=10, random_state=0, dtype="float64").fit(X)
    _, tuning = seen[-1]
    Q = model.item_factors_
    grid = PRIOR_GRID * np.mean(np.sum(Q**2, axis=1))
    errors = [heldout_mse(tuning, model, beta) for beta in grid]
    assert model.beta_ in grid
    assert errors[list(grid).index(model.beta_)] <= min(errors) * (1 + 1e-6)
    assert model.beta_ > 0 and min(errors) < errors[0]  # this data needs a prior


def test_no_signal_data_is_predicted_as_well_as_the_global_mean():
    """With nothing to learn the prior shrinks the users to nothing; without it (beta 0,
    as when it was chosen on ratings the items were trained on) they fit noise."""
    X, (rows, cols, truth) = no_signal()
    model = FunkSVD(n_components=20, random_state=0).fit(X)
    rmse = lambda pred: np.sqrt(np.mean((pred - truth) ** 2))  # noqa: E731
    mean = rmse(np.full(len(truth), X.data.mean()))
    fitted = rmse(model.predict_ratings(rows, cols))
    W, bias = ridge_fold_in(X, _with_beta(model, 0.0))
    pred = model.global_mean_ + bias[rows] + model.item_bias_[cols]
    unshrunk = rmse(np.clip(pred + np.einsum("ij,ij->i", W[rows], model.item_factors_[cols]), 1, 5))
    assert fitted < mean * 1.01 and fitted < unshrunk - 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_popularity_weight_is_the_best_ndcg_on_the_held_out_ratings(seed):
    X = check_ratings(make_ratings(n_users=600, n_items=150, n_ratings=15000, random_state=seed))
    model = FunkSVD(n_components=5, max_iter=5, random_state=0, dtype="float64").fit(X)
    _, tuning = _tuning.hold_out(X, np.random.RandomState(seed))
    W, _ = ridge_fold_in(tuning.known, model)
    counts = item_counts(X)
    items = (model.item_factors_, model.item_bias_, model.global_mean_)
    weight = _tuning.learn_popularity(tuning, W, items, counts, n_threads=2)

    def ndcg(w):
        scores = W @ model.item_factors_.T + model.item_bias_ + popularity_offsets(counts, w)
        top = ranking_metrics_at_k(lambda users: scores[users], tuning.known, tuning.held,
                                   k=10, relevance_threshold=model.global_mean_)  # fmt: skip
        return top["ndcg"]

    values = {w: ndcg(w) for w in POPULARITY_WEIGHTS}
    assert weight == max(POPULARITY_WEIGHTS, key=lambda w: (values[w], -w))
