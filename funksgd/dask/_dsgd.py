"""DSGD (Gemulla et al., KDD 2011): SGD over a p x p grid of cells, p cells of a stratum at once.

The ratings are shuffled once into cells ``(user block b, item block j)``, each kept on
the worker that owns user block ``b``, beside that block's factors, biases and AdaGrad
sums. Each epoch runs ``p`` strata; stratum ``s`` pairs every user block with a different
item block, so its ``p`` cells share no user and no item and train at once. An item
block's state then moves to the worker of its next cell. Every task returns new arrays
and leaves its inputs as they were (a training task trains copies of its two blocks,
the user block's made by the kernel as it goes). So Dask can rerun any task, and the
factors depend only on the seed and the grid: not on the number of workers, nor on
where or when each task ran.
"""

import copy
import time
import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .. import _engine, _inference, _tuning
from .._blocks import _balanced_groups
from .._engine import Schedule, initial_spread, normal_factors
from .._kernels import sgd as _sgd
from ._cell import release_spares, train_task
from ._shuffle import joined, make_cells
from ._users import gather_users, solve_task

# what training changes in a block of users or items; ``sse`` sums the squared errors of a
# user block's cells since the start of the epoch (one number per block to gather)
BlockState = namedtuple("BlockState", "factors bias grad_sq sse")
# A user block is known by the output of its last task, a pair ``(user state, item state or
# None)``: its next task runs on the same worker and takes the pair whole, so only the item
# state, which moves to another worker, needs a task of its own to split it off.


@dataclass(frozen=True)
class Settings(_engine.Settings):
    """The in-process trainer's settings, and those the distributed fit reads besides."""

    early_stopping: bool
    validation_fraction: float
    clip: bool
    verbose: int
    dtype: str


@dataclass
class Fitted:
    """What a fit produces, in id order, for the estimator to store."""

    user_factors: np.ndarray
    user_bias: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    schedule: Schedule
    n_blocks: int
    rating_range: tuple | None = None
    n_iter: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    unstopped: bool = False
    beta: float = 0.0  # the users' prior strength, learnt as FunkSVD's
    item_counts: np.ndarray | None = None  # all the ratings of each item
    popularity_weight: float | None = None  # learnt as FunkSVD's, when asked for


@dataclass
class Grid:
    """Which block, and which row inside it, each user and item has."""

    n_blocks: int
    user_block: np.ndarray
    user_local: np.ndarray
    user_members: list  # user_members[b][r]: the user id of row r of block b
    item_block: np.ndarray
    item_local: np.ndarray
    item_members: list


def draw_grid(rng, user_counts, item_counts, n_blocks):
    """Users and items shuffled and cut into ``n_blocks`` blocks balanced by ratings each."""
    return Grid(n_blocks, *_cut(rng, user_counts, n_blocks), *_cut(rng, item_counts, n_blocks))


def _cut(rng, counts, n_blocks):
    order = rng.permutation(len(counts)).astype(np.int32)
    block = _balanced_groups(order, counts, n_blocks)  # non-decreasing along ``order``
    starts = np.searchsorted(block[order], np.arange(n_blocks + 1))
    local = np.empty_like(order)
    local[order] = np.arange(len(order), dtype=np.int32) - starts[block[order]]
    return block, local, [order[starts[b] : starts[b + 1]] for b in range(n_blocks)]


def strata(rng, n_blocks, shuffle):
    """``strata[s, b]``: the item block that user block ``b`` trains with in stratum ``s``.

    As ``BlockedRatings.schedule``: every cell once per epoch, in a fresh order.
    """
    match = rng.permutation(n_blocks) if shuffle else np.arange(n_blocks)
    shift = rng.permutation(n_blocks) if shuffle else np.arange(n_blocks)
    return match[(np.arange(n_blocks)[None, :] + shift[:, None]) % n_blocks]


