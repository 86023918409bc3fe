"""FunkSVD: biased matrix factorization of a ratings matrix by stochastic gradient descent."""

import time
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import cpu_count, effective_n_jobs
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from . import _sgd
from ._blocks import BlockedRatings, choose_n_blocks
from ._validation import Integer, check_memory, check_ratings, csr_arrays

# score(): share of each row's ratings held out, and the seed that picks them. The seed is
# fixed so every candidate of a grid search is scored on the same split.
SCORE_HOLDOUT_FRACTION = 0.2
SCORE_SEED = 0


class FunkSVD(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Funk-SVD: biased matrix factorization of a ratings matrix by SGD.

    Models a rating as ``mu + b_u + b_i + p_u . q_i`` and fits it by stochastic
    gradient descent over the observed ratings only, in a compiled loop that
    releases the GIL. For each rating the error is computed once from the
    current factors, the learning rate is folded into it
    (``e = eta0 * (r - pred)``), and the biases and all ``n_components`` factors
    of that user and item are updated with it (Koren's simultaneous update)::

        b_u += e - eta0 * alpha * b_u          p_u += e * q_i - eta0 * alpha * p_u
        b_i += e - eta0 * alpha * b_i          q_i += e * p_u - eta0 * alpha * q_i

    After the last epoch the user side is solved exactly with the items held
    fixed (see :meth:`transform`), so ``user_factors_`` equals
    ``transform(X)`` on the training matrix.

    Parameters
    ----------
    n_components : int, default=100
        Number of latent factors ``k``.
    alpha : float, default=0.05
        L2 regularisation applied at every update to the factors and biases
        involved. 0.05 was chosen on MovieLens-100k: see the user guide.
    eta0 : float, default=0.005
        SGD learning rate.
    max_iter : int, default=20
        Number of epochs (passes over all ratings).
    biased : bool, default=True
        Model the global mean and user and item biases. False is plain Funk
        SVD, ``r ~ p_u . q_i``.
    init_std : float, default=0.1
        Standard deviation of the normal initial factors.
    shuffle : bool, default=True
        Visit the blocks of ratings in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors and the visiting order. A fixed seed gives
        bit-identical factors, whatever ``n_jobs``.
    verbose : int, default=0
        Print the training RMSE after each epoch when positive.
    dtype : {"float32", "float64"}, default="float32"
        Floating type of the factors and of the arithmetic.
    n_jobs : int, default=None
        Threads for training, fold-in and prediction. None means 1, -1 all
        cores. The result does not depend on it.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_items)
        Item factors, transposed (a view of ``item_factors_``).
    item_factors_ : ndarray of shape (n_items, n_components)
        Item factors, each item's ``k`` values contiguous.
    user_factors_ : ndarray of shape (n_users, n_components)
        Factors of the training users, solved exactly after the last epoch.
    user_bias_ : ndarray of shape (n_users,)
        User biases (zeros when ``biased=False``).
    item_bias_ : ndarray of shape (n_items,)
        Item biases (zeros when ``biased=False``).
    global_mean_ : float
        Mean training rating (0 when ``biased=False``).
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training RMSE of each epoch, from the errors seen during that epoch.
    n_features_in_ : int
        Number of items seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Item names, when ``X`` was a DataFrame with string column names.

    See Also
    --------
    sklearn.decomposition.TruncatedSVD : Factorises a matrix whose missing
        entries are zeros, which ratings are not.
    sklearn.decomposition.NMF : Non-negative factorization of a complete matrix.

    Notes
    -----
    A sparse ``X`` holds one rating per stored entry, explicit zeros included;
    absent entries are missing. In a dense ``X`` NaN marks a missing rating.

    References
    ----------
    .. [1] S. Funk, "Netflix Update: Try This at Home", 2006.
    .. [2] Y. Koren, R. Bell and C. Volinsky, "Matrix factorization techniques
       for recommender systems", IEEE Computer 42(8), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from funksgd import FunkSVD
    >>> X = np.array([[5, 3, np.nan, 1],
    ...               [4, np.nan, np.nan, 1],
    ...               [1, 1, np.nan, 5],
    ...               [np.nan, 1, 5, 4]])
    >>> model = FunkSVD(n_components=2, alpha=0.02, eta0=0.05, max_iter=100,
    ...                 random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    >>> model.predict_ratings([0, 3, 1], [0, 2, 1]).round(1)  # two known, one missing
    array([5. , 5. , 2.2], dtype=float32)
    """

    _parameter_constraints = {
        "n_components": [Integer(1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Integer(1, None, closed="left")],
        "biased": ["boolean"],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "n_jobs": [Integer(None, -1, closed="right"), Integer(1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components=100,
        *,
        alpha=0.05,
        eta0=0.005,
        max_iter=20,
        biased=True,
        init_std=0.1,
        shuffle=True,
        random_state=None,
        verbose=0,
        dtype="float32",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.eta0 = eta0
        self.max_iter = max_iter
        self.biased = biased
        self.init_std = init_std
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the factors to the ratings in ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings: stored entries of a sparse matrix, or non-NaN entries of a
            dense array.
        y : None
            Ignored.

        Returns
        -------
        self : FunkSVD
            The fitted estimator.
        """
        with _unchanged_on_error(self):
            ratings = self._check_X(X, reset=True)
            self._fit(ratings)
        return self

    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return the training users' factors.

        Equal to ``fit(X).transform(X)``, without solving the user side twice.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings.
        y : None
            Ignored.

        Returns
        -------
        W : ndarray of shape (n_users, n_components)
            User factors.
        """
        return self.fit(X).user_factors_.copy()

    def _fit(self, X):
        dtype = np.dtype(self.dtype)
        rng = check_random_state(self.random_state)
        n_users, n_items = X.shape
        k = self.n_components
        check_memory(
            (n_users + n_items) * k * (8 + dtype.itemsize),
            f"n_components={k} for {n_users} users and {n_items} items",
        )
        item_factors = rng.normal(0.0, self.init_std, (n_items, k)).astype(dtype)
        user_factors = rng.normal(0.0, self.init_std, (n_users, k)).astype(dtype)
        user_bias = np.zeros(n_users, dtype=dtype)
        item_bias = np.zeros(n_items, dtype=dtype)
        global_mean = float(X.data.mean(dtype=np.float64)) if self.biased else 0.0
        rmse_limit = _divergence_limit(X.data, global_mean, k, self.init_std)
        # counted now: bincount's int64 copy of the indices would set the peak memory later
        unrated = np.bincount(X.indices, minlength=n_items) == 0

        n_blocks = choose_n_blocks(n_users, n_items, X.nnz, k, dtype.itemsize)
        blocks = BlockedRatings(X, n_blocks, rng)
        block_loss = np.zeros(n_blocks * n_blocks)
        n_threads = self._n_threads()
        loss_curve = []
        for epoch in range(self.max_iter):
            start = time.perf_counter()
            squared_error = _sgd.sgd_epoch(
                blocks.users, blocks.items, blocks.ratings, blocks.block_ptr,
                blocks.schedule(rng, self.shuffle), user_factors, item_factors,
                user_bias, item_bias, global_mean, self.eta0, self.alpha, self.biased,
                n_threads, block_loss,
            )  # fmt: skip
            rmse = np.sqrt(squared_error / X.nnz)
            if not (
                rmse <= rmse_limit  # False for NaN too
                and np.isfinite(item_factors).all()
                and np.isfinite(item_bias).all()
            ):
                raise ValueError(
                    f"Training diverged at epoch {epoch + 1} (the training RMSE became {rmse}): "
                    f"eta0={self.eta0} is too large for ratings from {X.data.min():.3g} to "
                    f"{X.data.max():.3g} (or init_std={self.init_std} for the factors). Try a "
                    "smaller eta0, or centre and scale the ratings."
                )
            loss_curve.append(float(rmse))
            if self.verbose:
                print(
                    f"epoch {epoch + 1}/{self.max_iter}: training RMSE {rmse:.4f}, "
                    f"{X.nnz / (time.perf_counter() - start) / 1e6:.1f}M ratings/s"
                )
        # items nobody rated were never updated: zero, not their random start, so that their
        # predicted rating is the bias-only global_mean_ + user bias
        item_factors[unrated] = 0
        self.item_factors_ = item_factors
        self.item_bias_ = item_bias
        self.global_mean_ = global_mean
        self.user_factors_, self.user_bias_ = self._fold_in(X)
        self.n_iter_ = self.max_iter
        self.loss_curve_ = loss_curve

    # --------------------------------------------------------------- inference
    def _check_X(self, X, *, reset, allow_empty=False):
        """Validated canonical CSR ratings in the factors' dtype."""
        dtype = np.dtype(self.dtype) if reset else self.item_factors_.dtype
        ratings = check_ratings(X, dtype=dtype, allow_empty=allow_empty)
        validate_data(self, X, skip_check_array=True, reset=reset)
        return ratings

    def _n_threads(self):
        # more threads than CPUs never helps, and thousands would fail to start
        n_threads = min(effective_n_jobs(self.n_jobs), cpu_count())
        if n_threads > 1 and not _sgd.openmp_enabled():
            warnings.warn(
                "funksgd was built without OpenMP support: n_jobs is ignored and "
                "one thread is used.",
                RuntimeWarning,
                stacklevel=3,
            )
            return 1
        return n_threads

    def _fold_in(self, X):
        """Exact user factors and biases for the CSR rows of ``X``, items held fixed."""
        n_rows = X.shape[0]
        dtype = self.item_factors_.dtype
        user_factors = np.zeros((n_rows, self.n_components), dtype=dtype)
        user_bias = np.zeros(n_rows, dtype=dtype)
        if X.nnz == 0:
            return user_factors, user_bias
        max_row_length = int(np.diff(X.indptr).max())
        n_threads = self._n_threads()
        dim = self.n_components + 1
        width = max(max_row_length, dim)
        check_memory(
            n_threads * (width + dim + 2) * dim * dtype.itemsize,
            f"Folding in rows of up to {max_row_length} ratings with n_components="
            f"{self.n_components} on {n_threads} threads",
        )
        with threadpool_limits(limits=1, user_api="blas"):
            failures = _sgd.fold_in(
                *csr_arrays(X), self.item_factors_, self.item_bias_,
                self.global_mean_, self.alpha, self.biased, max_row_length,
                n_threads, user_factors, user_bias,
            )  # fmt: skip
        if failures:
            raise ValueError(
                f"The least-squares fold-in failed for {failures} rows: the item factors are "
                f"too large or too ill-conditioned for an exact solve in {dtype}. Training may "
                "have diverged (try a smaller eta0, or centre and scale the ratings); else "
                "increase alpha or use dtype='float64'."
            )
        _check_finite(user_factors, "The folded-in user factors")
        _check_finite(user_bias, "The folded-in user biases")
        return user_factors, user_bias

    def transform(self, X):
        """Factors of the users in ``X``, by exact fold-in.

        Each row's factors (and bias) minimise the same regularised squared
        error as training, with the items held fixed: a ridge regression per
        row whose penalty is ``alpha`` times the row's number of ratings, as
        the per-update L2 of SGD implies. Rows may be new users.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings of the users to fold in.

        Returns
        -------
        W : ndarray of shape (n_rows, n_components)
            User factors. Rows without ratings get zeros.
        """
        check_is_fitted(self)
        return self._fold_in(self._check_X(X, reset=False, allow_empty=True))[0]

    def inverse_transform(self, X):
        """Predicted ratings from user factors.

        The row biases are not part of the factors, so they are taken as 0:
        the result is ``X @ components_ + global_mean_ + item_bias_``. Use
        :meth:`predict` to include them.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_components)
            User factors, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_rows, n_items)
            Predicted ratings without the user biases.
        """
        check_is_fitted(self)
        W = _check_factors(X, self.n_components, self.item_factors_.dtype)
        self._check_output_memory(len(W))
        return _check_finite(
            W @ self.components_ + (self.global_mean_ + self.item_bias_), "The predicted ratings"
        )

    def predict(self, X):
        """Predicted ratings of every item for each row of ``X``, after fold-in.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings of the users to predict for.

        Returns
        -------
        ratings : ndarray of shape (n_rows, n_items)
            ``global_mean_ + b_u + item_bias_ + W @ components_``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False, allow_empty=True)
        self._check_output_memory(X.shape[0])
        W, bias = self._fold_in(X)
        ratings = W @ self.components_ + (self.global_mean_ + self.item_bias_) + bias[:, None]
        return _check_finite(ratings, "The predicted ratings")

    def predict_ratings(self, users, items):
        """Predicted ratings for (training user, item) index pairs.

        Parameters
        ----------
        users : array-like of int of shape (n_pairs,)
            Row indices of the matrix passed to ``fit``.
        items : array-like of int of shape (n_pairs,)
            Column indices.

        Returns
        -------
        ratings : ndarray of shape (n_pairs,)
            Predicted ratings, in the factors' dtype.

        Examples
        --------
        Held-out RMSE of ratings split off with
        :func:`~funksgd.train_test_split_ratings`::

            test = X_test.tocoo()
            pred = model.predict_ratings(test.row, test.col)
            rmse = np.sqrt(np.mean((pred - test.data) ** 2))
        """
        check_is_fitted(self)
        users = _check_indices(users, len(self.user_factors_), "users")
        items = _check_indices(items, len(self.item_factors_), "items")
        if users.shape != items.shape:
            raise ValueError(
                f"users and items must have the same length, got {len(users)} and {len(items)}."
            )
        out = np.empty(len(users), dtype=self.item_factors_.dtype)
        _sgd.predict_pairs(
            users, items, self.user_factors_, self.item_factors_, self.user_bias_,
            self.item_bias_, self.global_mean_, self.biased, self._n_threads(), out,
        )  # fmt: skip
        return _check_finite(out, "The predicted ratings")

    def recommend(self, users=None, X=None, *, n=10, exclude_rated=True):
        """Top-``n`` items for training users (by index) or for new users (by ratings).

        Parameters
        ----------
        users : array-like of int of shape (n_rows,), default=None
            Training users: row indices of the matrix given to ``fit``. Their
            factors from ``fit`` are used.
        X : {array-like, sparse matrix} of shape (n_rows, n_items), default=None
            Ratings. Without ``users``, the users to recommend for: their factors
            are folded in from these ratings. With ``users``, row ``j`` holds
            the items ``users[j]`` has rated (e.g. ``X_train[users]``).
        n : int, default=10
            Number of items per user.
        exclude_rated : bool, default=True
            Leave out the items a row of ``X`` has rated. Needs ``X``.

        Returns
        -------
        items : ndarray of shape (n_rows, n), dtype int64
            Item indices, best first. -1 pads a row with fewer than ``n``
            candidate items.
        scores : ndarray of shape (n_rows, n)
            Predicted ratings of those items (NaN where padded).
        """
        check_is_fitted(self)
        if users is None and X is None:
            raise ValueError("Pass users (training row indices), X (ratings), or both.")
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        if not isinstance(exclude_rated, (bool, np.bool_)):
            raise TypeError(f"exclude_rated must be True or False, got {exclude_rated!r}.")
        if X is not None:
            X = self._check_X(X, reset=False, allow_empty=True)
        if users is None:
            W, bias = self._fold_in(X)
        else:
            users = _check_indices(users, len(self.user_factors_), "users")
            if X is not None and X.shape[0] != len(users):
                raise ValueError(
                    f"X has {X.shape[0]} rows but {len(users)} users were given: row j of X "
                    "must hold the ratings of users[j]."
                )
            W, bias = self.user_factors_[users], self.user_bias_[users]
        if exclude_rated and X is None:
            raise ValueError(
                "exclude_rated=True needs X, the users' ratings (e.g. X_train[users]); "
                "or pass exclude_rated=False."
            )
        check_memory(len(W) * n * 16, f"recommend(n={n}) for {len(W)} users")
        return _top_n(W, bias + self.global_mean_, self, X if exclude_rated else None, n)

    def score(self, X, y=None):
        """Negative RMSE on held-out ratings of the rows of ``X`` (higher is better).

        The protocol is strong generalisation, so that ``GridSearchCV`` can score
        rows the model did not train on: in each row with at least two ratings,
        a seeded random 20% (at least one) of its ratings are held out, the rest
        are folded in (see :meth:`transform`), and the held-out ratings are
        predicted. The split depends only on ``X``, so all candidates of a
        search are scored on the same ratings.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the root mean squared error of the held-out ratings.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        known, held = _split_rows(X, SCORE_HOLDOUT_FRACTION, np.random.RandomState(SCORE_SEED))
        if held.nnz == 0:
            raise ValueError("score needs at least one row of X with two or more ratings.")
        W, bias = self._fold_in(known)
        held = held.tocoo()
        rows, cols = held.row.astype(np.int32), held.col.astype(np.int32)
        pred = np.empty(held.nnz, dtype=W.dtype)
        _sgd.predict_pairs(
            rows, cols, W, self.item_factors_, bias, self.item_bias_,
            self.global_mean_, self.biased, self._n_threads(), pred,
        )  # fmt: skip
        return -float(np.sqrt(np.mean((pred.astype(np.float64) - held.data) ** 2)))

    def _check_output_memory(self, n_rows):
        n_items = len(self.item_factors_)
        check_memory(
            2 * n_rows * n_items * self.item_factors_.dtype.itemsize,
            f"A ({n_rows}, {n_items}) matrix of predicted ratings",
        )

    @property
    def components_(self):
        return self.item_factors_.T

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        return tags


def _divergence_limit(ratings, global_mean, n_components, init_std):
    """A training RMSE above this means diverging, not learning.

    Ten times the RMSE of always predicting the global mean (0 when unbiased) plus the
    spread of the initial predictions, and a sliver of the rating scale for rounding.
    """
    squares = 0.0
    for start in range(0, len(ratings), 1 << 16):  # in chunks: no copy of all the ratings
        centred = ratings[start : start + (1 << 16)].astype(np.float64) - global_mean
        squares += centred @ centred
    baseline = np.sqrt(squares / len(ratings)) + np.sqrt(n_components) * init_std**2
    return 10 * baseline + 1e-3 * max(ratings.max(), -ratings.min()) + 1e-30


@contextmanager
def _unchanged_on_error(estimator):
    """Put back the estimator's attributes if the block fails: a failed fit loses no model."""
    state = vars(estimator).copy()
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(state)
        raise


def _check_finite(values, what):
    """Return ``values``, or raise if any overflowed to inf or NaN (huge ratings or factors)."""
    if not np.isfinite(values).all():
        raise ValueError(
            f"{what} overflowed to inf or NaN in {values.dtype}: the ratings or factors are "
            "too large. Rescale the ratings, or use dtype='float64'."
        )
    return values


def _check_indices(indices, size, name):
    """1-D int32 indices in [0, size), or a ValueError naming the offending value."""
    indices = np.asarray(indices)
    if indices.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {indices.shape}.")
    if indices.dtype.kind not in "iu":
        if indices.size and (indices.dtype.kind != "f" or not np.all(indices == np.round(indices))):
            raise TypeError(f"{name} must be integer indices, got dtype {indices.dtype}.")
    bad = np.flatnonzero((indices < 0) | (indices >= size))
    if len(bad):
        raise ValueError(
            f"{name}[{bad[0]}] = {indices[bad[0]]} is out of range: the model knows {size} "
            f"{name} (indices 0..{size - 1})."
        )
    return indices.astype(np.int32)


def _check_factors(W, n_components, dtype):
    W = check_array(W, dtype=dtype)
    if W.shape[1] != n_components:
        raise ValueError(
            f"X has {W.shape[1]} columns but the model has n_components={n_components}."
        )
    return W


def _split_rows(X, fraction, rng):
    """Split the ratings of each CSR row: ``fraction`` (at least one) held out if it has two."""
    counts = np.diff(X.indptr)
    n_held = np.where(counts >= 2, np.maximum(1, np.round(fraction * counts)), 0)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    order = np.lexsort((rng.random_sample(X.nnz), rows))
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    held = rank < n_held[rows]
    return _select(X, ~held), _select(X, held)


def _select(X, mask):
    """The CSR ratings of ``X`` where ``mask`` holds, same shape."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return sp.csr_array((X.data[mask], (rows[mask], X.indices[mask])), shape=X.shape)


def _top_n(W, offsets, model, rated, n):
    """Best ``n`` items per row of ``W``, in chunks so memory stays bounded."""
    n_items = model.item_factors_.shape[0]
    take = min(n, n_items)
    items = np.full((len(W), n), -1, dtype=np.int64)
    scores = np.full((len(W), n), np.nan, dtype=W.dtype)
    chunk = max(1, (1 << 22) // n_items)
    for start in range(0, len(W), chunk):
        stop = min(start + chunk, len(W))
        block = W[start:stop] @ model.components_ + model.item_bias_ + offsets[start:stop, None]
        if rated is not None:
            sub = rated[start:stop]
            block[np.repeat(np.arange(stop - start), np.diff(sub.indptr)), sub.indices] = -np.inf
        best = np.argpartition(-block, take - 1, axis=1)[:, :take]
        best_scores = np.take_along_axis(block, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
        valid = np.isfinite(best_scores)
        items[start:stop, :take] = np.where(valid, best, -1)
        scores[start:stop, :take] = np.where(valid, best_scores, np.nan)
    return items, scores
