"""Recommender: the index-level API used by original ids, end to end."""

import numpy as np
import pytest

from funksgd import FunkSVD, Recommender
from funksgd.datasets import make_ratings, ratings_to_csr


@pytest.fixture(scope="module")
def by_ids():
    X = make_ratings(n_users=120, n_items=60, n_ratings=2500, random_state=0).tocoo()
    # string user ids and sparse integer item ids, as files have them
    users = np.array([f"user-{u:03d}" for u in X.row])
    items = 1000 + 7 * X.col
    X_ids, mapping = ratings_to_csr(users, items, X.data)
    model = FunkSVD(n_components=5, random_state=0).fit(X_ids)
    titles = {int(item): f"title {item}" for item in mapping.item_ids}
    return Recommender(model, mapping, X_ids, titles=titles), X_ids, mapping, model


def test_recommend_by_id_is_recommend_by_index(by_ids):
    rec, X, mapping, model = by_ids
    user = mapping.user_index(["user-007"])
    items, scores = model.recommend(users=user, X=X[user], n=5)
    result = rec.recommend("user-007", n=5)
    assert [r.item_id for r in result] == mapping.item_id(items[0]).tolist()
    np.testing.assert_allclose([r.score for r in result], scores[0])
    assert [r.title for r in result] == [f"title {r.item_id}" for r in result]
    rated = set(mapping.item_id(X[user].indices).tolist())
    assert not rated & {r.item_id for r in result}


def test_recommend_new_folds_in_the_ratings_by_item_id(by_ids):
    rec, X, mapping, model = by_ids
    user = mapping.user_index(["user-010"])
    row = X[user]
    ratings = dict(zip(mapping.item_id(row.indices).tolist(), row.data.tolist(), strict=True))
    items, scores = model.recommend(X=row, n=4)
    result = rec.recommend_new(ratings, n=4)
    assert [r.item_id for r in result] == mapping.item_id(items[0]).tolist()
    np.testing.assert_allclose([r.score for r in result], scores[0], rtol=1e-6)
    assert not set(ratings) & {r.item_id for r in result}


def test_unknown_ids_and_empty_ratings_are_refused(by_ids):
    rec = by_ids[0]
    with pytest.raises(KeyError, match="unknown user id"):
        rec.recommend("nobody")
    with pytest.raises(KeyError, match="unknown item id"):
        rec.recommend_new({5: 4.0})
    with pytest.raises(ValueError, match="empty"):
        rec.recommend_new({})


def test_mapping_of_another_matrix_is_refused(by_ids):
    _, X, mapping, model = by_ids
    other_X, other = ratings_to_csr([1, 2], [3, 4], [1.0, 2.0])
    with pytest.raises(ValueError, match="mapping"):
        Recommender(model, other, other_X)


def test_similar_items_and_users_by_id(by_ids):
    rec, X, mapping, model = by_ids
    item = mapping.item_index([1000 + 7 * 3])
    neighbours, sims = model.similar_items(item, n=4)
    result = rec.similar_items(1000 + 7 * 3, n=4)
    assert [r.item_id for r in result] == mapping.item_id(neighbours[0]).tolist()
    assert [r.title for r in result] == [f"title {r.item_id}" for r in result]
    np.testing.assert_allclose([r.score for r in result], sims[0])
    user = mapping.user_index(["user-004"])
    users, user_sims = model.similar_users(user, n=3)
    assert rec.similar_users("user-004", n=3) == list(
        zip(mapping.user_id(users[0]).tolist(), user_sims[0].tolist(), strict=True)
    )
