"""The training engine: SGD epochs over blocked ratings, the schedules, the stopping rule.

``train`` runs the epochs of one fit on explicit arguments (no estimator) and reports each
epoch to a callback; ``train_cells`` is the block-level entry point that runs the compiled
kernel over cells of ratings: the in-process fit hands it whole epochs, a distributed
trainer one cell with that cell's factor slices.
"""

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import _tuning
from ._blocks import BlockedRatings, choose_n_blocks
from ._kernels import sgd as _sgd
from ._validation import all_finite, check_memory, item_counts, row_indices
from .model_selection import split_ratings

# rows of initial factors drawn by one random stream (see normal_factors)
INIT_CHUNK_ROWS = 1 << 14
# learning_rate="adaptive" stops training once its rate falls below this, as sklearn's SGD does
MIN_ADAPTIVE_RATE = 1e-6


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters that training reads, resolved once by the estimator."""

    n_components: int
    alpha: float
    learning_rate: str
    eta0: float
    power_t: float
    max_iter: int
    tol: float | None
    n_iter_no_change: int
    algorithm: str
    biased: bool
    init_std: float
    shuffle: bool
    n_threads: int

    @classmethod
    def from_params(cls, params, **resolved):
        """The settings among an estimator's ``params``, with the ``resolved`` ones."""
        names = {f.name for f in dataclasses.fields(cls)} - set(resolved)
        return cls(**{name: params[name] for name in names}, **resolved)


@dataclass
class Factors:
    """What training changes: factors, biases, global mean and the schedule's state."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    schedule: "Schedule"
    # set when the user arrays are in training's order: user u is at row user_rows[u]
    user_rows: np.ndarray | None = None


@dataclass
class Record:
    """What the epochs of one fit record."""

    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    unstopped: int = 0  # epoch loops that reached max_iter before the stopping rule


@dataclass(frozen=True)
class EpochInfo:
    """What a callback learns after each epoch.

    Attributes
    ----------
    epoch : int
        Epochs run so far in this fit (over all factors with ``algorithm="funk"``).
    factor : int or None
        The factor trained, with ``algorithm="funk"``; else None.
    training_rmse : float
        RMSE of the training ratings, from the errors seen during the epoch.
    validation_rmse : float or None
        RMSE of the held-out ratings after the epoch, with ``early_stopping``.
    learning_rate : float
        The epoch's rate ``eta`` (AdaGrad's base rate ``eta0``).
    seconds : float
        Wall time of the epoch's pass over the ratings.
    n_ratings : int
        Number of training ratings in the epoch.
    predict : callable
        ``predict(users, items)``: predicted ratings of (row, column) index pairs of
        ``X`` from the SGD factors of this epoch (call it during the callback: later
        epochs, and ``fit``'s final solve, go on updating the same arrays).
    """

    epoch: int
    factor: int | None
    training_rmse: float
    validation_rmse: float | None
    learning_rate: float
    seconds: float
    n_ratings: int
    predict: Callable


class Schedule:
    """Where the learning-rate schedule is; kept across warm starts and partial_fit calls.

    ``scale`` is the standard deviation of the first fit's ratings (floored, see
    ``rating_scale``). Like LIBMF, learning_rate="adagrad" works in ratings divided by
    it, so that ``eta0`` means the same on any rating scale: in those units each row's
    first rate is ``eta0`` and its squared gradients accumulate from 1. In the original
    units that is a rate ``eta0 * sqrt(scale) / sqrt(G)`` with the row's sum ``G`` of
    squared gradients starting at ``scale**3``.
    """

    def __init__(self, eta0, scale):
        self.t = 0  # epochs run
        self.eta = eta0  # current rate of learning_rate="adaptive"
        self.scale = scale
        self.user_grad_sq = self.item_grad_sq = None  # AdaGrad sums of learning_rate="adagrad"

    def rate(self, settings):
        """The epoch's rate ``eta``."""
        if settings.learning_rate == "invscaling":
            return settings.eta0 / (self.t + 1) ** settings.power_t
        if settings.learning_rate == "adaptive":
            return self.eta
        return settings.eta0

    def kernel_rate(self, eta, per_row):
        """The rate the kernels take: AdaGrad's in the units of the original ratings."""
        return eta * np.sqrt(self.scale) if per_row else eta

    def slow_down(self):
        """Divide the adaptive rate by 5; False when it is already at the floor."""
        if self.eta <= MIN_ADAPTIVE_RATE:
            return False
        self.eta /= 5
        return True

    def accumulators(self, factors):
        """The per-row sums of squared gradients of learning_rate="adagrad"."""
        dtype = factors.item_factors.dtype
        if self.user_grad_sq is None or self.user_grad_sq.dtype != dtype:
            self.user_grad_sq = np.full(len(factors.user_factors), self.scale**3, dtype)
            self.item_grad_sq = np.full(len(factors.item_factors), self.scale**3, dtype)
        return self.user_grad_sq, self.item_grad_sq


