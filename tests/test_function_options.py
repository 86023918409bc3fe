"""Each option of the public functions of ``funksgd.metrics``, ``funksgd.model_selection``
and ``funksgd.datasets`` does what its documentation says (not only that it runs)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from funksgd import FunkSVD, KFoldRatings, cross_validate_ratings, metrics
from funksgd.datasets import make_ratings, ratings_to_csr
from funksgd.metrics import make_ranking_scorer, ndcg_scorer, relevant_items

METRICS = ["precision", "recall", "ndcg", "map", "hit_rate"]


class FirstUnrated:
    """A stand-in estimator: recommends each row's unrated items in column order, and
    records the ``X`` and ``n`` it was asked with."""

    def __init__(self):
        self.calls = []

    @staticmethod
    def lists(X, n):
        out = np.full((X.shape[0], n), -1, dtype=np.int64)
        for r in range(X.shape[0]):
            free = np.setdiff1d(np.arange(X.shape[1]), X[[r]].indices)[:n]
            out[r, : len(free)] = free
        return out

    def recommend(self, users=None, X=None, n=10, exclude_rated=True):
        self.calls.append((X.copy(), n))
        return self.lists(X, n), None


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(n_users=80, n_items=30, n_ratings=1200, random_state=0)


@pytest.mark.parametrize("fraction, seed", [(0.2, 0), (0.5, 0), (0.5, 1)])
def test_ranking_scorer_holds_out_that_share_of_each_row_and_scores_each_metric(
    ratings, fraction, seed
):
    X = ratings
    counts = np.diff(X.indptr)
    multi = np.flatnonzero(counts >= 2)  # rows with something to hold out
    model = FirstUnrated()
    scorer = make_ranking_scorer("ndcg", k=4, holdout_fraction=fraction, random_state=seed)
    scorer(model, X)
    ((known, n),) = model.calls
    assert n == 4 and known.shape == (len(multi), X.shape[1])
    rows = X[multi]
    # the known ratings are ratings of X; round(fraction * count) (at least 1) held out
    assert (known - rows.multiply(known != 0)).nnz == 0
    n_held = counts[multi] - np.diff(known.indptr)
    np.testing.assert_array_equal(n_held, np.maximum(1, np.round(fraction * counts[multi])))
    held = sp.csr_array(rows - known)
    held.eliminate_zeros()
    lists = FirstUnrated.lists(known, 4)
    for metric in METRICS:
        value = make_ranking_scorer(metric, k=4, holdout_fraction=fraction, random_state=seed)
        want = getattr(metrics, f"{metric}_at_k")(lists, held, k=4)
        assert value(FirstUnrated(), X) == pytest.approx(want, rel=1e-12), metric
    # relevance_threshold: only held-out ratings of 4 or more are relevant (rows without
    # any are not scored)
    relevant = relevant_items(held, 4)
    scored = np.flatnonzero(np.diff(relevant.indptr) > 0)
    value = make_ranking_scorer("precision", k=4, relevance_threshold=4,
                                holdout_fraction=fraction, random_state=seed)  # fmt: skip
    want = metrics.precision_at_k(lists[scored], relevant[scored], k=4)
    assert value(FirstUnrated(), X) == pytest.approx(want, rel=1e-12)
    # the split depends on random_state only
    again = FirstUnrated()
    make_ranking_scorer("ndcg", k=4, holdout_fraction=fraction, random_state=seed)(again, X)
    assert (again.calls[0][0] != known).nnz == 0
    other = FirstUnrated()
    make_ranking_scorer("ndcg", k=4, holdout_fraction=fraction, random_state=seed + 7)(other, X)
    assert (other.calls[0][0] != known).nnz > 0


def test_ndcg_scorer_is_ndcg_at_10_of_a_fifth_of_each_row(ratings):
    X = ratings
    model = FirstUnrated()
    value = ndcg_scorer(model, X)
    ((known, n),) = model.calls
    multi = np.flatnonzero(np.diff(X.indptr) >= 2)
    held = sp.csr_array(X[multi] - known)
    held.eliminate_zeros()
    counts = np.diff(X.indptr)[multi]
    np.testing.assert_array_equal(np.diff(held.indptr), np.maximum(1, np.round(0.2 * counts)))
    assert n == 10
    assert value == pytest.approx(metrics.ndcg_at_k(FirstUnrated.lists(known, 10), held, k=10))


def test_cross_validate_ratings_options(ratings):
    """cv (a splitter, or a count seeded by random_state), scoring (ranking metrics and
    coverage), k, relevance_threshold and return_estimator, against each fold's fit."""
    X = ratings
    estimator = FunkSVD(n_components=2, max_iter=3, random_state=0, popularity_weight=0.0)
    scoring = ("precision", "ndcg", "coverage")
    result = cross_validate_ratings(estimator, X, cv=KFoldRatings(3, random_state=5),
                                    scoring=scoring, k=3, relevance_threshold=4,
                                    return_estimator=True)  # fmt: skip
    by_count = cross_validate_ratings(estimator, X, cv=3, random_state=5, scoring="mae")
    assert set(by_count) == {"test_mae", "fit_time", "score_time"}  # no estimator unasked
    folds = list(KFoldRatings(3, random_state=5).split(X))
    assert len(result["estimator"]) == len(result["test_ndcg"]) == 3
    for f, (X_train, X_test) in enumerate(folds):
        model = result["estimator"][f]
        assert model is not estimator and model.get_params() == estimator.get_params()
        reference = clone(estimator).fit(X_train)
        np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
        relevant = relevant_items(X_test, 4)
        users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        lists = reference.recommend(users=users, X=X_train[users], n=3)[0]
        assert lists.shape == (len(users), 3)  # k=3
        want = metrics.precision_at_k(lists, relevant[users], k=3)
        assert result["test_precision"][f] == pytest.approx(want)
        assert result["test_ndcg"][f] == pytest.approx(
            metrics.ndcg_at_k(lists, relevant[users], k=3)
        )
        coverage = len(np.unique(lists[lists >= 0])) / X.shape[1]
        assert result["test_coverage"][f] == pytest.approx(coverage)
        test = X_test.tocoo()
        pred = reference.predict_ratings(test.row, test.col).astype(np.float64)
        assert by_count["test_mae"][f] == pytest.approx(np.mean(np.abs(pred - test.data)))


