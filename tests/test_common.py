"""scikit-learn's common estimator checks."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from funksgd import BaselineOnly, FunkSVD

# These two checks fit on every sparse format (our own test below does that too) and then
# assert that ``predict`` returns one value per row, as a supervised model would. FunkSVD's
# ``predict`` returns each row's predicted rating of every item, shape (n_rows, n_items).
PREDICT_IS_A_MATRIX = (
    "predict returns a (n_rows, n_items) ratings matrix, not one value per row; "
    "sparse input of every format is covered by test_every_sparse_format"
)
EXPECTED_FAILED_CHECKS = {
    "check_estimator_sparse_array": PREDICT_IS_A_MATRIX,
    "check_estimator_sparse_matrix": PREDICT_IS_A_MATRIX,
}


@parametrize_with_checks(
    [FunkSVD(n_components=3, max_iter=5, random_state=0), BaselineOnly()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS if isinstance(est, FunkSVD) else {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("container", [sp.csr_array, sp.csr_matrix])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "dok", "lil", "dia", "bsr"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_every_sparse_format(container, fmt, index_dtype):
    rng = np.random.RandomState(0)
    dense = rng.uniform(1, 5, size=(40, 6))
    dense[dense < 2.5] = 0  # these zeros are not stored, so they are missing ratings
    X = container(dense).asformat(fmt)
    if fmt in ("csr", "csc", "coo", "bsr"):
        for name in ("indices", "indptr", "row", "col"):
            if hasattr(X, name):
                setattr(X, name, getattr(X, name).astype(index_dtype))
    model = FunkSVD(n_components=3, max_iter=5, random_state=0).fit(X)
    reference = FunkSVD(n_components=3, max_iter=5, random_state=0).fit(
        np.where(dense == 0, np.nan, dense)
    )
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    assert model.transform(X).shape == (40, 3)
    assert model.predict(X).shape == (40, 6)