class StoppingRule:
    """sklearn's rule: stop after ``n_iter_no_change`` epochs in a row that fail to beat the
    best score by ``tol`` (never with ``tol=None``)."""

    def __init__(self, tol, n_iter_no_change):
        self.tol, self.patience = tol, n_iter_no_change
        self.best = -np.inf
        self.no_improvement = 0

    def update(self, score):
        """Count the epoch's score; True when the rule says stop (or slow down)."""
        if self.tol is not None and score < self.best + self.tol:
            self.no_improvement += 1
        else:
            self.no_improvement = 0
        self.best = max(self.best, score)
        return self.tol is not None and self.no_improvement >= self.patience


class BestEpoch:
    """Copies of the arrays an epoch changes, taken at the best validation score."""

    def __init__(self, views):
        self.views, self.saved, self.score = views, None, -np.inf

    def update(self, score):
        if score > self.score:
            self.score = score
            self.saved = [view.copy() for view in self.views]

    def restore(self):
        for view, saved in zip(self.views, self.saved or (), strict=False):
            view[...] = saved


def new_factors(X, settings, rng):
    """Random item factors, zero user factors and biases, a fresh schedule for ``X``."""
    dtype = X.dtype
    n_users, n_items = X.shape
    k = settings.n_components
    check_memory(
        (n_users + n_items) * k * (8 + dtype.itemsize),
        f"n_components={k} for {n_users} users and {n_items} items",
    )
    std, threads = settings.init_std, settings.n_threads
    item_factors = normal_factors(rng, n_items, k, std, dtype, threads)
    # users start at zero: their first steps follow the random items. Free where drawing
    # them cost more than six epochs at Netflix shape, and more accurate there (thin users'
    # random starts no longer leak into the items; see benchmarks/README.md)
    user_factors = np.zeros((n_users, k), dtype)
    global_mean = float(X.data.mean(dtype=np.float64)) if settings.biased else 0.0
    scale = rating_scale(X, settings, global_mean)
    return Factors(
        user_factors, item_factors, np.zeros(n_users, dtype), np.zeros(n_items, dtype),
        global_mean, Schedule(settings.eta0, scale),
    )  # fmt: skip


def resumed_factors(fitted, X, settings):
    """A copy of a fitted model to train further on ``X`` (``warm_start``, ``partial_fit``);
    an unbiased model drops the biases it had."""
    fitted_shape = (len(fitted.user_factors), fitted.n_items)
    if X.shape != fitted_shape or settings.n_components != fitted.n_components:
        raise ValueError(
            f"Cannot continue training a model fitted on a {fitted_shape[0]} x "
            f"{fitted_shape[1]} matrix with n_components={fitted.n_components} on "
            f"X of shape {X.shape} with n_components={settings.n_components}: pass ratings "
            "of the same shape, or set warm_start=False to fit a new model."
        )
    dtype = X.dtype
    factors = Factors(
        fitted.user_factors.astype(dtype), fitted.item_factors.astype(dtype),
        fitted.user_bias.astype(dtype), fitted.item_bias.astype(dtype),
        fitted.global_mean, copy.deepcopy(fitted.schedule),
    )  # fmt: skip
    if not settings.biased:
        factors.user_bias[:] = 0
        factors.item_bias[:] = 0
        factors.global_mean = 0.0
    return factors


