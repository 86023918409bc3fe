"""funksgd._ranking: popularity offsets, shrinkage, the learned weight, similar items and users."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD
from funksgd._inference import similar_rows
from funksgd._ranking import (
    POPULARITY_WEIGHTS,
    empirical_bayes_beta,
    item_counts,
    learn_popularity_weight,
    ndcg_by_weight,
    popularity_offsets,
    ranking_scores,
    shrink_items,
)
from funksgd.datasets import make_ratings
from funksgd.metrics import ranking_metrics_at_k, relevant_items, top_k_items
from funksgd.model_selection import train_test_split_ratings

from .test_metrics import planted_popularity


def test_offsets_and_shrinkage_by_formula():
    counts = np.array([0, 1, 4, 99])
    np.testing.assert_allclose(popularity_offsets(counts, 0.5), 0.5 * np.log(1 + counts))
    bias = np.array([1.0, -2.0, 3.0, 0.5])
    factors = np.arange(8.0).reshape(4, 2)
    b, Q = shrink_items(bias, factors, counts, 4.0)
    scale = np.array([0.0, 1 / 5, 4 / 8, 99 / 103])
    np.testing.assert_allclose(b, bias * scale)
    np.testing.assert_allclose(Q, factors * scale[:, None])
    b0, Q0 = shrink_items(bias, factors, counts, 0.0)
    np.testing.assert_array_equal(b0, bias)
    np.testing.assert_array_equal(Q0, factors)


@pytest.mark.parametrize("bad", [-1.0, np.nan, "1", True])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="weight"):
        popularity_offsets(np.array([1, 2]), bad)
    with pytest.raises(ValueError, match="beta"):
        shrink_items(np.zeros(2), np.zeros((2, 1)), np.array([1, 2]), bad)


def test_item_counts():
    X = sp.csr_array(np.array([[1.0, 0, 2], [3, 0, 0], [0, 0, 5]]))
    np.testing.assert_array_equal(item_counts(X), [2, 0, 2])


def test_empirical_bayes_beta_recovers_planted_ratio():
    rng = np.random.default_rng(0)
    n_users, n_items, tau, sigma = 3000, 400, 0.5, 1.0
    effect = rng.normal(0, tau, n_items)
    counts = rng.integers(5, 60, n_items)
    rows = np.concatenate([rng.choice(n_users, c, replace=False) for c in counts])
    cols = np.repeat(np.arange(n_items), counts)
    ratings = 3 + effect[cols] + rng.normal(0, sigma, len(cols))
    X = sp.csr_array((ratings, (rows, cols)), shape=(n_users, n_items))
    # noise variance / effect variance: the total variance over tau^2 (the estimate's sigma^2
    # is the variance of all ratings)
    expected = (sigma**2 + tau**2) / tau**2
    assert empirical_bayes_beta(X) == pytest.approx(expected, rel=0.2)


def test_empirical_bayes_beta_without_item_effect_is_infinite():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 500, 20000)
    cols = rng.integers(0, 10, 20000)
    X = sp.coo_array((rng.normal(3, 1, 20000), (rows, cols)), shape=(500, 10)).tocsr()
    X.sum_duplicates()
    assert empirical_bayes_beta(X) > 50


def test_ranking_scores_order_like_predictions():
    X = make_ratings(n_users=30, n_items=20, n_ratings=240, random_state=0)
    model = FunkSVD(n_components=4, random_state=0, clip=False).fit(X)  # predictions unclipped
    users = np.arange(30)
    scores = ranking_scores(model.user_factors_, model.item_factors_, model.item_bias_)
    pairs_u = np.repeat(users, 20)
    pairs_i = np.tile(np.arange(20), 30)
    predicted = model.predict_ratings(pairs_u, pairs_i).reshape(30, 20)
    # the user's constant (global mean + user bias) is the only difference
    diff = predicted - scores
    np.testing.assert_allclose(diff - diff[:, :1], 0, atol=1e-4)


def test_learned_weight_is_large_when_popularity_is_planted():
    X_train, _ = planted_popularity()
    weight, ndcg = learn_popularity_weight(FunkSVD(n_components=8, random_state=0), X_train)
    assert weight > 0
    assert ndcg[weight] == max(ndcg.values())
    assert ndcg[weight] > ndcg[0.0]


def test_learned_weight_is_zero_when_popularity_misleads():
    # every user likes a rare item of their own group, and dislikes the popular items
    rng = np.random.default_rng(0)
    n_users, n_items = 200, 60
    rows, cols, vals = [], [], []
    for u in range(n_users):
        group = u % 10
        liked = np.arange(10 + group * 5, 15 + group * 5)
        popular = rng.choice(10, 6, replace=False)
        for i in liked:
            rows.append(u), cols.append(i), vals.append(5.0)
        for i in popular:
            rows.append(u), cols.append(i), vals.append(1.0)
    X = sp.csr_array((vals, (rows, cols)), shape=(n_users, n_items))
    weight, ndcg = learn_popularity_weight(FunkSVD(n_components=10, random_state=0, max_iter=40), X)
    assert weight == 0.0
    assert ndcg[0.0] > ndcg[3.0]


def test_learned_weight_with_constant_ratings():
    # implicit feedback: every rating is 1, popularity is planted
    X_train, _ = planted_popularity()
    X_train.data[:] = 1.0
    # constant ratings leave nothing to learn: the model's scores tie, and ties go to the
    # lower item, which here must not be the more popular one
    X_train = sp.csr_array(X_train[:, np.random.default_rng(0).permutation(X_train.shape[1])])
    weight, ndcg = learn_popularity_weight(FunkSVD(n_components=8, random_state=0), X_train)
    assert np.isfinite(list(ndcg.values())).all()
    assert weight > 0
    assert ndcg[weight] > 1.5 * ndcg[0.0]


@pytest.mark.parametrize(
    "shape, k",
    [((300, 200, 6000), 10), ((60, 30, 900), 10), ((400, 1000, 20000), 50), ((80, 90, 2000), 1)],
)
def test_ndcg_by_weight_equals_ranking_metrics_with_ties(shape, k):
    n_users, n_items, n_ratings = shape
    X = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, random_state=k)
    X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    model = FunkSVD(n_components=4, random_state=0, max_iter=5).fit(X_train)
    W, Q, b = model.user_factors_, model.item_factors_.copy(), model.item_bias_.copy()
    counts = item_counts(X_train)
    # ties: equal items (one of them rated by some users), zero items, a user who rated
    # nearly everything, equal counts
    Q[5], b[5], counts[5] = Q[3], b[3], counts[3]
    Q[7:10], b[7:10], counts[7:10] = 0, 0, counts[7]
    X_train = X_train.tolil()
    X_train[0, : n_items - 3] = 3.0
    X_train = sp.csr_array(X_train)
    threshold = 3.5
    fast = ndcg_by_weight(W, Q, b, X_train, relevant_items(X_test, threshold), counts,
                          POPULARITY_WEIGHTS, k)  # fmt: skip
    for weight, value in zip(POPULARITY_WEIGHTS, fast, strict=True):
        offsets = popularity_offsets(counts, weight)
        expected = ranking_metrics_at_k(
            lambda users, offsets=offsets: ranking_scores(W[users], Q, b) + offsets,
            X_train, X_test, k=k, relevance_threshold=threshold,
            batch_size=max(1, (1 << 17) // n_items),
        )["ndcg"]  # fmt: skip
        assert value == expected


def test_ndcg_by_weight_threads_and_float64_agree(monkeypatch):
    X = make_ratings(n_users=300, n_items=200, n_ratings=6000, random_state=0)
    X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    model = FunkSVD(n_components=4, random_state=0, max_iter=5, dtype="float64").fit(X_train)
    args = (model.user_factors_, model.item_factors_, model.item_bias_, X_train,
            relevant_items(X_test, 3.5), item_counts(X_train), POPULARITY_WEIGHTS, 10)  # fmt: skip
    one = ndcg_by_weight(*args)
    monkeypatch.setattr("funksgd._ranking.BATCH_BYTES", 1 << 12)  # many batches
    assert ndcg_by_weight(*args, n_threads=2) == one


def test_top_k_items_breaks_ties_at_the_cut_by_lower_index():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (50, 40)).astype(float)  # many ties at every cut
    items = top_k_items(scores, 7)
    expected = np.lexsort((np.broadcast_to(np.arange(40), scores.shape), -scores), axis=1)[:, :7]
    np.testing.assert_array_equal(items, expected)


def test_learn_refuses_bad_options():
    X_train, _ = planted_popularity()
    with pytest.raises(ValueError, match="k must be"):
        learn_popularity_weight(FunkSVD(), X_train, k=0)
    with pytest.raises(ValueError, match="at least one"):
        learn_popularity_weight(FunkSVD(), X_train, weights=[])
    single = sp.csr_array(sp.eye(5, format="csr"))
    with pytest.raises(ValueError, match="two ratings or more"):
        learn_popularity_weight(FunkSVD(), single)


def slow_similar(factors, query, n):
    sims = []
    for j in range(len(factors)):
        if j == query:
            continue
        a, b = factors[query], factors[j]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        sims.append((-(a @ b) / (na * nb) if na and nb else 0.0, j))
    sims.sort()
    return [j for _, j in sims[:n]], [-s for s, _ in sims[:n]]


@pytest.mark.parametrize("batch_size", [None, 3])
def test_similar_rows_match_slow_reference(batch_size):
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(25, 4))
    factors[7] = 0.0
    queries = np.array([0, 7, 24, 3, 0])
    rows, sims = similar_rows(factors, queries, n=6, batch_size=batch_size)
    for q, got_rows, got_sims in zip(queries, rows, sims, strict=True):
        want_rows, want_sims = slow_similar(factors, q, 6)
        np.testing.assert_allclose(got_sims, want_sims, atol=1e-12)
        if q != 7:  # the zero row ties everything at 0: any order of equals is right
            np.testing.assert_array_equal(got_rows, want_rows)
        assert q not in got_rows


def test_similar_rows_pad_and_the_estimators_methods():
    factors = np.eye(3)
    rows, sims = similar_rows(factors, [1], n=5)
    assert rows[0, :2].tolist() == [0, 2] and rows[0, 2:].tolist() == [-1, -1, -1]
    assert np.isnan(sims[0, 2:]).all()
    X = make_ratings(n_users=40, n_items=25, n_ratings=500, random_state=0)
    model = FunkSVD(n_components=3, random_state=0).fit(X)
    cases = [(model.similar_items, model.item_factors_, 25)]
    cases += [(model.similar_users, model.user_factors_, 40)]
    for method, fitted, n_rows in cases:
        got, got_sims = method([0, 5], n=4)
        for query, row, row_sims in zip([0, 5], got, got_sims, strict=True):
            want_rows, want_sims = slow_similar(fitted.astype(np.float64), query, 4)
            np.testing.assert_allclose(row_sims, want_sims, rtol=1e-5)
            np.testing.assert_array_equal(row, want_rows)
        with pytest.raises(ValueError, match="out of range"):
            method([n_rows])
    with pytest.raises(ValueError, match="row indices"):
        similar_rows(factors, [3])
    with pytest.raises(ValueError, match="n must be"):
        similar_rows(factors, [0], n=0)


@pytest.mark.slow
def test_ml100k_learned_offset_beats_popularity_and_keeps_rmse(ml100k_u1):
    X_train, (tu, ti, tr) = ml100k_u1
    X_test = sp.csr_array((tr, (tu, ti)), shape=X_train.shape)
    model = FunkSVD(random_state=0).fit(X_train)
    weight, _ = learn_popularity_weight(FunkSVD(random_state=0), X_train)
    counts = item_counts(X_train)
    offsets = popularity_offsets(counts, weight)
    W, Q, b = model.user_factors_, model.item_factors_, model.item_bias_
    adjusted = ranking_metrics_at_k(
        lambda users: ranking_scores(W[users], Q, b, offsets),
        X_train,
        X_test,
        relevance_threshold=4,
    )
    popular = ranking_metrics_at_k(
        lambda users: counts[None, :].astype(float), X_train, X_test, relevance_threshold=4
    )
    # measured on u1: 0.277 / 0.240 against popularity's 0.245 / 0.213
    assert adjusted["ndcg"] >= popular["ndcg"]
    assert adjusted["precision"] >= popular["precision"]
    # ranking offsets leave the predicted ratings untouched
    pred = model.predict_ratings(tu, ti)
    assert np.sqrt(np.mean((pred - tr) ** 2)) < 0.93
