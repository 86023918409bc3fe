"""Memory: fitting holds one grouped copy of the ratings and the factors, nothing users x items.

tracemalloc sees NumPy's array buffers, so its peak during ``fit`` is the memory the fit
adds on top of the input matrix. The budget below is what the design needs (12 bytes per
rating for the (user, item, rating) triplets grouped by block, the item and user factors,
and a second user-factor array from the exact fold-in) plus 2 bytes per rating of slack:
one more int32 column, a second triplet copy or a dense users x items array breaks it.
"""

import tracemalloc

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings, ratings_to_csr


@pytest.fixture(scope="module")
def ratings():
    # 3M ratings; a dense float32 copy would take 60,000 x 6,000 x 4 bytes = 1.4 GB.
    return make_ratings(n_users=60_000, n_items=6_000, n_ratings=3_000_000, random_state=0)


def _peak_bytes(function, *args):
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("n_components", [8, 32])
def test_fit_holds_one_copy_of_the_triplets(ratings, n_components):
    X = ratings
    model = FunkSVD(n_components=n_components, max_iter=1, random_state=0)
    peak = _peak_bytes(model.fit, X)
    triplets = X.nnz * (4 + 4 + 4)
    factors = (X.shape[0] + X.shape[1]) * n_components * 4
    budget = triplets + factors + X.shape[0] * n_components * 4 + 2 * X.nnz + (1 << 20)
    assert peak < budget, f"fit peaked at {peak / 1e6:.0f} MB, budget {budget / 1e6:.0f} MB"
    assert peak > triplets  # the measurement sees the grouped copy


@pytest.mark.slow
def test_ratings_to_csr_memory(ratings):
    # Inputs aside, ratings_to_csr needs the int32 row and column codes and the CSR output.
    coo = ratings.tocoo()
    users, items, values = coo.row.astype(np.int32) * 3 + 1, coo.col.astype(np.int32), coo.data
    del coo
    peak = _peak_bytes(ratings_to_csr, users, items, values)
    budget = ratings.nnz * (4 + 4 + 4 + 4 + 2) + (1 << 20)
    assert peak < budget, f"ratings_to_csr peaked at {peak / 1e6:.0f} MB"


@pytest.mark.slow
def test_split_makes_the_two_parts_and_little_else(ratings):
    # the parts take 8 bytes per rating (float32 rating, int32 item); a boolean mask 1
    # and the test positions and rows 16 per test rating: 12.2 in all at test_size=0.2.
    # Drawing the test set by permuting all ratings, or an int64 row per rating, breaks it.
    peak = _peak_bytes(train_test_split_ratings, ratings, 0.2)
    assert peak < 12.5 * ratings.nnz + 8 * ratings.shape[0] * 4


@pytest.mark.slow
@pytest.mark.parametrize("n_components", [8, 32])
def test_early_stopping_splits_with_the_splitters_memory_bound(ratings, n_components):
    # On top of a plain fit's triplets (12 B per training rating), early stopping holds the
    # training part as CSR (8 B), the validation ratings as CSR then as triplets with
    # float64 ratings (8 + 16 B each), a 1-byte mask per rating, and a copy of the factors
    # at the best epoch. A permutation of all ratings, or an int64 row index per rating
    # (the COO rebuild the splitter avoids), adds 8 B per rating and breaks it.
    X = ratings
    model = FunkSVD(n_components=n_components, max_iter=1, early_stopping=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        peak = _peak_bytes(model.fit, X)
    fraction = model.validation_fraction
    per_rating = (12 + 8) * (1 - fraction) + (8 + 16) * fraction + 1 + 1.5
    factors = (X.shape[0] + X.shape[1]) * n_components * 4
    budget = per_rating * X.nnz + 2 * factors + X.shape[0] * n_components * 4 + (1 << 20)
    assert peak < budget, f"fit peaked at {peak / 1e6:.0f} MB, budget {budget / 1e6:.0f} MB"