def train(X, counts, factors, settings, rng, *, resume, incremental, validation_fraction,
          on_epoch):  # fmt: skip
    """Train ``factors`` on the CSR ratings ``X`` (``counts`` ratings per item, which it
    leaves alone): the epochs of one fit, or of one
    ``partial_fit`` call (``incremental``). Returns the factors in the ids' order, the
    record and the ``_tuning.Tuning`` sample (None in ``partial_fit``), whose held-out
    ratings are not trained on. Without ``incremental`` the users stay in training's order,
    ``user_rows`` giving each one's row (``fit`` then solves the users, starting there).
    With ``validation_fraction``, that share of the ratings is held out (the tuning sample
    comes from them), the epochs stop on their RMSE and the best epoch's factors are kept.
    ``on_epoch(info)`` is called with an :class:`EpochInfo` after each epoch.
    """
    valid = tuning = skip = None
    if validation_fraction:
        if X.nnz < 2:
            raise ValueError("early_stopping=True needs at least 2 ratings to hold some out.")
        X, held = split_ratings(X, validation_fraction, rng)
        valid = (row_indices(held), held.indices, held.data.astype(np.float64))
        tuning = _tuning.from_validation(X, held, rng)
        counts = counts - item_counts(held)
    elif not incremental:
        skip, tuning = _tuning.hold_out(X, rng)
    if skip is not None:
        counts = counts.copy()
        np.subtract.at(counts, tuning.held.indices, 1)
    n_blocks = choose_n_blocks(*X.shape, counts.sum(), settings.n_components, X.dtype.itemsize)
    unrated = counts == 0
    blocks = BlockedRatings(X, n_blocks, rng, settings.n_threads, counts, skip)
    # training sees users and items in the blocks' order, faster (see _blocks.py); a
    # fresh fit's zero user factors need no reordering
    reorder(factors, blocks.row_order, blocks.item_order, users=resume)
    if valid:
        valid = (blocks.user_position()[valid[0]], blocks.item_position()[valid[1]], valid[2])
    run = _Run(
        blocks, valid, factors, settings, rng, on_epoch,
        max_iter=1 if incremental else settings.max_iter,
        rmse_limit=divergence_limit(X.data, factors.global_mean, settings),
    )  # fmt: skip
    if settings.algorithm == "funk":
        run.train_funk(resume)
    else:
        run.train_simultaneous()
    # back to id order; fit's final solve puts the users' SGD factors in id order itself,
    # in place (a copy here would be a second array of all the user factors)
    reorder(factors, blocks.user_position(), blocks.item_position(), users=incremental)
    if not incremental:
        factors.user_rows = blocks.user_position()
    if not (resume or incremental):
        # items nobody rated were never updated: zero, not their random start, so that
        # their predicted rating is the bias-only global_mean_ + user bias. Not in
        # partial_fit: a zero user meeting a zero item would never move
        factors.item_factors[unrated] = 0
    return factors, run.record, tuning


def train_cells(cells, factors, rate, settings, strata=None, n_threads=1, cell_loss=None):
    """Run the SGD kernel once over cells of ratings; returns their summed squared error.

    The block-level entry point of training. ``cells`` has ``users``, ``items``,
    ``ratings`` (indices into ``factors``' rows) and ``block_ptr``
    (``block_ptr[c]:block_ptr[c + 1]`` are the ratings of cell ``c``). ``strata[s]``
    lists cells that share no user and no item, run by ``n_threads`` threads at once;
    strata run in turn (default: every cell in turn). ``factors`` is a
    :class:`Factors`, or its slices for the rows the cells touch; it is updated in
    place, AdaGrad's sums too. ``rate`` is the kernel's rate (``Schedule.kernel_rate``).
    """
    n_cells = len(cells.block_ptr) - 1
    if strata is None:
        strata = np.arange(n_cells, dtype=np.int32)[:, None]
    cell_loss = np.zeros(n_cells) if cell_loss is None else cell_loss
    args = (
        cells.users, cells.items, cells.ratings, cells.block_ptr, strata,
        factors.user_factors, factors.item_factors, factors.user_bias, factors.item_bias,
    )  # fmt: skip
    common = (factors.global_mean, rate, settings.alpha, settings.biased, n_threads, cell_loss)
    if settings.learning_rate == "adagrad":
        sums = factors.schedule.accumulators(factors)
        return _sgd.adagrad_epoch(*args, *sums, *common)
    return _sgd.sgd_epoch(*args, *common)


