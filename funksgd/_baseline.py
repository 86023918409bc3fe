"""BaselineOnly: the bias-only yardstick, global mean plus regularised user and item biases."""

from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._inference import SCORE_HOLDOUT_FRACTION, SCORE_SEED, check_indices
from ._validation import Integer, check_ratings, row_indices
from .model_selection import choose_per_row, split_by_mask


class BaselineOnly(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Global mean plus regularised user and item biases, fitted by alternating least squares.

    Predicts ``r_ui = mu + b_u + b_i``: the model every collaborative filter must beat
    (Koren 2010, section 2.1; Surprise's ``BaselineOnly``). Each step solves the item
    biases with the users' fixed, then the user biases with the items' fixed::

        b_i = sum_u (r_ui - mu - b_u) / (reg_items + n_i)
        b_u = sum_i (r_ui - mu - b_i) / (reg_users + n_u)

    As a transformer it gives each row's user bias (one feature), solved from its
    ratings. The penalties do not grow with the counts, so a user or item with few ratings is
    shrunk towards the mean more than one with many.

    Parameters
    ----------
    reg_items : float, default=10.0
        Penalty of the item biases (Surprise's ``reg_i``).
    reg_users : float, default=15.0
        Penalty of the user biases (Surprise's ``reg_u``).
    max_iter : int, default=10
        Alternating steps (Surprise's ``n_epochs``).

    Attributes
    ----------
    global_mean_ : float
        Mean training rating.
    user_bias_ : ndarray of shape (n_users,)
        User biases.
    item_bias_ : ndarray of shape (n_items,)
        Item biases.
    n_iter_ : int
        Alternating steps run (``max_iter``).
    n_features_in_ : int
        Number of items seen in ``fit``.

    See Also
    --------
    FunkSVD : Adds latent factors to the same biases.

    References
    ----------
    .. [1] Y. Koren, "Factor in the neighbors: scalable and accurate collaborative
       filtering", ACM TKDD 4(1), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from funksgd import BaselineOnly
    >>> X = np.array([[5, 3, np.nan], [4, np.nan, 1], [np.nan, 1, 2]])
    >>> model = BaselineOnly().fit(X)
    >>> round(model.global_mean_, 3)
    2.667
    >>> model.predict_ratings([0, 2], [2, 0]).round(2)
    array([2.63, 2.84])
    """

    _parameter_constraints = {
        "reg_items": [Interval(Real, 0, None, closed="left")],
        "reg_users": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Integer(1, None, closed="left")],
    }

    def __init__(self, *, reg_items=10.0, reg_users=15.0, max_iter=10):
        self.reg_items = reg_items
        self.reg_users = reg_users
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the global mean and the biases to the ratings in ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings, as :meth:`FunkSVD.fit` takes them.
        y : None
            Ignored.

        Returns
        -------
        self : BaselineOnly
            The fitted estimator.
        """
        ratings = check_ratings(X, dtype=np.float64)
        rows, cols = row_indices(ratings), ratings.indices
        mean = float(ratings.data.mean())
        residual = ratings.data - mean
        n_users, n_items = ratings.shape
        user_counts = np.bincount(rows, minlength=n_users)
        item_counts = np.bincount(cols, minlength=n_items)
        user_bias = np.zeros(n_users)
        for _ in range(self.max_iter):
            item_sums = np.bincount(cols, weights=residual - user_bias[rows], minlength=n_items)
            item_bias = item_sums / np.maximum(self.reg_items + item_counts, 1e-300)
            user_sums = np.bincount(rows, weights=residual - item_bias[cols], minlength=n_users)
            user_bias = user_sums / np.maximum(self.reg_users + user_counts, 1e-300)
        validate_data(self, X, skip_check_array=True, reset=True)
        self.global_mean_, self.user_bias_, self.item_bias_ = mean, user_bias, item_bias
        self.n_iter_ = self.max_iter
        return self

    def transform(self, X):
        """User biases of the rows of ``X``, solved with the item biases held fixed.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings of the users; they may be new users.

        Returns
        -------
        user_bias : ndarray of shape (n_rows, 1)
            Their biases (0 for a row without ratings), as one feature.
        """
        check_is_fitted(self)
        X = check_ratings(X, dtype=np.float64, allow_empty=True)
        validate_data(self, X, skip_check_array=True, reset=False)
        residual = X.data - self.global_mean_ - self.item_bias_[X.indices]
        sums = np.bincount(row_indices(X), weights=residual, minlength=X.shape[0])
        return (sums / np.maximum(self.reg_users + np.diff(X.indptr), 1e-300))[:, None]

    def predict_ratings(self, users, items):
        """``global_mean_ + user_bias_[users] + item_bias_[items]`` for index pairs.

        Parameters
        ----------
        users, items : array-like of int of shape (n_pairs,)
            Training rows (users) and columns (items) of each pair.

        Returns
        -------
        ratings : ndarray of shape (n_pairs,)
            The pairs' predicted ratings, float64.
        """
        check_is_fitted(self)
        users = check_indices(users, len(self.user_bias_), "users")
        items = check_indices(items, len(self.item_bias_), "items")
        if users.shape != items.shape:
            raise ValueError(
                f"users and items must have the same length, got {len(users)} and {len(items)}."
            )
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]

    def score(self, X, y=None):
        """Negative RMSE on held-out ratings of the rows of ``X``, as ``FunkSVD.score``.

        In each row with at least two ratings a seeded 20% (at least one) are held
        out; the user biases are solved from the rest (:meth:`transform`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings of the rows to score; they may be new users.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the held-out RMSE (higher is better).
        """
        check_is_fitted(self)
        X = check_ratings(X, dtype=np.float64)
        validate_data(self, X, skip_check_array=True, reset=False)
        mask = choose_per_row(X, SCORE_HOLDOUT_FRACTION, np.random.RandomState(SCORE_SEED))
        known, held = split_by_mask(X, mask)
        if held.nnz == 0:
            raise ValueError("score needs at least one row of X with two or more ratings.")
        user_bias = self.transform(known)[:, 0]
        pred = self.global_mean_ + user_bias[row_indices(held)] + self.item_bias_[held.indices]
        return -float(np.sqrt(np.mean((pred - held.data) ** 2)))

    @property
    def _n_features_out(self):
        return 1

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        return tags
