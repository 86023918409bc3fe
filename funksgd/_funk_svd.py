"""FunkSVD: biased matrix factorization of a ratings matrix by stochastic gradient descent."""

import copy
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import cpu_count, effective_n_jobs
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ._blocks import BlockedRatings, choose_n_blocks
from ._kernels import sgd as _sgd
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
    (``e = eta * (r - pred)``), and the biases and all ``n_components`` factors
    of that user and item are updated with it (Koren's simultaneous update)::

        b_u += e - eta * alpha * b_u          p_u += e * q_i - eta * alpha * p_u
        b_i += e - eta * alpha * b_i          q_i += e * p_u - eta * alpha * q_i

    With ``algorithm="funk"`` the factors are trained one at a time instead,
    as in Funk's original method. After the last epoch the user side is solved
    exactly with the items held fixed (see :meth:`transform`), so
    ``user_factors_`` equals ``transform(X)`` on the training matrix.

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
    init_std : float, default=0.1
        Standard deviation of the normal initial factors.
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
        Factors of the training users, solved exactly after the last epoch.
    user_bias_ : ndarray of shape (n_users,)
        User biases (zeros when ``biased=False``).
    item_bias_ : ndarray of shape (n_items,)
        Item biases (zeros when ``biased=False``).
    global_mean_ : float
        Mean training rating (0 when ``biased=False``).
    n_iter_ : int
        Number of epochs run by the last :meth:`fit` (with "funk", summed over
        the factors), plus those of the :meth:`partial_fit` calls since.
    t_ : int
        Number of epochs run since the model was initialised, over all
        warm-started fits and :meth:`partial_fit` calls.
    loss_curve_ : list of float
        Training RMSE of each epoch, from the errors seen during that epoch.
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
    A sparse ``X`` holds one rating per stored entry, explicit zeros included;
    absent entries are missing. In a dense ``X`` NaN marks a missing rating.

    Without ``early_stopping``, reaching ``max_iter`` is the normal end of a
    fit: the training error of a factorization keeps falling long after the
    held-out error has stopped, so no ``ConvergenceWarning`` is raised. With
    ``early_stopping`` it is, when ``max_iter`` comes before the stopping rule.
    A fit whose error becomes infinite or NaN raises a ``ValueError`` that
    suggests a smaller ``eta0``, and leaves a fitted model as it was.

    References
    ----------
    .. [1] S. Funk, "Netflix Update: Try This at Home", 2006.
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
        self.init_std = init_std
        self.shuffle = shuffle
        self.warm_start = warm_start
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

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch of SGD over the ratings in ``X``, starting from the current factors.

        For streams of ratings: each call passes over the ratings it is given
        once, in blocks, as :meth:`fit` does in one epoch. The first call
        initialises the model (global mean from its ratings); later calls keep
        the global mean, the learning-rate schedule's state and the factors.
        ``early_stopping`` and ``max_iter`` are not used, and the user side is
        not re-solved: ``user_factors_`` are the SGD factors, since one call
        sees only part of each user's ratings (the predictions use them, so
        they stay consistent). Call :meth:`transform` on all of a user's
        ratings for the exact solve.

        With ``algorithm="funk"`` one call runs one epoch for each factor in
        turn, the first call over a fresh model, later calls refining.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_items)
            New ratings; the same shape at every call.
        y : None
            Ignored.

        Returns
        -------
        self : FunkSVD
            The updated estimator.
        """
        first_call = not hasattr(self, "item_factors_")
        with _unchanged_on_error(self):
            ratings = self._check_X(X, reset=first_call)
            self._fit(ratings, incremental=True)
        return self

    def _fit(self, X, incremental=False):
        rng = check_random_state(self.random_state)
        resume = hasattr(self, "item_factors_") and (incremental or self.warm_start)
        state = self._resumed_state(X) if resume else self._new_state(X, rng)
        early_stopping = self.early_stopping and not incremental
        train, valid = _holdout(X, self.validation_fraction, rng) if early_stopping else (X, None)
        n_blocks = choose_n_blocks(*X.shape, train.nnz, self.n_components, X.dtype.itemsize)
        # counted now: bincount's int64 copy of the indices would set the peak memory later
        unrated = np.bincount(train.indices, minlength=X.shape[1]) == 0
        blocks = BlockedRatings(train, n_blocks, rng)
        # training sees users and items in the blocks' order, which is faster (see
        # _blocks.py): a fresh fit's random user factors need no reordering
        _reorder(state, blocks.row_order, blocks.item_order, users=resume)
        if valid:
            valid = (blocks.user_position()[valid[0]], blocks.item_position()[valid[1]], valid[2])
        limit = _divergence_limit(train.data, state.global_mean, self.n_components, self.init_std)
        log = _Log(max_iter=1 if incremental else self.max_iter, rmse_limit=limit)
        if self.algorithm == "funk":
            self._train_funk(blocks, valid, state, rng, log, resume)
        else:
            self._train_simultaneous(blocks, valid, state, rng, log)
        if early_stopping and self.tol is not None and log.unstopped:
            warnings.warn(
                f"Early stopping did not trigger within max_iter={self.max_iter} epochs"
                + (f" for {log.unstopped} of the factors" if self.algorithm == "funk" else "")
                + ": the validation RMSE was still improving. Increase max_iter or eta0.",
                ConvergenceWarning,
                stacklevel=4,
            )
        # back to id order; fit solves the users afresh, so their SGD factors are dropped
        if not incremental:
            state.user_factors = state.user_bias = None
        _reorder(state, blocks.user_position(), blocks.item_position(), users=incremental)
        del blocks  # before the users' solve allocates its own factors
        if not (resume or incremental):
            # items nobody rated were never updated: zero, not their random start, so that
            # their predicted rating is the bias-only global_mean_ + user bias. Not in
            # partial_fit: a zero user meeting a zero item would never move
            state.item_factors[unrated] = 0
        if incremental:  # a batch holds only part of each user's ratings: no exact solve
            users = state.user_factors, state.user_bias
        else:
            users = self._solve_users(X, state.item_factors, state.item_bias, state.global_mean)
        self._store(state, *users, log, extend=incremental and resume)

    def _store(self, state, user_factors, user_bias, log, extend):
        """Set the fitted attributes: only now, so a fit that raised leaves the model as it was."""
        self.item_factors_, self.item_bias_ = state.item_factors, state.item_bias
        self.user_factors_, self.user_bias_ = user_factors, user_bias
        self.global_mean_ = state.global_mean
        self._schedule_state = state.schedule
        self.t_ = state.schedule.t
        if extend:  # partial_fit adds to the record of the fits before
            self.n_iter_ += log.n_iter
            self.loss_curve_ = self.loss_curve_ + log.loss_curve
        else:
            self.n_iter_, self.loss_curve_ = log.n_iter, log.loss_curve
        scores = log.validation_scores or None
        self.validation_scores_ = scores
        self.best_validation_score_ = max(scores) if scores else None

    def _new_state(self, X, rng):
        dtype = X.dtype
        n_users, n_items = X.shape
        k = self.n_components
        check_memory(
            (n_users + n_items) * k * (8 + dtype.itemsize),
            f"n_components={k} for {n_users} users and {n_items} items",
        )
        item_factors = _normal_factors(rng, n_items, k, self.init_std, dtype)
        user_factors = _normal_factors(rng, n_users, k, self.init_std, dtype)
        global_mean = float(X.data.mean(dtype=np.float64)) if self.biased else 0.0
        return _State(
            user_factors, item_factors, np.zeros(n_users, dtype), np.zeros(n_items, dtype),
            global_mean, _ScheduleState(self.eta0, _rating_scale(X, k, self.init_std)),
        )  # fmt: skip

    def _resumed_state(self, X):
        """A copy of the fitted model to train further (``warm_start``, ``partial_fit``)."""
        fitted_shape = (len(self.user_factors_), len(self.item_factors_))
        if X.shape != fitted_shape or self.n_components != self.item_factors_.shape[1]:
            raise ValueError(
                f"Cannot continue training a model fitted on a {fitted_shape[0]} x "
                f"{fitted_shape[1]} matrix with n_components={self.item_factors_.shape[1]} on "
                f"X of shape {X.shape} with n_components={self.n_components}: pass ratings of "
                "the same shape, or set warm_start=False to fit a new model."
            )
        dtype = X.dtype
        return _State(
            self.user_factors_.astype(dtype), self.item_factors_.astype(dtype),
            self.user_bias_.astype(dtype), self.item_bias_.astype(dtype),
            self.global_mean_, copy.deepcopy(self._schedule_state),
        )  # fmt: skip

    def _train_simultaneous(self, blocks, valid, state, rng, log):
        per_row = self.learning_rate == "adagrad"
        user_grad_sq, item_grad_sq = state.schedule.accumulators(state)
        block_loss = np.zeros(blocks.n_blocks**2)
        n_threads = self._n_threads()

        def run_epoch(eta):
            args = (
                blocks.users, blocks.items, blocks.ratings, blocks.block_ptr,
                blocks.schedule(rng, self.shuffle), state.user_factors, state.item_factors,
                state.user_bias, state.item_bias,
            )  # fmt: skip
            if per_row:
                return _sgd.adagrad_epoch(
                    *args, user_grad_sq, item_grad_sq, state.global_mean,
                    state.schedule.kernel_rate(eta, per_row), self.alpha, self.biased,
                    n_threads, block_loss,
                )  # fmt: skip
            return _sgd.sgd_epoch(
                *args, state.global_mean, eta, self.alpha, self.biased, n_threads, block_loss
            )

        def validation_score():
            pred = np.empty(len(valid[0]), dtype=state.item_factors.dtype)
            _sgd.predict_pairs(
                valid[0], valid[1], state.user_factors, state.item_factors, state.user_bias,
                state.item_bias, state.global_mean, self.biased, n_threads, pred,
            )  # fmt: skip
            return -_rmse(pred, valid[2])

        views = [state.user_factors, state.item_factors, state.user_bias, state.item_bias]
        self._run_epochs(run_epoch, valid and validation_score, state.schedule, views, blocks, log)

    def _train_funk(self, blocks, valid, state, rng, log, resume):
        users, items = blocks.users, blocks.items
        P, Q = state.user_factors, state.item_factors
        # dot product over the factors trained so far, per training and validation rating
        known = _row_dots(P, Q, users, items) if resume else np.zeros(len(users), P.dtype)
        valid_known = None
        if valid:
            valid_known = _row_dots(P, Q, *valid[:2]) if resume else np.zeros(len(valid[0]))
        for f in range(self.n_components):
            if resume:  # retrain factor f with all the others fixed
                known -= P[users, f] * Q[items, f]
                if valid:
                    valid_known -= P[valid[0], f] * Q[valid[1], f]
            self._train_factor(f, known, blocks, valid, valid_known, state, rng, log)
            known += P[users, f] * Q[items, f]
            if valid:
                valid_known += P[valid[0], f] * Q[valid[1], f]
        state.schedule.t += log.n_iter

    def _train_factor(self, f, known, blocks, valid, valid_known, state, rng, log):
        """Funk's epochs on factor ``f``; the biases train along with the first factor."""
        # each factor is a fresh problem: its schedule starts again
        schedule = _ScheduleState(self.eta0, state.schedule.scale)
        user_grad_sq, item_grad_sq = schedule.accumulators(state)
        per_row = self.learning_rate == "adagrad"
        block_loss = np.zeros(blocks.n_blocks**2)
        n_threads = self._n_threads()

        def run_epoch(eta):
            return _sgd.funk_epoch(
                blocks.users, blocks.items, blocks.ratings, known, blocks.block_ptr,
                blocks.schedule(rng, self.shuffle), f, state.user_factors, state.item_factors,
                state.user_bias, state.item_bias, user_grad_sq, item_grad_sq,
                state.global_mean, schedule.kernel_rate(eta, per_row), self.alpha,
                self.biased, f == 0, per_row, n_threads, block_loss,
            )  # fmt: skip

        def validation_score():
            users, items, ratings = valid
            pred = valid_known + state.user_factors[users, f] * state.item_factors[items, f]
            pred += state.global_mean + state.user_bias[users] + state.item_bias[items]
            return -_rmse(pred, ratings)

        views = [state.user_factors[:, f], state.item_factors[:, f]]
        views += [state.user_bias, state.item_bias] if f == 0 else []
        prefix = f"factor {f + 1}/{self.n_components}, "
        self._run_epochs(
            run_epoch, valid and validation_score, schedule, views, blocks, log, prefix
        )

    def _run_epochs(self, run_epoch, validation_score, schedule, views, blocks, log, prefix=""):
        """Epochs until ``max_iter`` or the stopping rule; keep the best epoch when validating.

        ``views`` are the arrays the epochs change: copied at the best
        validation score and restored from that copy at the end.
        """
        n_ratings = len(blocks.ratings)
        no_improvement = 0
        best_score, best = -np.inf, None
        bar = _progress_bar(log.max_iter, prefix) if self.verbose > 1 else None
        for _ in range(log.max_iter):
            start = time.perf_counter()
            eta = schedule.rate(self.learning_rate, self.eta0, self.power_t)
            rmse = float(np.sqrt(run_epoch(eta) / n_ratings))
            score = validation_score() if validation_score else -rmse
            if not (
                np.isfinite(score)
                and rmse <= log.rmse_limit  # False for NaN too
                and all(_all_finite(v) for v in views)
            ):
                raise ValueError(
                    f"Training diverged at epoch {log.n_iter + 1} (the training RMSE became "
                    f"{rmse}): eta0={self.eta0} is too large for these ratings with "
                    f"learning_rate={self.learning_rate!r}. Try a smaller eta0, or centre "
                    "and scale the ratings."
                )
            schedule.t += 1
            log.n_iter += 1
            log.loss_curve.append(rmse)
            if validation_score:
                log.validation_scores.append(score)
            # sklearn's rule: an epoch counts as progress if it beats the best by tol
            if self.tol is not None and score < best_score + self.tol:
                no_improvement += 1
            else:
                no_improvement = 0
            if score > best_score:
                best_score = score
                best = [v.copy() for v in views] if validation_score else None
            if self.verbose:
                line = (
                    f"{prefix}epoch {log.n_iter}: training RMSE {rmse:.4f}"
                    + (f", validation RMSE {-score:.4f}" if validation_score else "")
                    + f", eta {eta:.3g}, "
                    f"{n_ratings / (time.perf_counter() - start) / 1e6:.1f}M ratings/s"
                )
                if bar is None:
                    print(line)
                else:
                    bar.set_postfix_str(line.split(": ", 1)[1], refresh=False)
                    bar.update()
            if self.tol is not None and no_improvement >= self.n_iter_no_change:
                if not (self.learning_rate == "adaptive" and schedule.slow_down()):
                    break
                no_improvement = 0
        else:
            log.unstopped += 1
        if bar is not None:
            bar.close()
        if best is not None:
            for view, saved in zip(views, best, strict=True):
                view[...] = saved

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
        return self._solve_users(X, self.item_factors_, self.item_bias_, self.global_mean_)

    def _solve_users(self, X, item_factors, item_bias, global_mean):
        n_rows = X.shape[0]
        dtype = item_factors.dtype
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
                *csr_arrays(X), item_factors, item_bias,
                global_mean, self.alpha, self.biased, max_row_length,
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
        # not centred @ centred: BLAS would wake its threads, which then spin for a while
        # on the cores the epochs need
        squares += float(np.square(centred).sum())
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