def warn_unstopped(record, settings):
    """The ``ConvergenceWarning`` of early stopping that reached ``max_iter`` first."""
    if settings.tol is None or not record.unstopped:
        return
    warnings.warn(
        f"Early stopping did not trigger within max_iter={settings.max_iter} epochs"
        + (f" for {record.unstopped} of the factors" if settings.algorithm == "funk" else "")
        + ": the validation RMSE was still improving. Increase max_iter or eta0.",
        ConvergenceWarning,
        stacklevel=5,
    )


class _Run:
    """The epochs of one fit over blocked ratings: the loop and its named steps."""

    def __init__(self, blocks, valid, factors, settings, rng, on_epoch, max_iter, rmse_limit):
        self.blocks, self.valid, self.factors = blocks, valid, factors
        self.settings, self.rng, self.on_epoch = settings, rng, on_epoch
        self.max_iter, self.rmse_limit = max_iter, rmse_limit
        self.record = Record()
        self.cell_loss = np.zeros(blocks.n_blocks**2)

    def train_simultaneous(self):
        factors, blocks, settings = self.factors, self.blocks, self.settings
        per_row = settings.learning_rate == "adagrad"

        def run_epoch(eta):
            strata = blocks.schedule(self.rng, settings.shuffle)
            rate = factors.schedule.kernel_rate(eta, per_row)
            return train_cells(
                blocks, factors, rate, settings, strata, settings.n_threads, self.cell_loss
            )

        def validation_score():
            pred = np.empty(len(self.valid[0]), dtype=factors.item_factors.dtype)
            _sgd.predict_pairs(
                self.valid[0], self.valid[1], factors.user_factors, factors.item_factors,
                factors.user_bias, factors.item_bias, factors.global_mean, settings.biased,
                settings.n_threads, pred,
            )  # fmt: skip
            return -rmse(pred, self.valid[2])

        views = [factors.user_factors, factors.item_factors, factors.user_bias, factors.item_bias]
        self.epochs(run_epoch, self.valid and validation_score, factors.schedule, views)

    def train_funk(self, resume):
        factors, users, items, valid = (
            self.factors,
            self.blocks.users,
            self.blocks.items,
            self.valid,
        )
        P, Q = factors.user_factors, factors.item_factors
        # dot product over the factors trained so far, per training and validation rating
        known = row_dots(P, Q, users, items) if resume else np.zeros(len(users), P.dtype)
        valid_known = None
        if valid:
            valid_known = row_dots(P, Q, *valid[:2]) if resume else np.zeros(len(valid[0]))
        for f in range(self.settings.n_components):
            if resume:  # retrain factor f with all the others fixed
                known -= P[users, f] * Q[items, f]
                if valid:
                    valid_known -= P[valid[0], f] * Q[valid[1], f]
            self.train_factor(f, known, valid_known)
            known += P[users, f] * Q[items, f]
            if valid:
                valid_known += P[valid[0], f] * Q[valid[1], f]
        factors.schedule.t += self.record.n_iter

    def train_factor(self, f, known, valid_known):
        """Funk's epochs on factor ``f``; the biases train along with the first factor."""
        factors, blocks, settings = self.factors, self.blocks, self.settings
        # each factor is a fresh problem: its schedule starts again
        schedule = Schedule(settings.eta0, factors.schedule.scale)
        user_grad_sq, item_grad_sq = schedule.accumulators(factors)
        per_row = settings.learning_rate == "adagrad"

        def run_epoch(eta):
            return _sgd.funk_epoch(
                blocks.users, blocks.items, blocks.ratings, known, blocks.block_ptr,
                blocks.schedule(self.rng, settings.shuffle), f, factors.user_factors,
                factors.item_factors, factors.user_bias, factors.item_bias, user_grad_sq,
                item_grad_sq, factors.global_mean, schedule.kernel_rate(eta, per_row),
                settings.alpha, settings.biased, f == 0, per_row, settings.n_threads,
                self.cell_loss,
            )  # fmt: skip

        def validation_score():
            users, items, ratings = self.valid
            pred = valid_known + factors.user_factors[users, f] * factors.item_factors[items, f]
            pred += factors.global_mean + factors.user_bias[users] + factors.item_bias[items]
            return -rmse(pred, ratings)

        views = [factors.user_factors[:, f], factors.item_factors[:, f]]
        views += [factors.user_bias, factors.item_bias] if f == 0 else []
        self.epochs(run_epoch, self.valid and validation_score, schedule, views, factor=f)

    def epochs(self, run_epoch, validation_score, schedule, views, factor=None):
        """Epochs until ``max_iter`` or the stopping rule; keep the best epoch when validating.

        ``views`` are the arrays the epochs change: copied at the best validation score
        and restored from that copy at the end.
        """
        settings, record = self.settings, self.record
        rule = StoppingRule(settings.tol, settings.n_iter_no_change)
        best = BestEpoch(views) if validation_score else None
        if validation_score:
            # epoch 0, the starting model, competes too: on data with nothing to learn the
            # epochs only fit noise, and the best of them would still be worse than the start
            start_score = validation_score()
            best.update(start_score)
            rule.update(start_score)
        for _ in range(self.max_iter):
            eta = schedule.rate(settings)
            start = time.perf_counter()
            training_rmse = float(np.sqrt(run_epoch(eta) / len(self.blocks.ratings)))
            seconds = time.perf_counter() - start
            score = validation_score() if validation_score else -training_rmse
            # a factor that turned NaN or infinite shows in the next epoch's errors (each
            # row has ratings); the last epoch's factors are checked below
            self.check_diverged(training_rmse, score)
            schedule.t += 1
            record.n_iter += 1
            record.loss_curve.append(training_rmse)
            if validation_score:
                record.validation_scores.append(score)
                best.update(score)
            if self.on_epoch is not None:
                self.on_epoch(self.epoch_info(factor, training_rmse, score, eta, seconds))
            if rule.update(score):
                if not (settings.learning_rate == "adaptive" and schedule.slow_down()):
                    break
                rule.no_improvement = 0
        else:
            record.unstopped += 1
        if best is not None:
            best.restore()
        if not all(all_finite(v) for v in views):
            self.diverged(self.record.n_iter, "a factor became infinite or NaN")

    def check_diverged(self, training_rmse, score):
        """Raise if the epoch's errors left the finite, sensible range."""
        if not (np.isfinite(score) and training_rmse <= self.rmse_limit):  # True for NaN
            self.diverged(self.record.n_iter + 1, f"the training RMSE became {training_rmse}")

    def diverged(self, epoch, what):
        settings = self.settings
        raise ValueError(
            f"Training diverged at epoch {epoch} ({what}): "
            f"eta0={settings.eta0} is too large for these ratings with "
            f"learning_rate={settings.learning_rate!r}. Try a smaller eta0, or centre "
            "and scale the ratings."
        )

    def epoch_info(self, factor, training_rmse, score, eta, seconds):
        validating = self.valid is not None
        return EpochInfo(
            epoch=self.record.n_iter, factor=factor, training_rmse=training_rmse,
            validation_rmse=-score if validating else None, learning_rate=eta,
            seconds=seconds, n_ratings=len(self.blocks.ratings), predict=self.predict(),
        )  # fmt: skip

    def predict(self):
        """``predict(users, items)`` from the factors as they are now: it keeps the arrays
        (later epochs update them, ``fit``'s final solve overwrites and reorders them)."""
        factors, blocks, biased = self.factors, self.blocks, self.settings.biased
        P, Q = factors.user_factors, factors.item_factors
        user_bias, item_bias = factors.user_bias, factors.item_bias

        def predict(users, items):
            users = blocks.user_position()[np.asarray(users)]
            items = blocks.item_position()[np.asarray(items)]
            pred = row_dots(P, Q, users, items)
            if biased:
                pred += factors.global_mean + user_bias[users] + item_bias[items]
            return pred

        return predict


