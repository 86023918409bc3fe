"""Splitting the ratings of one matrix for held-out evaluation."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._validation import check_ratings


def train_test_split_ratings(X, test_size=0.2, *, random_state=None):
    """Split the ratings of ``X`` into a training and a test matrix of the same shape.

    Every rating goes to exactly one of the two, chosen at random: unlike
    :func:`sklearn.model_selection.train_test_split`, users are not split,
    their ratings are (weak generalisation, as in the Netflix prize).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Ratings: stored entries of a sparse matrix, or non-NaN entries of a
        dense array.
    test_size : float or int, default=0.2
        Share of the ratings (float in (0, 1)) or number of ratings (int)
        in the test matrix.
    random_state : int, RandomState instance or None, default=None
        Seeds the split.

    Returns
    -------
    X_train, X_test : scipy.sparse.csr_array of shape (n_users, n_items)
        The two parts; explicit zeros stay stored.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from funksgd import FunkSVD, train_test_split_ratings
    >>> from funksgd.datasets import make_ratings
    >>> X = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=0)
    >>> X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    >>> X_train.nnz + X_test.nnz == X.nnz
    True
    >>> model = FunkSVD(n_components=10, random_state=0).fit(X_train)
    >>> test = X_test.tocoo()
    >>> rmse = np.sqrt(np.mean((model.predict_ratings(test.row, test.col) - test.data) ** 2))
    """
    X = check_ratings(X)
    n_test = _n_test(test_size, X.nnz)
    rng = check_random_state(random_state)
    in_test = np.zeros(X.nnz, dtype=bool)
    in_test[rng.choice(X.nnz, n_test, replace=False)] = True
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))

    def part(mask):
        return sp.csr_array((X.data[mask], (rows[mask], X.indices[mask])), shape=X.shape)

    return part(~in_test), part(in_test)


def _n_test(test_size, n_ratings):
    if n_ratings < 2:
        raise ValueError(f"X holds {n_ratings} rating: splitting needs at least 2.")
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, Real):
        raise TypeError(f"test_size must be a fraction or a count, got {test_size!r}.")
    if isinstance(test_size, Integral):
        if not 0 < test_size < n_ratings:
            raise ValueError(
                f"test_size={test_size} ratings must be between 1 and {n_ratings - 1}."
            )
        return int(test_size)
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size={test_size} must be a fraction in (0, 1) or a count.")
    return min(max(1, round(float(test_size) * n_ratings)), n_ratings - 1)