def fit_grid(executor, data, settings, rng, n_blocks, resume=None, popularity=False):
    """Train on the ratings ``data`` (see ``_ingest.Ratings``) and solve the users.

    ``resume`` is a ``Fitted`` to continue from (warm start), else the factors start afresh.
    As ``FunkSVD.fit``, the users' prior (and with ``popularity`` the popularity weight)
    is chosen on ratings held out of the epochs: one rating each of a sample of users
    (``_tuning.choose``), kept with the validation ratings of the cells, or with early
    stopping the validation ratings of a sample of users.
    """
    release(executor)  # arrays a failed fit may have left
    grid = draw_grid(rng, data.user_counts, data.item_counts, n_blocks)
    tuning = None if settings.early_stopping else _tuning.choose(data.user_counts, rng)
    fraction = settings.validation_fraction if settings.early_stopping else 0.0
    cells, reports = make_cells(executor, data, grid, rng, fraction, tuning)
    _check_reports(reports, grid, data.mapping, settings)
    if resume is None:
        global_mean = data.mean if settings.biased else 0.0
        schedule = Schedule(settings.eta0, rating_scale(data, settings))
    else:
        global_mean, schedule = resume.global_mean, resume.schedule
    # [users, items]: the trainers take them out, so that nothing holds the first states
    # of the blocks once their first tasks have read them
    states = _initial_states(executor, grid, settings, schedule, rng, resume)
    n_train = sum(sum(report["n_train"]) for report in reports)
    limit = _divergence_limit(data, global_mean, settings)
    out = Fitted(None, None, None, None, global_mean, schedule, n_blocks)
    out.rating_range = (data.low, data.high) if settings.clip else None
    validate = None
    if settings.early_stopping:

        def validate(users, items):
            return _validation_score(executor, cells, users, items, global_mean, settings)

    if settings.algorithm == "funk":
        from ._funk import run_funk

        sums = schedule.user_grad_sq, schedule.item_grad_sq  # funk's own start afresh
        users, items = run_funk(
            executor, cells, states, grid, settings, schedule, global_mean, rng,
            n_train, limit, settings.early_stopping, resume is not None, out,
        )  # fmt: skip
    else:
        users, items = _run_epochs(
            executor, cells, states, grid, settings, schedule, global_mean, rng,
            n_train, limit, validate, out,
        )  # fmt: skip
    release(executor)
    out.item_counts = data.item_counts
    if tuning is None:  # early stopping: a sample of the users with validation ratings
        tuning = _validated_sample(reports, grid, rng), None
    _finish(executor, cells, users, items, grid, reports, settings, resume is None, out,
            (tuning[0], popularity))  # fmt: skip
    if settings.algorithm == "funk":  # as in process: the model's schedule keeps its sums
        out.schedule.user_grad_sq, out.schedule.item_grad_sq = sums
    return out


def release(executor):
    """Every worker lets go of the training tasks' arrays kept for reuse (``new_array``)."""
    executor.gather([executor.submit(release_spares, worker=w) for w in executor.workers])


def rating_scale(data, settings):
    """``_engine.rating_scale`` from the ratings' statistics (tests hold the two equal)."""
    if settings.biased:
        spread = data.std
    else:
        spread = float(np.sqrt(data.std**2 + data.mean**2))
    floor = max(initial_spread(settings), 1e-4, settings.eta0 * (1 + settings.alpha))
    return max(spread, floor)


def _divergence_limit(data, global_mean, settings):
    """``_engine.divergence_limit`` from the ratings' statistics."""
    mse = max(data.std**2 + (data.mean - global_mean) ** 2, 0.0)
    baseline = np.sqrt(mse) + initial_spread(settings)
    return 10 * baseline + 1e-3 * data.max_abs + 1e-30


def _validated_sample(reports, grid, rng):
    """Up to ``TUNING_USERS`` random users (sorted ids) with validation ratings, as
    ``_tuning.from_validation`` samples them in process."""
    eligible = np.unique(np.concatenate([np.zeros(0, np.int32)] + [
        grid.user_members[b][local] for b, report in enumerate(reports)
        for local in report["validated"]
    ]))  # fmt: skip
    if len(eligible) > _tuning.TUNING_USERS:
        eligible = np.sort(rng.choice(eligible, _tuning.TUNING_USERS, replace=False))
    return eligible