def divergence_limit(ratings, global_mean, settings):
    """A training RMSE above this means diverging, not learning.

    Ten times the RMSE of always predicting the global mean (0 when unbiased) plus the
    spread of the initial predictions, and a sliver of the rating scale for rounding.
    """
    baseline = np.sqrt(mean_square(ratings, global_mean)) + initial_spread(settings)
    return 10 * baseline + 1e-3 * max(ratings.max(), -ratings.min()) + 1e-30


def mean_square(values, center):
    """Mean of ``(values - center) ** 2`` in float64, in chunks: no copy of all the values."""
    squares = 0.0
    for start in range(0, len(values), 1 << 16):
        centred = values[start : start + (1 << 16)].astype(np.float64) - center
        # not centred @ centred: BLAS's threads would then spin on the epochs' cores
        squares += float(np.square(centred).sum())
    return squares / len(values)


def initial_spread(settings):
    """Standard deviation of a prediction ``p . q`` from the initial factors."""
    return np.sqrt(settings.n_components) * settings.init_std**2


def rating_scale(X, settings, center=None):
    """The spread of the ratings about the model's start: their standard deviation, or
    without biases (the factors must then make the whole rating) their root mean square;
    floored so that constant ratings work.

    AdaGrad's first rate is ``eta0 / scale``. The floors: the spread of the initial
    predictions (and 1e-4, as LIBMF), which would otherwise be thrown far away if the
    ratings alone, all equal, set the scale; and ``eta0 * (1 + alpha)``, below which the
    first steps of a bias overshoot (each would multiply it by ``1 - eta (1 + alpha)``,
    below -1 for constant ratings and one factor).
    """
    if settings.biased and center is None:
        center = float(X.data.mean(dtype=np.float64))
    spread = float(np.sqrt(mean_square(X.data, center if settings.biased else 0.0)))
    floor = max(initial_spread(settings), 1e-4, settings.eta0 * (1 + settings.alpha))
    return max(spread, floor)


