"""One cell of the block grid through the engine's block-level entry point."""

from types import SimpleNamespace

import numpy as np

from .._engine import Factors, Schedule, train_cells


def train_cell(users, items, ratings, user_factors, item_factors, user_bias, item_bias,
               user_grad_sq, item_grad_sq, global_mean, rate, alpha, biased,
               learning_rate):  # fmt: skip
    """One SGD pass over the ratings of one cell, updating the factor slices in place.

    A cell pairs a block of users with a block of items: ``users[n]`` and
    ``items[n]`` are LOCAL indices into ``user_factors`` and ``item_factors``
    (the rows of those two blocks). The ratings are visited in the given order,
    by one thread, through ``_engine.train_cells``, so the result depends only on
    the arguments.

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

    Returns
    -------
    sse : float
        Sum of the squared errors seen during the pass.
    """
    n = len(ratings)
    if n == 0:
        return 0.0
    cells = SimpleNamespace(
        users=users, items=items, ratings=ratings, block_ptr=np.array([0, n], dtype=np.int64)
    )
    schedule = Schedule(0.0, 1.0)  # only its sums are read: this block's
    schedule.user_grad_sq, schedule.item_grad_sq = user_grad_sq, item_grad_sq
    factors = Factors(user_factors, item_factors, user_bias, item_bias, global_mean, schedule)
    settings = SimpleNamespace(alpha=alpha, biased=biased, learning_rate=learning_rate)
    return train_cells(cells, factors, rate, settings)
