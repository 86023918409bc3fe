"""One cell of the block grid: the engine's block-level entry point, and the tasks of DSGD
that train a cell."""

from types import SimpleNamespace

import numpy as np

from .._engine import Factors, Schedule, train_cells
from .._kernels import sgd as _sgd


def train_cell(users, items, ratings, user_factors, item_factors, user_bias, item_bias,
               user_grad_sq, item_grad_sq, global_mean, rate, alpha, biased,
               learning_rate, user_norms=None, item_norms=None):  # fmt: skip
    """One SGD pass over the ratings of one cell, updating the factor slices in place.

    A cell pairs a block of users with a block of items: ``users[n]`` and
    ``items[n]`` are LOCAL indices into ``user_factors`` and ``item_factors``
    (the rows of those two blocks). The ratings are visited in the given order,
    by one thread, with the kernel of ``_engine.train_cells``, so the result depends
    only on the arguments.

    Parameters
    ----------
    users, items : ndarray of int32 of shape (n,)
        Local row indices of each rating in the user and item slices.
    ratings : ndarray of shape (n,)
        The ratings, in the factors' dtype.
    user_factors, item_factors : ndarray of shape (n_rows, k), C-contiguous
        Factor slices, updated in place.
    user_bias, item_bias : ndarray of shape (n_rows,)
        Bias slices, updated in place (unused when ``biased`` is False).
    user_grad_sq, item_grad_sq : ndarray of shape (n_rows,) or None
        AdaGrad's sums of squared gradients, updated in place; only read with
        ``learning_rate="adagrad"``.
    global_mean : float
        Mean training rating (0 when unbiased).
    rate : float
        The rate the kernel takes (``Schedule.kernel_rate``): ``eta`` for the global
        schedules, and for "adagrad" ``eta0 * sqrt(scale)``, with the sums started at
        ``scale**3``.
    alpha : float
        L2 regularisation.
    biased : bool
        Whether the model has biases.
    learning_rate : str
        "adagrad" runs the per-row AdaGrad kernel, anything else the plain one.
    user_norms, item_norms : ndarray of shape (n_rows,) or None
        For "adagrad", each row's p.p as :func:`copy_state` computes it, updated in
        place; the kernel computes them itself when either is None. The result is the
        same either way.

    Returns
    -------
    sse : float
        Sum of the squared errors seen during the pass.
    """
    n = len(ratings)
    if n == 0:
        return 0.0
    block_ptr = np.array([0, n], dtype=np.int64)
    if learning_rate == "adagrad" and user_norms is not None and item_norms is not None:
        # the kernel ``_engine.train_cells`` runs, given the norms
        return _sgd.adagrad_epoch(
            users, items, ratings, block_ptr, np.zeros((1, 1), dtype=np.int32), user_factors,
            item_factors, user_bias, item_bias, user_grad_sq, item_grad_sq, global_mean, rate,
            alpha, biased, 1, np.zeros(1), user_norms, item_norms,
        )  # fmt: skip
    cells = SimpleNamespace(users=users, items=items, ratings=ratings, block_ptr=block_ptr)
    schedule = Schedule(0.0, 1.0)  # only its sums are read: this block's
    schedule.user_grad_sq, schedule.item_grad_sq = user_grad_sq, item_grad_sq
    factors = Factors(user_factors, item_factors, user_bias, item_bias, global_mean, schedule)
    settings = SimpleNamespace(alpha=alpha, biased=biased, learning_rate=learning_rate)
    return train_cells(cells, factors, rate, settings)


def copy_state(state, with_norms=False):
    """A copy of a block's state (a ``_dsgd.BlockState``), and its rows' p.p if asked.

    Returns ``(copy, norms)``; ``norms`` (None unless ``with_norms``) are those the
    AdaGrad kernel starts from, computed in the same pass as the copy
    (``_sgd.copy_rows``), so that the kernel need not read the factors once more.
    """
    factors = np.empty_like(state.factors, order="C")
    norms = None
    if with_norms:
        norms = np.empty(len(factors), factors.dtype)
        _sgd.copy_rows(state.factors, factors, norms)
    else:
        np.copyto(factors, state.factors)
    copied = state._replace(
        factors=factors,
        bias=state.bias.copy(),
        grad_sq=None if state.grad_sq is None else state.grad_sq.copy(),
    )
    return copied, norms


# ------------------------------------------------------------------ tasks (pure functions)
def fresh_user_copy(user_pair, with_norms):
    """A copy of a user block's state, and its rows' p.p for AdaGrad (``with_norms``), for
    the next cell to train in place.

    A task of its own, so that the worker copies the block while the item block of the
    next cell is on its way; its one consumer is that :func:`train_task`.
    """
    return copy_state(user_pair[0], with_norms)


def train_task(cell, fresh, item_state, global_mean, rate, alpha, biased, learning_rate,
               first_stratum):  # fmt: skip
    """A cell's SGD pass on ``fresh``, a copy of the user block's state made for it alone
    (:func:`fresh_user_copy`), and on a copy of the item block's state: Dask may rerun it.

    Returns the pair (new user state, new item state). The user block's ``sse`` adds this
    cell's squared errors (afresh in an epoch's first stratum).
    """
    user, user_norms = fresh
    item, item_norms = copy_state(item_state, user_norms is not None)
    sse = train_cell(
        cell.users, cell.items, cell.ratings, user.factors, item.factors, user.bias, item.bias,
        user.grad_sq, item.grad_sq, global_mean, rate, alpha, biased, learning_rate,
        user_norms, item_norms,
    )  # fmt: skip
    return user._replace(sse=sse + (0.0 if first_stratum else user.sse)), item