def _check_reports(reports, grid, mapping, settings):
    for b, report in enumerate(reports):
        if report["first_duplicate"] is not None:
            user, item_block, item = report["first_duplicate"]
            user_id = mapping.user_id([grid.user_members[b][user]]).tolist()[0]
            item_id = mapping.item_id([grid.item_members[item_block][item]]).tolist()[0]
            n = sum(r["n_duplicates"] for r in reports)
            raise ValueError(
                f"user {user_id!r} rated item {item_id!r} more than once ({n} repeated "
                "ratings in all): a ratings matrix holds at most one rating per (user, item) "
                "pair. Remove the duplicates (or average them) before fitting."
            )
    n_train = sum(sum(r["n_train"]) for r in reports)
    n_valid = sum(sum(r["n_valid"]) for r in reports)
    if settings.early_stopping and (n_valid == 0 or n_train == 0):
        raise ValueError(
            f"early_stopping=True needs ratings to hold out and ratings to train on, got "
            f"{n_train} and {n_valid}: pass more ratings or change validation_fraction."
        )


def _initial_states(executor, grid, settings, schedule, rng, resume):
    """A ``BlockState`` per block, on its worker: drawn there, or the fitted model's."""
    k, dtype = settings.n_components, np.dtype(settings.dtype)
    adagrad = settings.learning_rate == "adagrad"
    start = schedule.scale**3 if adagrad else None
    states = []
    for members, is_user in [(grid.user_members, True), (grid.item_members, False)]:
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(members))
        if resume is None:
            states.append([
                executor.submit(_init_block, seeds[b], len(rows), k, settings.init_std, dtype,
                                start, is_user, worker=executor.owner(b) if is_user else None)
                for b, rows in enumerate(members)
            ])  # fmt: skip
            continue
        factors = resume.user_factors if is_user else resume.item_factors
        bias = resume.user_bias if is_user else resume.item_bias
        grad_sq = schedule.user_grad_sq if is_user else schedule.item_grad_sq
        if adagrad and (grad_sq is None or grad_sq.dtype != dtype):
            grad_sq = np.full(len(factors), start, dtype)
        states.append([
            executor.scatter(
                _as_pair(BlockState(factors[rows].astype(dtype), bias[rows].astype(dtype),
                         None if grad_sq is None else grad_sq[rows].astype(dtype), 0.0), is_user),
                worker=executor.owner(b) if is_user else None,
            )
            for b, rows in enumerate(members)
        ])  # fmt: skip
    return states


