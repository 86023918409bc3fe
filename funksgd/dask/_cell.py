"""One cell of the block grid: the engine's block-level entry point, and the tasks of DSGD
that train a cell."""

import sys
import threading
from types import SimpleNamespace

import numpy as np

from .._engine import Factors, Schedule, train_cells
from .._kernels import sgd as _sgd
from .._validation import all_finite


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


def copy_state(state, with_norms=False):
    """A copy of a block's state (a ``_dsgd.BlockState``), and its rows' p.p if asked.

    Returns ``(copy, norms)``; ``norms`` (None unless ``with_norms``) are those the
    AdaGrad kernel starts from, computed in the same pass as the copy
    (``_sgd.copy_rows``), so that the kernel need not read the factors once more.
    """
    factors = new_array(state.factors.shape, state.factors.dtype)
    norms = None
    if with_norms:
        norms = np.empty(len(factors), factors.dtype)
        _sgd.copy_rows(state.factors, factors, norms)
    else:
        np.copyto(factors, state.factors)
    return _with_copies(state, factors), norms


def _with_copies(state, factors):
    """``state`` with ``factors`` and copies of its bias and AdaGrad sums."""
    return state._replace(factors=factors, bias=_copy(state.bias), grad_sq=_copy(state.grad_sq))


def _copy(values):
    if values is None:
        return None
    out = new_array(values.shape, values.dtype)
    np.copyto(out, values)
    return out


# arrays of this many bytes or more that the tasks return are recycled (see new_array),
# the last MAX_SPARES of them
SPARE_MIN_BYTES = 1 << 17
MAX_SPARES = 32
_spares = []
_spares_lock = threading.Lock()


def new_array(shape, dtype):
    """An uninitialised C-ordered array for a task's output; the caller writes it in full.

    Each training task returns new blocks, and Dask lets go of the last ones soon after.
    Fresh memory for each would be pages that the system maps and zeroes as the kernel
    first writes them (5-10% of an epoch's time on 10M ratings, ``benchmarks/README.md``).
    So a large array is, where there is one, the memory of an earlier output that nothing
    refers to any more but this module's list of the last ``MAX_SPARES`` arrays it
    handed out: the output is still new to everything that reads it, and the tasks stay
    pure. The list never holds more arrays of a shape than were in use at once;
    :func:`release_spares` empties it.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    if int(np.prod(shape)) * dtype.itemsize < SPARE_MIN_BYTES:
        return np.empty(shape, dtype)
    with _spares_lock:  # two threads of a worker must not take the same array
        for n in range(len(_spares)):
            # unused when the list holds the only reference (getrefcount counts its own)
            if (sys.getrefcount(_spares[n]) == 2 and _spares[n].shape == shape
                    and _spares[n].dtype == dtype):  # fmt: skip
                return _spares[n]
        out = np.empty(shape, dtype)
        _spares.append(out)
        del _spares[:-MAX_SPARES]
    return out


def release_spares():
    """Let go of the arrays :func:`new_array` keeps for reuse (a task: the end of training)."""
    with _spares_lock:
        _spares.clear()


# rows of a user block copied at a time by ``train_task``, each chunk (one memcpy) just
# before its ratings: 1.6 MB at k=100 in float32, in cache when the kernel reads them
# (2-4% faster than 256-1024 rows, measured on a 10M-rating cell)
CHUNK_ROWS = 4096


# ------------------------------------------------------------------ tasks (pure functions)
def train_task(cell, user_pair, item_state, global_mean, rate, alpha, biased, learning_rate,
               first_stratum, last_stratum):  # fmt: skip
    """A cell's SGD pass on copies of the states of its user block (``user_pair[0]``)
    and item block, which it leaves as they were: Dask may rerun it.

    ``cell`` is the list of its segments (``_shuffle.Cell``, consecutive ranges of the
    block's users, each sorted by user), trained in turn. The kernel copies the user
    block's factors as it goes, a chunk of rows at a time just before their ratings, so
    the big block is read from memory once; the result is that of :func:`train_cell` on
    copies, over the segments' ratings joined. Returns the pair (new user state, new item
    state). The user block's ``sse`` adds this cell's squared errors (afresh in an
    epoch's first stratum); in the epoch's last stratum, which sees every block once, it
    is NaN if a factor or bias of either block is not finite (the kernel checks the user
    factors while they are in cache).
    """
    per_row = learning_rate == "adagrad"
    source = user_pair[0]
    item, item_norms = copy_state(item_state, per_row)
    # the kernel fills the user block's factors
    user = _with_copies(source, new_array(source.factors.shape, source.factors.dtype))
    sse = 0.0
    for segment, lo, hi in _row_ranges(cell, len(source.factors)):
        chunk_rows = np.append(np.arange(lo, hi, CHUNK_ROWS), hi).astype(np.int32)
        # the users' ratings are sorted: chunk c's are those of its rows
        chunk_ptr = np.searchsorted(segment.users, chunk_rows).astype(np.int64)
        sse = _sgd.sgd_cell(
            segment.users, segment.items, segment.ratings, chunk_ptr, chunk_rows,
            source.factors, user.factors, item.factors, user.bias, item.bias, user.grad_sq,
            item.grad_sq, item_norms, global_mean, rate, alpha, biased, per_row, last_stratum,
            sse,
        )  # fmt: skip
    if last_stratum and not all(all_finite(a) for a in (user.bias, item.factors, item.bias)):
        sse = np.nan
    return user._replace(sse=sse + (0.0 if first_stratum else source.sse)), item


def _row_ranges(segments, n_rows):
    """``(segment, lo, hi)`` for the segments with ratings: the rows ``lo:hi`` each
    copies, from its first user to the next one's (from row 0 for the first, to
    ``n_rows`` for the last), so that together they copy every row."""
    kept = [segment for segment in segments if len(segment.ratings)] or segments[:1]
    starts = [0] + [int(segment.users[0]) for segment in kept[1:]] + [n_rows]
    return zip(kept, starts[:-1], starts[1:], strict=True)
