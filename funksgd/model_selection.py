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


class KFoldRatings:
    """K-fold cross-validation over ratings (not users), like Surprise's ``KFold``.

    The stored ratings of ``X`` are shuffled and dealt into ``n_splits`` folds
    of near-equal size; split ``f`` tests on fold ``f`` and trains on the
    others, so every rating is tested exactly once and every user keeps the
    rest of their ratings in training (weak generalisation). Scikit-learn's
    ``KFold`` would split users instead: use it, with
    :meth:`funksgd.FunkSVD.score`, for new-user (strong) generalisation.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle.

    Examples
    --------
    >>> from funksgd.datasets import make_ratings
    >>> from funksgd.model_selection import KFoldRatings
    >>> X = make_ratings(n_users=50, n_items=40, n_ratings=500, random_state=0)
    >>> sum(X_test.nnz for _, X_test in KFoldRatings(5, random_state=0).split(X))
    500
    """

    def __init__(self, n_splits=5, *, random_state=None):
        self.n_splits = n_splits
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """The number of splits."""
        return self.n_splits

    def split(self, X):
        """Yield ``(X_train, X_test)``, CSR arrays of the shape of ``X``, for each fold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings.

        Yields
        ------
        X_train, X_test : scipy.sparse.csr_array of shape (n_users, n_items)
        """
        n_splits = self.n_splits
        if isinstance(n_splits, bool) or not isinstance(n_splits, Integral) or n_splits < 2:
            raise ValueError(f"n_splits must be an integer of at least 2, got {n_splits!r}.")
        X = check_ratings(X)
        if X.nnz < n_splits:
            raise ValueError(f"X holds {X.nnz} ratings: fewer than n_splits={n_splits}.")
        fold = np.empty(X.nnz, dtype=np.int64)
        fold[check_random_state(self.random_state).permutation(X.nnz)] = np.arange(X.nnz) % n_splits
        for f in range(n_splits):
            yield split_by_mask(X, fold == f)


def cross_validate_ratings(
    estimator, X, *, cv=5, scoring=("rmse", "mae"), k=10, relevance_threshold=None,
    random_state=None, return_estimator=False,
):  # fmt: skip
    """Rating-level K-fold cross-validation, like Surprise's ``cross_validate``.

    For each split of :class:`KFoldRatings`, a clone of ``estimator`` is
    fitted on the training ratings and scored on the test ratings of the same
    users: rating metrics from ``predict_ratings`` on the test pairs, ranking
    metrics from :func:`funksgd.metrics.ranking_metrics_at_k` (the training
    items of each user excluded).

    Parameters
    ----------
    estimator : estimator with ``fit``, ``predict_ratings`` and ``recommend``
        For example :class:`funksgd.FunkSVD`; cloned for each split.
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Ratings.
    cv : int or KFoldRatings, default=5
        Number of folds, or the splitter.
    scoring : str or sequence of str, default=("rmse", "mae")
        Among ``"rmse"``, ``"mae"``, ``"precision"``, ``"recall"``, ``"ndcg"``,
        ``"map"``, ``"hit_rate"``, ``"coverage"``.
    k : int, default=10
        List length of the ranking metrics.
    relevance_threshold : float, default=None
        Test ratings at or above it are relevant for the ranking metrics.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds when ``cv`` is an int.
    return_estimator : bool, default=False
        Also return the fitted estimators.

    Returns
    -------
    results : dict of ndarray of shape (n_splits,)
        ``test_<metric>`` for each metric of ``scoring``, ``fit_time`` and
        ``score_time`` (seconds), and ``estimator`` (a list) when asked.

    Examples
    --------
    >>> from funksgd import FunkSVD
    >>> from funksgd.datasets import make_ratings
    >>> from funksgd.model_selection import cross_validate_ratings
    >>> X = make_ratings(n_users=100, n_items=50, n_ratings=2000, random_state=0)
    >>> result = cross_validate_ratings(FunkSVD(n_components=5, random_state=0), X, cv=3,
    ...                                 random_state=0)
    >>> result["test_rmse"].shape
    (3,)
    """
    from time import perf_counter

    from sklearn.base import clone

    from .metrics import RANKING_METRICS, mae, ranking_metrics_at_k, rmse

    scoring = (scoring,) if isinstance(scoring, str) else tuple(scoring)
    known = ("rmse", "mae", *RANKING_METRICS, "coverage")
    unknown = [name for name in scoring if name not in known]
    if unknown or not scoring:
        raise ValueError(f"scoring must name metrics among {known}, got {scoring!r}.")
    if isinstance(cv, KFoldRatings):
        splitter = cv
    elif isinstance(cv, Integral) and not isinstance(cv, bool):
        splitter = KFoldRatings(cv, random_state=random_state)
    else:
        raise TypeError(f"cv must be an int or a KFoldRatings, got {cv!r}.")
    results = {f"test_{name}": [] for name in scoring}
    results.update(fit_time=[], score_time=[])
    fitted = []
    for X_train, X_test in splitter.split(X):
        start = perf_counter()
        model = clone(estimator).fit(X_train)
        results["fit_time"].append(perf_counter() - start)
        start = perf_counter()
        test = X_test.tocoo()
        pred = model.predict_ratings(test.row, test.col)
        errors = {"rmse": rmse(test.data, pred), "mae": mae(test.data, pred)}
        if any(name not in errors for name in scoring):
            errors.update(ranking_metrics_at_k(model, X_train, X_test, k, relevance_threshold))
        for name in scoring:
            results[f"test_{name}"].append(errors[name])
        results["score_time"].append(perf_counter() - start)
        fitted.append(model)
    results = {name: np.asarray(values) for name, values in results.items()}
    if return_estimator:
        results["estimator"] = fitted
    return results