def reorder(factors, user_order, item_order, users):
    """Put the item arrays, AdaGrad's sums (and the users' with ``users``) in that order."""
    factors.item_factors = factors.item_factors[item_order]
    factors.item_bias = factors.item_bias[item_order]
    schedule = factors.schedule
    if schedule.item_grad_sq is not None:
        schedule.item_grad_sq = schedule.item_grad_sq[item_order]
        schedule.user_grad_sq = schedule.user_grad_sq[user_order]
    if users:
        factors.user_factors = factors.user_factors[user_order]
        factors.user_bias = factors.user_bias[user_order]


def normal_factors(rng, n_rows, k, std, dtype, n_threads=1):
    """Normal initial factors of standard deviation ``std`` in ``dtype``.

    Drawn by NumPy ``Generator`` streams, one per piece of ``INIT_CHUNK_ROWS`` rows,
    seeded from ``rng`` through a ``SeedSequence``: the draws do not depend on
    ``n_threads``, which fill the pieces at once (the generators release the GIL)."""
    factors = np.empty((n_rows, k), dtype=dtype)
    pieces = range(0, n_rows, INIT_CHUNK_ROWS)
    seeds = np.random.SeedSequence(rng.randint(np.iinfo(np.int32).max)).spawn(len(pieces))

    def fill(piece):
        start = pieces[piece]
        out = factors[start : start + INIT_CHUNK_ROWS]
        np.random.default_rng(seeds[piece]).standard_normal(out=out, dtype=dtype)
        out *= dtype.type(std)

    with ThreadPoolExecutor(n_threads if len(pieces) > 1 else 1) as pool:
        list(pool.map(fill, range(len(pieces))))
    return factors


def rmse(pred, target):
    """Root mean squared error in float64; inf or NaN for a diverged fit, never a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.mean((pred.astype(np.float64) - target) ** 2)))


def row_dots(P, Q, users, items, chunk=1 << 16):
    """``P[users[n]] . Q[items[n]]`` for each n, in chunks so memory stays bounded."""
    out = np.empty(len(users), dtype=P.dtype)
    for start in range(0, len(users), chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        out[start : start + chunk] = np.einsum("ij,ij->i", P[u], Q[i])
    return out
