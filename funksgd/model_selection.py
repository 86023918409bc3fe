"""Splitting the ratings of one matrix for held-out evaluation."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._validation import check_ratings, row_indices


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
    >>> print(f"test RMSE {rmse:.2f}")
    test RMSE 0.81

    Predicting every test rating by the training mean does worse:

    >>> print(f"{np.sqrt(np.mean((X_train.data.mean() - test.data) ** 2)):.2f}")
    1.00
    """
    X = check_ratings(X)
    return split_ratings(X, test_size, check_random_state(random_state))


def split_ratings(X, test_size, rng):
    """Split canonical CSR ratings at random into two CSR parts: ``test_size`` of them held.

    The one splitter of ratings: ``train_test_split_ratings``, early stopping's
    validation ratings and, with :func:`choose_per_row`, ``FunkSVD.score`` use it.
    """
    return split_by_mask(X, _choose(X.nnz, _n_test(test_size, X.nnz), rng))


def split_by_mask(X, in_test):
    """The CSR ratings of ``X`` where ``in_test`` is False and where it is True.

    Builds both parts straight from the mask: no row index per rating, no COO round
    trip (at 100M ratings these took 4 GiB more than the two parts). ``in_test`` is
    overwritten.
    """
    test = np.flatnonzero(in_test)
    test_rows = np.searchsorted(X.indptr, test, side="right") - 1
    test_indptr = np.zeros_like(X.indptr)
    np.cumsum(np.bincount(test_rows, minlength=X.shape[0]), out=test_indptr[1:])
    X_test = sp.csr_array((X.data[test], X.indices[test], test_indptr), shape=X.shape)
    del test, test_rows
    in_train = np.logical_not(in_test, out=in_test)
    X_train = sp.csr_array(
        (X.data[in_train], X.indices[in_train], X.indptr - test_indptr), shape=X.shape
    )
    return X_train, X_test


def choose_per_row(X, fraction, rng):
    """A mask of ratings to hold out: in each CSR row with at least two ratings, a random
    ``fraction`` of them (at least one)."""
    counts = np.diff(X.indptr)
    n_held = np.where(counts >= 2, np.maximum(1, np.round(fraction * counts)), 0)
    rows = row_indices(X)
    order = np.lexsort((rng.random_sample(X.nnz), rows))
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    return rank < n_held[rows]


def _choose(n, k, rng, chunk=1 << 22):
    """A boolean mask of length ``n`` with ``k`` entries True, every such mask equally likely.

    Chunk by chunk: how many of the ``k`` fall in a chunk is hypergeometric, and which
    ones a uniform draw inside the chunk, so memory stays at one chunk's permutation
    (``rng.choice(n, k, replace=False)`` permutes all ``n``: 800 MB for 100M ratings).
    """
    mask = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        rest = n - start
        count = k if size == rest else rng.hypergeometric(k, rest - k, size)
        mask[start + rng.choice(size, count, replace=False)] = True
        k -= count
    return mask


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
