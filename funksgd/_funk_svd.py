"""FunkSVD, the estimator: parameters, input checks and fitted attributes.

Training is the engine's (``_engine.py``), predictions the inference module's
(``_inference.py``); this front validates, calls them and stores one fitted state.
"""

from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _engine, _inference, _ranking, _tuning
from ._inference import FittedAttributes, SimilarRows
from ._progress import EpochPrinter
from ._validation import Integer, check_n_jobs, check_ratings, item_counts


class FunkSVD(
    SimilarRows, FittedAttributes, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Funk-SVD: biased matrix factorization of a ratings matrix by SGD.

    Models a rating as ``mu + b_u + b_i + p_u . q_i`` and fits it by stochastic
    gradient descent over the observed ratings only, in a compiled loop that
    releases the GIL. For each rating the error is computed once from the
    current factors, the learning rate is folded into it
    (``e = eta * (r - pred)``), and the biases and all ``n_components`` factors
    of that user and item are updated with it (Koren's simultaneous update)::

        b_u += e - eta * alpha * b_u          p_u += e * q_i - eta * alpha * p_u
        b_i += e - eta * alpha * b_i          q_i += e * p_u - eta * alpha * q_i

    With ``algorithm="funk"`` the factors are trained one at a time instead,
    as in Funk's original method. After the last epoch the user side is solved
    with the items held fixed (see :meth:`transform`), so ``user_factors_``
    equals ``transform(X)`` on the training matrix, to the solve's tolerance.

    Parameters
    ----------
    n_components : int, default=100
        Number of latent factors ``k``.
    alpha : float, default=0.1
        L2 regularisation applied at every update to the factors and biases
        involved. 0.1 was chosen on MovieLens-100k: see the user guide.
    learning_rate : {"adagrad", "constant", "invscaling", "adaptive"}, default="adagrad"
        The learning-rate schedule ``eta``:

        - "adagrad": a rate per user and per item, ``eta0 / sqrt(G)``, where
          ``G`` sums the mean squared gradient of that row's factors over its
          past updates (LIBMF's schedule, Chin et al. 2015), in units of
          ratings divided by their standard deviation, so ``eta0`` does not
          depend on the rating scale. Rows with many ratings slow down sooner.
        - "constant": ``eta = eta0``.
        - "invscaling": ``eta = eta0 / t ** power_t`` in epoch ``t``
          (counted from 1 over all fits of a warm-started model; sklearn
          counts samples instead).
        - "adaptive": ``eta = eta0`` until ``n_iter_no_change`` epochs in a
          row fail to improve the monitored RMSE by ``tol``; then ``eta`` is
          divided by 5, and training stops once it would fall below 1e-6.

        The default works across rating scales and data sets without tuning
        ``eta0``: see :doc:`/training`.
    eta0 : float, default=0.05
        Initial learning rate. 0.05 suits "adagrad"; the other schedules use
        it as a raw rate on the rating scale, where 0.005 to 0.02 is typical
        for ratings 1-5.
    power_t : float, default=0.25
        Exponent of "invscaling".
    max_iter : int, default=20
        Maximum number of epochs (passes over all ratings); with
        ``algorithm="funk"``, per factor.
    tol : float or None, default=1e-4
        Stopping criterion: training stops once ``n_iter_no_change``
        epochs in a row end with an RMSE no lower than the best so far minus
        ``tol``. The RMSE is the validation RMSE with ``early_stopping``, else
        the training RMSE. None: always run ``max_iter`` epochs.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the ratings (at random, seeded by
        ``random_state``), stop on their RMSE, and keep the factors of the
        epoch with the lowest validation RMSE. Only used by :meth:`fit`.
    validation_fraction : float, default=0.1
        Share of the ratings held out for ``early_stopping``.
    n_iter_no_change : int, default=5
        Number of epochs without improvement before stopping (or, with
        "adaptive", before dividing the rate by 5).
    algorithm : {"simultaneous", "funk"}, default="simultaneous"
        "simultaneous": every rating's error updates all factors at once.
        "funk": one factor at a time (Funk 2006): up to ``max_iter`` epochs on
        factor 1 (with the biases), then factor 2 with the first one fixed and
        its part of every prediction cached, and so on; the stopping rule and
        the schedule apply to each factor afresh. See :doc:`/training`.
    biased : bool, default=True
        Model the global mean and user and item biases. False is plain Funk
        SVD, ``r ~ p_u . q_i``.
    clip : bool, default=True
        Limit predicted ratings (:meth:`predict_ratings`, :meth:`complete`,
        :meth:`score`) to the range of the training ratings. A rating outside
        that range is never more accurate, so clipping never raises an error;
        it lowered the held-out RMSE of MovieLens-100k (see the user guide).
        The scores :meth:`recommend` ranks by are not clipped, so that the
        best items do not tie at the top of the scale.
    popularity_weight : "auto" or float, default="auto"
        :meth:`recommend` ranks items by their predicted rating plus
        ``popularity_weight * log(1 + n_i)``, ``n_i`` the item's training
        ratings: the items users go on to rate are chosen, popular ones far more
        often. "auto" learns the weight in :meth:`fit` from the training ratings
        alone: the NDCG@10 of ratings held out of its epochs (as ``beta_``); 0
        ranks by predicted rating. Predicted ratings do not change.
        On MovieLens-100k it lifts NDCG@10 from 0.060 to 0.222, past the
        most-popular list's 0.198 (see the user guide).
    init_std : float, default=0.1
        Standard deviation of the normal initial item factors (user factors start
        at zero).
    shuffle : bool, default=True
        Visit the blocks of ratings in a fresh random order each epoch.
    warm_start : bool, default=False
        Make :meth:`fit` continue from the fitted factors, biases, global mean
        and schedule state (epoch count, "adaptive" rate, "adagrad" sums)
        instead of starting afresh. ``X`` must have the fitted shape.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors and the visiting order. A fixed seed gives
        bit-identical factors, whatever ``n_jobs``.
    verbose : int, default=0
        1 prints the training (and validation) RMSE after each epoch; 2 or
        more shows a progress bar with them instead, when tqdm is installed.
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
        Factors of the training users, solved after the last epoch.
    user_bias_ : ndarray of shape (n_users,)
        User biases (zeros when ``biased=False``).
    item_bias_ : ndarray of shape (n_items,)
        Item biases (zeros when ``biased=False``).
    global_mean_ : float
        Mean training rating (0 when ``biased=False``).
    beta_ : float
        The users' prior, the part of their penalty ``alpha * n_u + beta_`` that does
        not grow with their ratings ``n_u`` (see :meth:`transform`), chosen by ``fit`` on
        ratings its epochs never saw (see the user guide); 0 after :meth:`partial_fit`.
    n_iter_ : int
        Number of epochs run by the last :meth:`fit` (with "funk", summed over
        the factors), plus those of the :meth:`partial_fit` calls since.
    t_ : int
        Number of epochs run since the model was initialised, over all
        warm-started fits and :meth:`partial_fit` calls.
    loss_curve_ : list of float
        Training RMSE of each epoch, from the errors seen during that epoch.
    rating_range_ : tuple of float or None
        The lowest and highest training rating, to which predictions are
        clipped; None with ``clip=False``.
    validation_scores_ : list of float or None
        With ``early_stopping``, minus the validation RMSE after each epoch
        (higher is better, as sklearn's scores and :meth:`score`); else None.
    best_validation_score_ : float or None
        The highest of ``validation_scores_``: the kept epoch's. None without
        ``early_stopping``.
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
    Without ``early_stopping``, reaching ``max_iter`` is the normal end of a
    fit: the training error of a factorization keeps falling long after the
    held-out error has stopped, so no ``ConvergenceWarning`` is raised. With
    ``early_stopping`` it is, when ``max_iter`` comes before the stopping rule.
    A fit whose error becomes infinite or NaN raises a ``ValueError`` that
    suggests a smaller ``eta0``, and leaves a fitted model as it was.

    References
    ----------
    .. [1] Simon Funk, "Netflix Update: Try This at Home", 2006.
    .. [2] Y. Koren, R. Bell and C. Volinsky, "Matrix factorization techniques
       for recommender systems", IEEE Computer 42(8), 2009.
    .. [3] W.-S. Chin, Y. Zhuang, Y.-C. Juan and C.-J. Lin, "A learning-rate
       schedule for stochastic gradient methods to matrix factorization",
       PAKDD 2015.

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
    array([5. , 4.9, 2.1], dtype=float32)
    """

    _parameter_constraints = {
        "n_components": [Integer(1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "adagrad"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Integer(1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Integer(1, None, closed="left")],
        "algorithm": [StrOptions({"simultaneous", "funk"})],
        "biased": ["boolean"],
        "clip": ["boolean"],
        "popularity_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "n_jobs": [Integer(None, -1, closed="right"), Integer(1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components=100,
        *,
        alpha=0.1,
        learning_rate="adagrad",
        eta0=0.05,
        power_t=0.25,
        max_iter=20,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        algorithm="simultaneous",
        biased=True,
        clip=True,
        popularity_weight="auto",
        init_std=0.1,
        shuffle=True,
        warm_start=False,
        random_state=None,
        verbose=0,
        dtype="float32",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.algorithm = algorithm
        self.biased = biased
        self.clip = clip
        self.popularity_weight = popularity_weight
        self.init_std = init_std
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, callback=None):
        """Fit the factors to the ratings in ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings: stored entries of a sparse matrix, or non-NaN entries of a
            dense array.
        y : None
            Ignored.
        callback : callable, default=None
            Called after each epoch with a :class:`~funksgd.EpochInfo` (the
            epoch's RMSEs, rate and time, and ``predict`` for the current
            factors), outside the timed pass over the ratings.

        Returns
        -------
        self : FunkSVD
            The fitted estimator.
        """
        # the item count is set only once the fit is stored
        ratings = check_ratings(X, dtype=np.dtype(self.dtype))
        self._train(ratings, callback, incremental=False)
        validate_data(self, X, skip_check_array=True, reset=True)
        return self

    def fit_transform(self, X, y=None, *, callback=None):
        """Fit to ``X`` and return the training users' factors.

        Equal to ``fit(X).transform(X)`` within the solve's tolerance (``fit``
        starts the users' solve from their SGD factors), and solved once.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            Ratings.
        y : None
            Ignored.
        callback : callable, default=None
            Called after each epoch, as in :meth:`fit`.

        Returns
        -------
        W : ndarray of shape (n_users, n_components)
            User factors.
        """
        return self.fit(X, callback=callback).user_factors_.copy()

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, *, callback=None):
        """Run one epoch of SGD over the ratings in ``X``, starting from the current factors.

        For streams of ratings: each call passes once over the ratings it is
        given, as :meth:`fit` does in one epoch (with ``algorithm="funk"``, one
        epoch per factor). The first call initialises the model; later calls
        keep the global mean, the schedule's state and the factors.
        ``early_stopping`` and ``max_iter`` are not used, and ``user_factors_``
        stay the SGD factors, since one call sees only part of each user's
        ratings: :meth:`transform` all of a user's ratings for the solve.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            New ratings; the same shape at every call.
        y : None
            Ignored.
        callback : callable, default=None
            Called after this call's epoch (after each factor's with
            ``algorithm="funk"``) with an :class:`~funksgd.EpochInfo`.

        Returns
        -------
        self : FunkSVD
            The updated estimator.
        """
        first_call = not hasattr(self, "_fitted")
        if first_call:
            ratings = check_ratings(X, dtype=np.dtype(self.dtype))
        else:
            ratings = self._snapshot(X, allow_empty=False)[1]
        self._train(ratings, callback, incremental=True)
        if first_call:
            validate_data(self, X, skip_check_array=True, reset=True)
        return self

    def _train(self, X, callback, incremental):
        """Train on canonical CSR ``X``; store the result only once it is complete."""
        settings = self._check_params()
        rng = check_random_state(self.random_state)
        resume = hasattr(self, "_fitted") and (incremental or self.warm_start)
        factors = (_engine.resumed_factors(self._fitted, X, settings) if resume
                   else _engine.new_factors(X, settings, rng))  # fmt: skip
        early_stopping = self.early_stopping and not incremental
        printer = EpochPrinter(self.verbose, 1 if incremental else self.max_iter, self.n_components)
        counts = item_counts(X)
        factors, record, tuning = _engine.train(
            X, counts, factors, settings, rng, resume=resume, incremental=incremental,
            validation_fraction=self.validation_fraction if early_stopping else None,
            on_epoch=printer.chain(callback))  # fmt: skip
        printer.close()
        if early_stopping:
            _engine.warn_unstopped(record, settings)
        extended = self._fitted if incremental and resume else None  # partial_fit adds to it
        popularity = _ranking.fitted_popularity(self, counts, extended, incremental)
        if incremental:  # a batch holds only part of each user's ratings: no solve
            users = factors.user_factors, factors.user_bias, self._fitted.beta if resume else 0.0
        else:
            items = (factors.item_factors, factors.item_bias, factors.global_mean, self.alpha,
                     self.biased)  # fmt: skip
            start = factors.user_factors, factors.user_bias, factors.user_rows  # close by
            n_threads, tol = settings.n_threads, _inference.FIT_SOLVE_TOL
            beta, popularity = _tuning.learn(tuning, items, n_threads, start, tol, popularity)
            W, b = _inference.solve_users(X, *items, n_threads, beta, start, tol, in_place=True)
            users = W, b, beta
        self._fitted = _inference.new_fitted(self, X, factors, users, record, extended, popularity)

    def _check_params(self):
        """The parameters training reads, resolved once."""
        return _engine.Settings.from_params(self.get_params(), n_threads=self._n_threads())

    # --------------------------------------------------------------- inference
    def _snapshot(self, X=None, allow_empty=True):
        """The fitted state, and ``X`` checked against that very state."""
        check_is_fitted(self)
        fitted = self._fitted
        if X is None:
            return fitted, None
        ratings = check_ratings(X, dtype=fitted.item_factors.dtype, allow_empty=allow_empty)
        validate_data(self, X, skip_check_array=True, reset=False)  # names: of X as given
        X = ratings
        if X.shape[1] != fitted.n_items:  # a refit in another thread changed the items
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{fitted.n_items} features as input."
            )
        return fitted, X

    def _n_threads(self):
        return check_n_jobs(self.n_jobs)

    def transform(self, X):
        """Factors of the users in ``X``, by fold-in.

        Each row's factors (and bias) minimise the same regularised squared
        error as training, with the items held fixed: a ridge regression per
        row whose penalty is ``alpha`` times the row's number of ratings, as
        the per-update L2 of SGD implies, plus the prior learnt by ``fit``.
        It is solved by conjugate gradient to a residual of 1e-6 of its
        right-hand side. Rows may be new users.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Ratings of the users to fold in.

        Returns
        -------
        W : ndarray of shape (n_rows, n_components)
            User factors. Rows without ratings get zeros.
        """
        fitted, X = self._snapshot(X)
        return _inference.fold_in(fitted, X, self._n_threads())[0]

    def inverse_transform(self, X):
        """Predicted ratings from user factors.

        The row biases are not part of the factors, so they are taken as 0:
        the result is ``X @ components_ + global_mean_ + item_bias_``. Use
        :meth:`complete` to include them.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_components)
            User factors, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_rows, n_items)
            Predicted ratings without the user biases.
        """
        fitted, _ = self._snapshot()
        W = _inference.check_factors(X, fitted.n_components, fitted.item_factors.dtype)
        return _inference.rating_matrix(fitted, W)

    def complete(self, X):
        """The completed ratings matrix: every item's predicted rating for each row of ``X``.

        The rows are folded in (:meth:`transform`), so they may be new users.
        This was ``predict`` before version 0.2 (sklearn's ``predict`` gives one
        value per sample). For chosen (user, item) pairs use
        :meth:`predict_ratings`; for the best items, :meth:`recommend`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_items)
            Known ratings of the rows to complete: training users or new ones.

        Returns
        -------
        ratings : ndarray of shape (n_rows, n_items)
            ``global_mean_ + b_u + item_bias_ + W @ components_`` with each
            row's bias ``b_u`` and factors ``W`` from the fold-in, clipped with
            ``clip=True``.
        """
        fitted, X = self._snapshot(X)
        _inference.check_output_memory(fitted, X.shape[0])
        W, bias = _inference.fold_in(fitted, X, self._n_threads())
        return _inference.clip(fitted, _inference.rating_matrix(fitted, W, bias))

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
        fitted, _ = self._snapshot()
        return _inference.predict_ratings(fitted, users, items, self._n_threads())

    def recommend(
        self, users=None, X=None, *, n=10, exclude_rated=True, items=None, filter_items=None
    ):
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
        items : array-like of int, default=None
            Candidate items (column indices): only these are recommended. None:
            every item.
        filter_items : array-like of int, default=None
            Items never recommended to anyone (for example unavailable ones).

        Returns
        -------
        items : ndarray of shape (n_rows, n), dtype int64
            Item indices, best first. -1 pads a row with fewer than ``n``
            candidate items.
        scores : ndarray of shape (n_rows, n)
            Predicted ratings of those items (NaN where padded).
        """
        fitted, X = self._snapshot(X)
        return _inference.recommend(
            fitted, users, X, n, exclude_rated, self._n_threads(), items, filter_items
        )

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
            Ratings of the rows to score: training users or new ones.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the root mean squared error of the held-out ratings.
        """
        fitted, X = self._snapshot(X, allow_empty=False)
        return _inference.heldout_score(fitted, X, self._n_threads())

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name]
        return tags
