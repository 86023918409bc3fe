"""Funk's factor-at-a-time SGD (``algorithm="funk"``) on the DSGD grid.

As ``_engine._Run.train_funk``: factor ``f`` trains for up to ``max_iter`` epochs (with
the biases when ``f == 0``), each epoch the ``p`` strata of the grid, with a fresh
schedule and stopping rule; then its part ``p_uf * q_if`` of every prediction is added
to a cache kept beside each cell (per training and held-out rating), which the next
factors' predictions start from. The tasks are pure, as those of ``_dsgd``: the factors
depend only on the seed and the grid.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._engine import Schedule, StoppingRule, row_dots
from .._kernels import sgd as _sgd
from .._validation import all_finite
from . import _dsgd
from ._cell import copy_state
from ._shuffle import joined


def run_funk(executor, cells, states, grid, settings, schedule, global_mean, rng,
             n_train, limit, validating, resume, out):  # fmt: skip
    """Train every factor in turn from the blocks' ``states``, ``[users, items]`` (it
    empties the list); return the final user and item states (futures)."""
    owner = executor.owner
    users, items = states
    states.clear()
    caches = [
        [executor.submit(_start_cache, cell, users[b], items[j], resume, worker=owner(b))
         for j, cell in enumerate(row)]
        for b, row in enumerate(cells)
    ]  # fmt: skip
    n_iter_before, unstopped = out.n_iter, 0
    for f in range(settings.n_components):
        if resume:  # retrain factor f with all the others fixed
            caches = _add_factor(executor, cells, caches, users, items, f, -1.0)
        # each factor is a fresh problem: its schedule, AdaGrad's sums included, starts again
        factor_schedule = Schedule(settings.eta0, schedule.scale)
        start = schedule.scale**3
        users = [executor.submit(_fresh_sums, pair, start, worker=owner(b))
                 for b, pair in enumerate(users)]  # fmt: skip
        items = [executor.submit(_fresh_sums, state, start) for state in items]
        users, items, stopped = _factor_epochs(
            executor, cells, caches, users, items, f, grid, settings, factor_schedule,
            global_mean, rng, n_train, limit, validating, out,
        )  # fmt: skip
        unstopped += not stopped
        caches = _add_factor(executor, cells, caches, users, items, f, 1.0)
    schedule.t += out.n_iter - n_iter_before
    if validating and settings.tol is not None and unstopped:
        warnings.warn(
            f"Early stopping did not trigger within max_iter={settings.max_iter} epochs for "
            f"{unstopped} of the factors: the validation RMSE was still improving. Increase "
            "max_iter or eta0.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return users, items


def _factor_epochs(executor, cells, caches, users, items, f, grid, settings, schedule,
                   global_mean, rng, n_train, limit, validating, out):  # fmt: skip
    """Epochs on factor ``f`` until ``max_iter`` or the stopping rule; the best with a
    hold-out. Returns the states and whether the rule stopped them."""
    per_row = settings.learning_rate == "adagrad"
    rule = StoppingRule(settings.tol, settings.n_iter_no_change)
    best, best_score = None, -np.inf
    started = time.perf_counter()
    for _ in range(settings.max_iter):
        eta = schedule.rate(settings)
        rate = schedule.kernel_rate(eta, per_row)
        users, items, errors = _submit_epoch(
            executor, cells, caches, users, items, f, rate, grid.n_blocks, rng, settings,
            global_mean,
        )  # fmt: skip
        rmse = float(np.sqrt(sum(executor.gather(errors)) / n_train))
        score = -rmse
        if validating:
            score = _validation_score(executor, cells, caches, users, items, f, global_mean,
                                      settings)  # fmt: skip
        _dsgd.record_epoch(out, schedule, rmse, score, limit, settings, validating)
        if validating and score > best_score:
            best, best_score = (users, items), score
        if settings.verbose:
            seconds, started = time.perf_counter() - started, time.perf_counter()
            label = f"factor {f + 1}, epoch {out.n_iter}"
            print(_dsgd.epoch_line(label, rmse, score, validating, eta, seconds, n_train,
                                   len(executor.workers)))  # fmt: skip
        if rule.update(score):
            if not (settings.learning_rate == "adaptive" and schedule.slow_down()):
                return (*(best or (users, items)), True)
            rule.no_improvement = 0
    return (*(best or (users, items)), False)


def _submit_epoch(executor, cells, caches, users, items, f, rate, n_blocks, rng, settings,
                  global_mean):  # fmt: skip
    """Submit the strata of one epoch on factor ``f``; as ``_dsgd._submit_epoch``."""
    users, items = list(users), list(items)
    for s, pairs in enumerate(_dsgd.strata(rng, n_blocks, settings.shuffle)):
        for b, j in enumerate(pairs):
            trained = executor.submit(
                _funk_task, cells[b][j], caches[b][j], users[b], items[j], f, global_mean,
                rate, settings.alpha, settings.biased, settings.learning_rate == "adagrad",
                s == 0, s == n_blocks - 1, worker=executor.owner(b),
            )  # fmt: skip
            users[b] = trained
            items[j] = executor.part(trained, 1, priority=2)
    errors = [
        executor.submit(_dsgd._squared_errors, pair, worker=executor.owner(b), priority=1)
        for b, pair in enumerate(users)
    ]
    return users, items, errors


def _add_factor(executor, cells, caches, users, items, f, sign):
    """Every cell's cache plus ``sign`` times factor ``f``'s part of its predictions."""
    return [
        [executor.submit(_add_factor_task, cell, caches[b][j], users[b], items[j], f, sign,
                         worker=executor.owner(b))
         for j, cell in enumerate(row)]
        for b, row in enumerate(cells)
    ]  # fmt: skip


def _validation_score(executor, cells, caches, users, items, f, global_mean, settings):
    """Minus the RMSE of the held-out ratings, predicted from the factors up to ``f``."""
    parts = [
        executor.submit(_validation_task, row, caches[b], users[b], items, f, global_mean,
                        settings.biased, worker=executor.owner(b), priority=1)
        for b, row in enumerate(cells)
    ]  # fmt: skip
    sums = np.array(executor.gather(parts))
    return -float(np.sqrt(sums[:, 0].sum() / sums[:, 1].sum()))


# ------------------------------------------------------------------ tasks (pure functions)
def _start_cache(cell, user_pair, item_state, resume):
    """A cell's cache of the factors trained so far: none, or all of a fitted model's.
    Over its segments' ratings joined, training and held out."""
    P, Q = user_pair[0].factors, item_state.factors
    if not resume:
        n_train = sum(len(segment.ratings) for segment in cell)
        n_valid = sum(len(segment.valid_ratings) for segment in cell)
        return np.zeros(n_train, P.dtype), np.zeros(n_valid)
    return (
        np.concatenate([row_dots(P, Q, s.users, s.items) for s in cell]),
        np.concatenate([row_dots(P, Q, s.valid_users, s.valid_items) for s in cell]).astype(
            np.float64
        ),
    )


