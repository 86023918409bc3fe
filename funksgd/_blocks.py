"""The order in which SGD visits the ratings: a grid of user blocks x item blocks.

Users and items are shuffled once per fit and cut into ``n_blocks`` groups each,
balanced by number of ratings. The ratings are copied once, grouped by
(user block, item block) cell and by user inside a cell, so that a cell's item
factors and the current user's factors stay in cache. Each epoch visits the cells
stratum by stratum in a fresh random order; the cells of a stratum share no user
and no item (as in DSGD and LIBMF's FPSGD), so threads can process them at once
and the result does not depend on the number of threads.
"""

import numpy as np

from . import _sgd
from ._validation import csr_arrays

# Item factors of one cell should fit in a core's L2 cache.
_CELL_ITEM_BYTES = 512 * 1024
_MAX_BLOCKS = 16
_MIN_RATINGS_PER_CELL = 2_000


def choose_n_blocks(n_users, n_items, n_ratings, n_components, itemsize):
    """Blocks per side: enough for cache locality and two-thread sharing, never tiny cells.

    Depends on the data shape only (not on ``n_jobs``), so every thread count
    visits the ratings in the same order.
    """
    by_cache = int(np.ceil(n_items * n_components * itemsize / _CELL_ITEM_BYTES))
    by_size = int(np.sqrt(n_ratings / _MIN_RATINGS_PER_CELL))
    n_blocks = min(max(4, by_cache), _MAX_BLOCKS, by_size, n_users, n_items)
    return max(1, n_blocks)


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

    Parameters
    ----------
    X : scipy.sparse.csr_array
        Canonical CSR ratings with int64 ``indptr`` and int32 ``indices``.
    n_blocks : int
        Number of user blocks and of item blocks.
    rng : numpy.random.RandomState
        Source of the user order and the item grouping.
    """

    def __init__(self, X, n_blocks, rng):
        n_users, n_items = X.shape
        user_counts = np.diff(X.indptr)
        item_counts = np.bincount(X.indices, minlength=n_items)
        self.row_order = rng.permutation(n_users).astype(np.int32)
        self.user_block = _balanced_groups(self.row_order, user_counts, n_blocks)
        self.item_block = _balanced_groups(rng.permutation(n_items), item_counts, n_blocks)
        self.n_blocks = n_blocks
        self.block_ptr = np.empty(n_blocks * n_blocks + 1, dtype=np.int64)
        self.users = np.empty(X.nnz, dtype=np.int32)
        self.items = np.empty(X.nnz, dtype=np.int32)
        self.ratings = np.empty(X.nnz, dtype=X.dtype)
        _sgd.group_by_block(
            *csr_arrays(X), self.row_order, self.user_block, self.item_block,
            n_blocks, self.block_ptr, self.users, self.items, self.ratings,
        )

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
