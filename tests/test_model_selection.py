"""The one splitter of ratings (funksgd.model_selection) against set arithmetic."""

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.model_selection import choose_per_row, split_by_mask, split_ratings

from .conftest import planted_ratings


def triples(X):
    """The set of (row, column, value) of the stored ratings of ``X``."""
    coo = sp.coo_array(X)
    return set(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))


@pytest.mark.parametrize("test_size", [0.2, 0.5, 1, 37])
def test_split_puts_each_rating_in_exactly_one_part(test_size):
    _, X = planted_ratings(n_users=60, n_items=40)
    X_train, X_test = train_test_split_ratings(X, test_size=test_size, random_state=0)
    train, test, every = triples(X_train), triples(X_test), triples(X)
    assert not train & test  # no test rating leaks into training
    assert train | test == every
    assert X_train.nnz + X_test.nnz == X.nnz
    assert X_train.has_canonical_format and X_test.has_canonical_format


def test_split_by_mask_follows_the_mask():
    _, X = planted_ratings(n_users=30, n_items=20)
    X = sp.csr_array(X)
    mask = np.random.default_rng(0).random(X.nnz) < 0.3
    coo = X.tocoo()
    want_test = set(zip(coo.row[mask].tolist(), coo.col[mask].tolist(), strict=True))
    X_train, X_test = split_by_mask(X, mask.copy())
    assert set(zip(*X_test.nonzero(), strict=True)) == want_test
    assert not set(zip(*X_train.nonzero(), strict=True)) & want_test
    assert X_train.nnz == X.nnz - mask.sum()


def test_early_stopping_validation_ratings_are_not_trained_on():
    _, X = planted_ratings(n_users=60, n_items=40)
    X = sp.csr_array(X)
    train, held = split_ratings(X, 0.2, np.random.RandomState(0))
    assert not triples(train) & triples(held) and held.nnz == round(0.2 * X.nnz)


def test_choose_per_row_holds_the_documented_share_of_each_row():
    X = sp.csr_array(np.array([[1, 2, 3, 4, 5, 1, 2, 3, 4, 5], [1] + [0] * 9, [2, 3] + [0] * 8]),
                     dtype=float)  # fmt: skip
    mask = choose_per_row(X, 0.2, np.random.RandomState(0))
    per_row = np.add.reduceat(mask, X.indptr[:-1])
    assert per_row.tolist() == [2, 0, 1]  # 20% of 10; a single rating is never held out


def test_score_never_folds_in_the_ratings_it_predicts():
    """A held-out rating folded in would pull its prediction towards it: with one item
    rated far off by each user, the score of a model that saw it would be better."""
    _, X = planted_ratings(n_users=120, n_items=40, density=0.5)
    model = FunkSVD(n_components=3, max_iter=10, random_state=0, dtype="float64").fit(X[:80])
    from .test_funk_svd import documented_score

    assert model.score(X[80:]) == pytest.approx(documented_score(model, X[80:]), rel=1e-9)