def _all_finite(values):
    """``np.isfinite(values).all()`` without a boolean array the size of ``values``.

    NaN and infinities reach the minimum or the maximum; twice as fast on the user
    factors, which are checked after every epoch.
    """
    return values.size == 0 or bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def _check_finite(values, what):
    """Return ``values``, or raise if any overflowed to inf or NaN (huge ratings or factors)."""
    if not _all_finite(values):
        raise ValueError(
            f"{what} overflowed to inf or NaN in {values.dtype}: the ratings or factors are "
            "too large. Rescale the ratings, or use dtype='float64'."
        )
    return values


# learning_rate="adaptive" stops training once its rate falls below this, as sklearn's SGD does
MIN_ADAPTIVE_RATE = 1e-6


class _ScheduleState:
    """Where the learning-rate schedule is; kept across warm starts and partial_fit calls.

    ``scale`` is the standard deviation of the first fit's ratings (floored, see
    ``_rating_scale``). Like LIBMF,
    learning_rate="adagrad" works in ratings divided by it, so that ``eta0``
    means the same on any rating scale: in those units each row's first rate
    is ``eta0`` and its squared gradients accumulate from 1. In the original
    units that is a rate ``eta0 * sqrt(scale) / sqrt(G)`` with the row's sum
    ``G`` of squared gradients starting at ``scale**3``.
    """

    def __init__(self, eta0, scale):
        self.t = 0  # epochs run
        self.eta = eta0  # current rate of learning_rate="adaptive"
        self.scale = scale
        self.user_grad_sq = self.item_grad_sq = None  # AdaGrad sums of learning_rate="adagrad"

    def rate(self, learning_rate, eta0, power_t):
        if learning_rate == "invscaling":
            return eta0 / (self.t + 1) ** power_t
        if learning_rate == "adaptive":
            return self.eta
        return eta0

    def kernel_rate(self, eta, per_row):
        """The rate the kernels take: AdaGrad's in the units of the original ratings."""
        return eta * np.sqrt(self.scale) if per_row else eta

    def slow_down(self):
        """Divide the adaptive rate by 5; False when it is already at the floor."""
        if self.eta <= MIN_ADAPTIVE_RATE:
            return False
        self.eta /= 5
        return True

    def accumulators(self, state):
        """The per-row sums of squared gradients of learning_rate="adagrad"."""
        dtype = state.item_factors.dtype
        if self.user_grad_sq is None or self.user_grad_sq.dtype != dtype:
            self.user_grad_sq = np.full(len(state.user_factors), self.scale**3, dtype)
            self.item_grad_sq = np.full(len(state.item_factors), self.scale**3, dtype)
        return self.user_grad_sq, self.item_grad_sq