def test_kfold_ratings_n_splits_and_random_state(ratings):
    X = ratings

    def folds(n, seed):
        return [X_test.toarray() for _, X_test in KFoldRatings(n, random_state=seed).split(X)]

    assert KFoldRatings(4).get_n_splits() == 4 and len(folds(4, 0)) == 4
    sizes = [int((fold != 0).sum()) for fold in folds(4, 0)]
    assert sum(sizes) == X.nnz and max(sizes) - min(sizes) <= 1
    for a, b in zip(folds(4, 0), folds(4, 0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(folds(4, 0)[0], folds(4, 1)[0])


def test_relevant_items_threshold_is_inclusive():
    X = np.array([[5.0, 4.0, 3.9, np.nan], [np.nan, 1.0, 4.0, 4.5]])
    np.testing.assert_array_equal(relevant_items(X, 4).toarray(), [[1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(relevant_items(X).toarray(), ~np.isnan(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ratings_to_csr_dtype_is_the_type_the_ratings_are_stored_in(dtype):
    ratings = np.array([1 / 3, 2.0, 0.1])
    X, _ = ratings_to_csr([1, 1, 2], [10, 20, 10], ratings, dtype=dtype)
    assert X.dtype == dtype
    np.testing.assert_array_equal(X.data, ratings.astype(dtype))
    if dtype == np.float64:
        assert X.data[0] == 1 / 3  # not rounded through float32


def test_make_ratings_n_components_is_the_rank_of_the_planted_factors():
    X, truth = make_ratings(n_users=50, n_items=40, n_ratings=800, n_components=3, noise=0.0,
                            rating_step=None, rating_scale=(-100, 100), return_factors=True,
                            random_state=0)  # fmt: skip
    assert truth.user_factors.shape == (50, 3) and truth.item_factors.shape == (40, 3)
    coo = X.tocoo()
    dots = np.einsum("ij,ij->i", truth.user_factors[coo.row].astype(np.float64),
                     truth.item_factors[coo.col])  # fmt: skip
    want = truth.global_mean + truth.user_bias[coo.row] + truth.item_bias[coo.col] + dots
    np.testing.assert_allclose(coo.data, np.clip(want, -100, 100), rtol=1e-5, atol=1e-4)


def test_ranking_scorer_never_lists_a_known_rating_of_a_real_model(ratings):
    """The scorer's recommend(X=known) folds each row in and leaves its known items out:
    no list the fitted FunkSVD returns holds one."""
    model = FunkSVD(n_components=3, max_iter=3, random_state=0).fit(ratings)
    seen = []

    class Recording:
        def recommend(self, **kwargs):
            items, scores = model.recommend(**kwargs)
            seen.append((kwargs["X"], items))
            return items, scores

    make_ranking_scorer("precision", k=25, holdout_fraction=0.2)(Recording(), ratings)
    ((known, items),) = seen
    assert items.shape == (known.shape[0], 25)
    for row, listed in enumerate(items):
        assert not set(known[[row]].indices) & set(listed[listed >= 0].tolist()), row
    n_unrated = known.shape[1] - np.diff(known.indptr)
    np.testing.assert_array_equal((items >= 0).sum(axis=1), np.minimum(25, n_unrated))