def _run_epochs(executor, cells, states, grid, settings, schedule, global_mean, rng,
                n_train, limit, validate, out):  # fmt: skip
    """Epochs from the blocks' ``states``, ``[users, items]`` (it empties the list), until
    ``max_iter`` or the stopping rule, as ``FunkSVD._run_epochs``.

    Unless the rate of the next epoch depends on this one's error ("adaptive"), the next
    epoch is submitted before this one's error comes back, so the workers never wait for
    the client; it is dropped if the stopping rule ends training.
    """
    per_row = settings.learning_rate == "adagrad"
    look_ahead = settings.learning_rate != "adaptive"

    def submit(users, items, epochs_ahead):
        later = copy.copy(schedule)
        later.t += epochs_ahead
        eta = later.rate(settings)
        rate = later.kernel_rate(eta, per_row)
        return (eta, *_submit_epoch(executor, cells, users, items, rate, grid.n_blocks, rng,
                                    settings, global_mean))  # fmt: skip

    no_improvement, best_score, best = 0, -np.inf, None
    started = time.perf_counter()
    pending = submit(*states, 0)
    states.clear()
    for epoch in range(settings.max_iter):
        eta, users, items, errors = pending
        if look_ahead and epoch + 1 < settings.max_iter:
            pending = submit(users, items, 1)
        rmse = float(np.sqrt(sum(executor.gather(errors)) / n_train))
        score = validate(users, items) if validate else -rmse
        record_epoch(out, schedule, rmse, score, limit, settings, bool(validate))
        if settings.tol is not None and score < best_score + settings.tol:
            no_improvement += 1
        else:
            no_improvement = 0
        if score > best_score:
            best_score = score
            best = (users, items) if validate else None
        if settings.verbose:
            seconds, started = time.perf_counter() - started, time.perf_counter()
            print(epoch_line(f"epoch {out.n_iter}", rmse, score, bool(validate), eta, seconds,
                             n_train, len(executor.workers)))  # fmt: skip
        if settings.tol is not None and no_improvement >= settings.n_iter_no_change:
            if not (settings.learning_rate == "adaptive" and schedule.slow_down()):
                break
            no_improvement = 0
        if not look_ahead and epoch + 1 < settings.max_iter:
            pending = submit(users, items, 0)
    else:
        out.unstopped = True
    if settings.early_stopping and settings.tol is not None and out.unstopped:
        warnings.warn(
            f"Early stopping did not trigger within max_iter={settings.max_iter} epochs: the "
            "validation RMSE was still improving. Increase max_iter or eta0.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return best if best is not None else (users, items)


def record_epoch(out, schedule, rmse, score, limit, settings, validating):
    """Count an epoch and record its RMSE (and validation score); raise if it diverged."""
    if not (np.isfinite(score) and rmse <= limit):
        raise ValueError(
            f"Training diverged at epoch {out.n_iter + 1} (the training RMSE became {rmse}): "
            f"eta0={settings.eta0} is too large for these ratings with learning_rate="
            f"{settings.learning_rate!r}. Try a smaller eta0, or centre and scale the ratings."
        )
    schedule.t += 1
    out.n_iter += 1
    out.loss_curve.append(rmse)
    if validating:
        out.validation_scores.append(score)


def epoch_line(label, rmse, score, validating, eta, seconds, n_train, n_workers):
    """The line ``verbose`` prints on the client after an epoch."""
    return (
        f"{label}: training RMSE {rmse:.4f}"
        + (f", validation RMSE {-score:.4f}" if validating else "")
        + f", eta {eta:.3g}, {seconds:.3f} s, {n_train / seconds / 1e6:.2f}M ratings/s "
        f"on {n_workers} workers"
    )


def _submit_epoch(executor, cells, users, items, rate, n_blocks, rng, settings, global_mean):
    """Submit the strata of one epoch; return the new states and the epoch's squared errors."""
    users, items = list(users), list(items)
    for s, pairs in enumerate(strata(rng, n_blocks, settings.shuffle)):
        for b, j in enumerate(pairs):
            trained = executor.submit(
                train_task, cells[b][j], users[b], items[j], global_mean, rate, settings.alpha,
                settings.biased, settings.learning_rate, s == 0, s == n_blocks - 1,
                worker=executor.owner(b),
            )  # fmt: skip
            users[b] = trained
            # first of the tasks that its training frees, as the next cell waits for it
            items[j] = executor.part(trained, 1, priority=2)
    errors = [
        executor.submit(_squared_errors, pair, worker=executor.owner(b), priority=1)
        for b, pair in enumerate(users)
    ]
    return users, items, errors


def _validation_score(executor, cells, users, items, global_mean, settings):
    """Minus the RMSE of the held-out ratings, each user block on its worker."""
    parts = [
        executor.submit(
            _validation_task,
            row,
            users[b],
            items,
            global_mean,
            settings.biased,
            worker=executor.owner(b),
            priority=1,
        )  # fmt: skip
        for b, row in enumerate(cells)
    ]
    sums = np.array(executor.gather(parts))
    return -float(np.sqrt(sums[:, 0].sum() / sums[:, 1].sum()))


def _finish(executor, cells, users, items, grid, reports, settings, fresh, out, learn):
    """Item blocks back to the client in id order; users solved on their workers.

    Before the solve, the users' prior ``beta`` (and with ``popularity`` the popularity
    weight) is chosen as ``FunkSVD.fit`` does, on the held-out ratings of the users
    ``rows`` gathered to the client with their training ratings. ``learn`` is ``(rows,
    popularity)``.
    """
    n_items = len(grid.item_block)
    k, dtype = settings.n_components, np.dtype(settings.dtype)
    item_states = executor.gather(items)
    item_factors = np.empty((n_items, k), dtype)
    item_bias = np.empty(n_items, dtype)
    item_grad_sq = np.empty(n_items, dtype) if item_states[0].grad_sq is not None else None
    for rows, state in zip(grid.item_members, item_states, strict=True):
        item_factors[rows], item_bias[rows] = state.factors, state.bias
        if item_grad_sq is not None:
            item_grad_sq[rows] = state.grad_sq
    if fresh:
        # items nobody rated in training were never updated: zero, as FunkSVD does
        rated = np.zeros(n_items, dtype=bool)
        for report in reports:
            for j, local in enumerate(report["rated"]):
                rated[grid.item_members[j][local]] = True
        item_factors[~rated] = 0
    rows, popularity = learn
    tuning = _tuning.Tuning(rows, *gather_users(executor, cells, grid, rows, dtype))
    side = (item_factors, item_bias, out.global_mean, settings.alpha, settings.biased)
    beta, weight = _tuning.learn(tuning, side, settings.n_threads, None, _inference.SOLVE_TOL,
                                 (None if popularity else 0.0, out.item_counts))  # fmt: skip
    out.beta, out.popularity_weight = beta, weight[0]
    # broadcast once, in block order, so that a cell's item (j, i) is row offsets[j] + i
    order = np.concatenate(grid.item_members)
    offsets = np.cumsum([0] + [len(m) for m in grid.item_members])
    shared = executor.scatter((item_factors[order], item_bias[order], offsets), broadcast=True)
    solved = executor.gather([
        executor.submit(solve_task, row, users[b], shared, out.global_mean, settings.alpha,
                        settings.biased, out.beta, worker=executor.owner(b))
        for b, row in enumerate(cells)
    ])  # fmt: skip
    n_users = len(grid.user_block)
    user_factors = np.empty((n_users, k), dtype)
    user_bias = np.empty(n_users, dtype)
    user_grad_sq = np.empty(n_users, dtype) if item_grad_sq is not None else None
    for rows, (factors, bias, grad_sq) in zip(grid.user_members, solved, strict=True):
        user_factors[rows], user_bias[rows] = factors, bias
        if user_grad_sq is not None:
            user_grad_sq[rows] = grad_sq
    out.user_factors, out.user_bias = user_factors, user_bias
    out.item_factors, out.item_bias = item_factors, item_bias
    out.schedule.user_grad_sq, out.schedule.item_grad_sq = user_grad_sq, item_grad_sq


# ------------------------------------------------------------------ tasks (pure functions)
def _init_block(seed, n_rows, n_components, init_std, dtype, grad_sq_start, is_user):
    # users start at zero, as FunkSVD's: their first steps follow the random items
    if is_user:
        factors = np.zeros((n_rows, n_components), dtype)
    else:
        factors = normal_factors(np.random.RandomState(seed), n_rows, n_components, init_std,
                                 dtype)  # fmt: skip
    grad_sq = None if grad_sq_start is None else np.full(n_rows, grad_sq_start, dtype)
    return _as_pair(BlockState(factors, np.zeros(n_rows, dtype), grad_sq, 0.0), is_user)


def _as_pair(state, is_user):
    """A user block's state as the pair its tasks take (see ``BlockState``)."""
    return (state, None) if is_user else state


def _squared_errors(pair):
    """The epoch's squared errors of a user block, from its last stratum's pair: NaN if a
    block overflowed (its training task checks). A task of its own, so that only one
    number per block comes back to the client."""
    return pair[0].sse


def _validation_task(row, user_pair, item_states, global_mean, biased):
    """(squared error, count) of the held-out ratings of a user block."""
    user_state = user_pair[0]
    total, count = 0.0, 0
    for cell, item_state in zip(row, item_states, strict=True):
        users, items = joined(cell, "valid_users"), joined(cell, "valid_items")  # held out: few
        pred = np.empty(len(users), dtype=user_state.factors.dtype)
        _sgd.predict_pairs(
            users, items, user_state.factors, item_state.factors, user_state.bias,
            item_state.bias, global_mean, biased, 1, pred,
        )  # fmt: skip
        with np.errstate(over="ignore", invalid="ignore"):
            errors = pred.astype(np.float64) - joined(cell, "valid_ratings")
            total += float(np.square(errors).sum())
        count += len(pred)
    return total, count