@dataclass
class _State:
    """What training changes, apart from the estimator, so a failed fit leaves it as it was."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    schedule: _ScheduleState


@dataclass
class _Log:
    """What the epochs of one fit need to know and record."""

    max_iter: int
    rmse_limit: float  # a training RMSE above it is divergence: see _divergence_limit
    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    unstopped: int = 0  # epoch loops that reached max_iter before the stopping rule


def _reorder(state, user_order, item_order, users):
    """Replace the state's item arrays, AdaGrad's sums, and the user arrays when ``users``,
    by their rows in ``item_order`` and ``user_order``."""
    state.item_factors = state.item_factors[item_order]
    state.item_bias = state.item_bias[item_order]
    schedule = state.schedule
    if schedule.item_grad_sq is not None:
        schedule.item_grad_sq = schedule.item_grad_sq[item_order]
        schedule.user_grad_sq = schedule.user_grad_sq[user_order]
    if users:
        state.user_factors = state.user_factors[user_order]
        state.user_bias = state.user_bias[user_order]


def _normal_factors(rng, n_rows, k, std, dtype):
    """``rng.normal(0, std, (n_rows, k)).astype(dtype)``, the same values, in 8 MB pieces."""
    factors = np.empty((n_rows, k), dtype=dtype)
    chunk = max(1, (1 << 20) // k)
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        factors[start:stop] = rng.normal(0.0, std, (stop - start, k))
    return factors


def _holdout(X, fraction, rng):
    """Training CSR and validation (users, items, ratings): a random ``fraction`` of ratings."""
    if X.nnz < 2:
        raise ValueError("early_stopping=True needs at least 2 ratings to hold some out.")
    n_valid = min(max(1, round(fraction * X.nnz)), X.nnz - 1)
    held = np.zeros(X.nnz, dtype=bool)
    held[rng.choice(X.nnz, n_valid, replace=False)] = True
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int32), np.diff(X.indptr))
    valid = (rows[held], X.indices[held].astype(np.int32), X.data[held].astype(np.float64))
    return _select(X, ~held), valid


def _rating_scale(X, n_components, init_std):
    """Standard deviation of the ratings, floored so that constant ratings work.

    The floor is the spread of the initial predictions (and 1e-4, as LIBMF): AdaGrad's
    first rate is ``eta0 / scale``, which would throw small initial factors far away if
    the ratings alone, all equal, set the scale.
    """
    spread = np.sqrt(n_components) * init_std**2
    return max(float(X.data.std(dtype=np.float64)), spread, 1e-4)


def _rmse(pred, target):
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged fit is reported by the caller
        return float(np.sqrt(np.mean((pred.astype(np.float64) - target) ** 2)))


def _row_dots(P, Q, users, items, chunk=1 << 16):
    """``P[users[n]] . Q[items[n]]`` for each n, in chunks so memory stays bounded."""
    out = np.empty(len(users), dtype=P.dtype)
    for start in range(0, len(users), chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        out[start : start + chunk] = np.einsum("ij,ij->i", P[u], Q[i])
    return out


def _progress_bar(total, prefix):
    """A tqdm bar over the epochs, or None when tqdm is not installed (lines are printed)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"{prefix}epochs", unit="epoch")


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