def _fresh_sums(state, start):
    """A block's state (or a user block's pair) with AdaGrad's sums started afresh."""
    pair = isinstance(state, tuple) and not hasattr(state, "_fields")
    block = state[0] if pair else state
    block = block._replace(grad_sq=np.full(len(block.factors), start, block.factors.dtype))
    return (block, None) if pair else block


def _add_factor_task(cell, cache, user_pair, item_state, f, sign):
    P, Q = user_pair[0].factors, item_state.factors
    known, valid_known = cache[0].copy(), cache[1].copy()
    at = valid_at = 0
    for s in cell:  # a segment at a time: no copy of the cell's indices
        known[at : at + len(s.users)] += sign * (P[s.users, f] * Q[s.items, f])
        part = sign * (P[s.valid_users, f] * Q[s.valid_items, f])
        valid_known[valid_at : valid_at + len(part)] += part
        at, valid_at = at + len(s.users), valid_at + len(part)
    return known, valid_known


def _funk_task(cell, cache, user_pair, item_state, f, global_mean, rate, alpha, biased,
               per_row, first_stratum, last_stratum):  # fmt: skip
    """A cell's epoch of Funk's SGD on factor ``f``, on copies of the two blocks' states.

    As ``_cell.train_task``, with ``_sgd.funk_epoch``: the biases train with factor 0.
    """
    user_state = user_pair[0]
    (user, _), (item, _) = copy_state(user_state), copy_state(item_state)
    sse, at = 0.0, 0
    for segment in cell:
        n = len(segment.ratings)
        if n:
            sse += _sgd.funk_epoch(
                segment.users, segment.items, segment.ratings, cache[0][at : at + n],
                np.array([0, n], dtype=np.int64), np.zeros((1, 1), dtype=np.int32), f,
                user.factors, item.factors, user.bias, item.bias, user.grad_sq, item.grad_sq,
                global_mean, rate, alpha, biased, f == 0, per_row, 1, np.zeros(1),
            )  # fmt: skip
        at += n
    blocks = (user.factors, user.bias, item.factors, item.bias)
    if last_stratum and not all(all_finite(a) for a in blocks):
        sse = np.nan
    return user._replace(sse=sse + (0.0 if first_stratum else user_state.sse)), item


def _validation_task(row, caches, user_pair, item_states, f, global_mean, biased):
    """(squared error, count) of a user block's held-out ratings, factors up to ``f``."""
    user = user_pair[0]
    total, count = 0.0, 0
    for cell, cache, item in zip(row, caches, item_states, strict=True):
        u, i = joined(cell, "valid_users"), joined(cell, "valid_items")
        pred = cache[1] + user.factors[u, f] * item.factors[i, f]
        if biased:
            pred += global_mean + user.bias[u] + item.bias[i]
        with np.errstate(over="ignore", invalid="ignore"):
            total += float(np.square(pred - joined(cell, "valid_ratings")).sum())
        count += len(pred)
    return total, count
