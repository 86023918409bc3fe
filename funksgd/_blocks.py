"""The order in which SGD visits the ratings: a grid of user blocks x item blocks.

Users and items are shuffled once per fit and cut into ``n_blocks`` groups each,
balanced by number of ratings. The ratings are copied once, grouped by
(user block, item block) cell and by user inside a cell, so that a cell's item
factors and the current user's factors stay in cache. Each epoch visits the cells
stratum by stratum in a fresh random order; the cells of a stratum share no user
and no item (as in DSGD and LIBMF's FPSGD), so threads can process them at once
and the result does not depend on the number of threads.

During SGD a user is known by its position in the shuffled user order, and the
user factors are stored in that order: each cell then reads its users' rows front
to back, which the hardware streams from memory.
"""

import numpy as np

from ._kernels import sgd as _sgd
from ._validation import csr_arrays
from ._validation import item_counts as count_items

# The item factors of one cell should fit in a core's share of the last-level cache
# (prefetching hides the rest). More blocks than that cost speed: each user's row is
# streamed from memory once per block. Measured on 480k x 17.8k Netflix-shaped ratings,
# k=100, one thread: 2 to 6 blocks per side run at the same speed, 8 at -8%, 16 at -25%.
_CELL_ITEM_BYTES = 2 * 1024 * 1024
# at least this many blocks per side, so that threads have cells to share
_MIN_BLOCKS = 4
_MAX_BLOCKS = 16
_MIN_RATINGS_PER_CELL = 2_000


def choose_n_blocks(n_users, n_items, n_ratings, n_components, itemsize):
    """Blocks per side: enough for cache locality and thread sharing, never tiny cells.

    Depends on the data shape only (not on ``n_jobs``), so every thread count
    visits the ratings in the same order.
    """
    by_cache = int(np.ceil(n_items * n_components * itemsize / _CELL_ITEM_BYTES))
    by_size = int(np.sqrt(n_ratings / _MIN_RATINGS_PER_CELL))
    n_blocks = min(max(_MIN_BLOCKS, by_cache), _MAX_BLOCKS, by_size, n_users, n_items)
    return max(1, n_blocks)


def _inverse(order):
    """The inverse permutation of ``order``."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order), dtype=order.dtype)
    return inverse


def _balanced_groups(order, counts, n_groups):
    """Assign the ids in ``order`` to ``n_groups`` contiguous groups of similar total count."""
    cumulative = np.cumsum(counts[order], dtype=np.float64)
    total = cumulative[-1] if len(cumulative) else 0.0
    groups = np.empty(len(order), dtype=np.int32)
    if total == 0:
        groups[order] = np.arange(len(order)) * n_groups // max(len(order), 1)
    else:
        groups[order] = np.minimum((cumulative - 1e-9) * n_groups // total, n_groups - 1)
    return groups


class BlockedRatings:
    """Ratings of a CSR matrix copied once into cells of a shuffled block grid.

    ``users[n]``, ``items[n]``, ``ratings[n]`` is the ``n``-th rating visited.
    Users and items are known by position: the user is ``row_order[users[n]]``
    and the item ``item_order[items[n]]``, so the factors SGD updates are stored
    in those orders too (``factors[item_order]``, and back with
    ``factors[item_position()]``; likewise for users). A block's users, and a
    block's items, are then contiguous in memory: each cell streams its users' rows,
    and two threads never write to the same cache line (which cost a fifth of the
    speed of two threads).
    ``block_ptr[c]:block_ptr[c + 1]`` are the ratings of cell ``c``, which pairs user
    block ``c // n_blocks`` with item block ``c % n_blocks``.

    Parameters
    ----------
    X : scipy.sparse.csr_array
        Canonical CSR ratings with int64 ``indptr`` and int32 ``indices``.
    n_blocks : int
        Number of user blocks and of item blocks.
    rng : numpy.random.RandomState
        Source of the user order and the item grouping.
    n_threads : int, default=1
        Threads that copy the ratings; the result does not depend on it.
    item_counts : ndarray of shape (n_items,), default=None
        Ratings per item, when the caller has them (``skip`` left out).
    skip : ndarray of shape (n_users,), default=None
        For each row, the position in ``X.indices`` of one rating left out of the
        cells, or -1.
    """

    def __init__(self, X, n_blocks, rng, n_threads=1, item_counts=None, skip=None):
        n_users, n_items = X.shape
        skip = np.empty(0, np.int64) if skip is None else skip
        user_counts = np.diff(X.indptr) - (skip >= 0) if len(skip) else np.diff(X.indptr)
        if item_counts is None:
            item_counts = count_items(X)
        self.row_order = rng.permutation(n_users).astype(np.int32)
        self.user_block = _balanced_groups(self.row_order, user_counts, n_blocks)
        self.item_order = rng.permutation(n_items).astype(np.int32)
        self.item_block = _balanced_groups(self.item_order, item_counts, n_blocks)
        self.n_blocks = n_blocks
        self.block_ptr = np.empty(n_blocks * n_blocks + 1, dtype=np.int64)
        n_ratings = int(user_counts.sum())
        self.users = np.empty(n_ratings, dtype=np.int32)
        self.items = np.empty(n_ratings, dtype=np.int32)
        self.ratings = np.empty(n_ratings, dtype=X.dtype)
        # the user blocks are runs of row_order
        starts = np.searchsorted(self.user_block[self.row_order], np.arange(n_blocks + 1))
        _sgd.group_by_block(
            *csr_arrays(X), self.row_order, self.user_block, starts.astype(np.int64),
            self.item_block, self.item_position(), skip, n_threads, self.block_ptr, self.users,
            self.items, self.ratings,
        )  # fmt: skip

    def user_position(self):
        """Position of each user in ``row_order``: its row in the SGD user factors."""
        return _inverse(self.row_order)

    def item_position(self):
        """Position of each item in ``item_order``: its row in the SGD item factors."""
        return _inverse(self.item_order)

    def schedule(self, rng, shuffle=True):
        """Cells for one epoch: ``schedule[s]`` lists the cells of stratum ``s``.

        Stratum ``s`` pairs user block ``b`` with item block ``match[(b + shift[s]) % n]``,
        so every cell is visited exactly once per epoch.
        """
        n = self.n_blocks
        match = rng.permutation(n) if shuffle else np.arange(n)
        shift = rng.permutation(n) if shuffle else np.arange(n)
        user_blocks = np.arange(n)
        item_blocks = match[(user_blocks[None, :] + shift[:, None]) % n]
        return np.ascontiguousarray(user_blocks[None, :] * n + item_blocks, dtype=np.int32)
