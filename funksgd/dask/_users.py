"""The users' side of a DSGD fit on the workers: the final solve of each user block, and
the samples of users gathered to the client to learn the prior and the popularity weight."""

import numpy as np
import scipy.sparse as sp

from .. import _inference
from .._inference import solve_users
from .._ranking import LEARN_SEED

# the users whose ratings _ranking.fitted_popularity learns the popularity weight from: at
# most this many, holding about this many ratings (its defaults)
POPULARITY_MAX_USERS = 2000
POPULARITY_MAX_RATINGS = 1 << 18
# ratings per chunk of a user block's final solve: its memory beside the cells (~40 B each)
SOLVE_CHUNK_RATINGS = 1 << 18


def prior_users(user_counts, rng):
    """The users ``_inference.prior_strength`` samples, drawing from ``rng`` as it does.

    Given the ratings of just these users, in this order, ``prior_strength`` takes them
    all and goes on drawing from ``rng`` as it would on all the ratings: the same
    ``beta`` from ``PRIOR_SAMPLE_ROWS`` users gathered to the client.
    """
    rows = np.flatnonzero(user_counts >= 2)
    if len(rows) > _inference.PRIOR_SAMPLE_ROWS:
        rows = np.sort(rng.choice(rows, _inference.PRIOR_SAMPLE_ROWS, replace=False))
    return rows


def popularity_users(user_counts):
    """The users ``_ranking.fitted_popularity`` learns the popularity weight on, as it
    chooses them from all the ratings (given just theirs, it takes them all)."""
    n_users = len(user_counts)
    if user_counts.sum() <= POPULARITY_MAX_RATINGS and n_users <= POPULARITY_MAX_USERS:
        return np.arange(n_users)
    users = np.random.RandomState(LEARN_SEED).permutation(n_users)
    taken = np.searchsorted(np.cumsum(user_counts[users]), POPULARITY_MAX_RATINGS)
    return np.sort(users[: max(1, min(int(taken), POPULARITY_MAX_USERS))])


def gather_users(executor, cells, grid, rows, dtype):
    """The ratings (training and held-out) of the users ``rows``, sorted, as CSR rows.

    Each user block's worker picks its users' ratings out of its cells; only those come
    to the client.
    """
    n_items = len(grid.item_block)
    blocks = grid.user_block[rows]
    parts = executor.gather([
        executor.submit(_users_ratings, row, grid.user_local[rows[blocks == b]],
                        len(grid.user_members[b]), worker=executor.owner(b))
        for b, row in enumerate(cells)
    ])  # fmt: skip
    users, items, ratings = [], [], []
    for b, part in enumerate(parts):
        for j, (u, i, r) in enumerate(part):
            users.append(np.searchsorted(rows, grid.user_members[b][u]))
            items.append(grid.item_members[j][i])
            ratings.append(r)
    users, items = np.concatenate(users), np.concatenate(items)
    ratings = np.concatenate(ratings).astype(dtype, copy=False)
    order = np.lexsort((items, users))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=len(rows)), out=indptr[1:])
    return sp.csr_array(
        (ratings[order], items[order].astype(np.int32), indptr), shape=(len(rows), n_items)
    )


def _users_ratings(row, wanted, n_rows):
    """``(users, items, ratings)`` of each cell of a user block, for its rows ``wanted``."""
    chosen = np.zeros(n_rows, dtype=bool)  # a byte per user, not a sort of the ratings
    chosen[wanted] = True
    out = []
    for cell in row:
        train, valid = chosen[cell.users], chosen[cell.valid_users]
        out.append((
            np.r_[cell.users[train], cell.valid_users[valid]],
            np.r_[cell.items[train], cell.valid_items[valid]],
            np.r_[cell.ratings[train], cell.valid_ratings[valid]],
        ))  # fmt: skip
    return out


def solve_task(row, user_pair, shared, global_mean, alpha, biased, beta):
    """User factors of a block from all its ratings, solved as ``FunkSVD.transform`` does,
    the items broadcast once.

    The users are solved in chunks of about ``SOLVE_CHUNK_RATINGS`` ratings, each chunk's
    ratings copied out of the cells (sorted by user in each), so that the solve needs
    little memory beyond the cells.
    """
    user_state = user_pair[0]
    item_factors, item_bias, offsets = shared
    n_rows, k = user_state.factors.shape
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for cell in row:  # sorted by user: no copy of the users to count them
        for users in (cell.users, cell.valid_users):
            indptr += np.searchsorted(users, np.arange(n_rows + 1, dtype=users.dtype))
    factors = np.zeros((n_rows, k), dtype=item_factors.dtype)
    bias = np.zeros(n_rows, dtype=item_factors.dtype)
    for a, z in _inference.row_chunks(indptr, SOLVE_CHUNK_RATINGS):
        X = _chunk_ratings(row, offsets, a, z, len(item_factors))
        # the in-process solve, on these rows: its errors reach the client as they are
        factors[a:z], bias[a:z] = solve_users(
            X, item_factors, item_bias, global_mean, alpha, biased, 1, beta
        )
    return factors, bias, user_state.grad_sq


def _chunk_ratings(row, offsets, a, z, n_items):
    """CSR ratings (training and held-out) of the block's users ``a`` to ``z - 1``."""
    users, items, ratings = [], [], []
    for j, cell in enumerate(row):
        for u, i, r in [(cell.users, cell.items, cell.ratings),
                        (cell.valid_users, cell.valid_items, cell.valid_ratings)]:  # fmt: skip
            first, last = np.searchsorted(u, np.array([a, z], dtype=u.dtype))
            users.append(u[first:last])
            items.append(offsets[j] + i[first:last])
            ratings.append(r[first:last])
    users, items, ratings = np.concatenate(users), np.concatenate(items), np.concatenate(ratings)
    order = np.lexsort((items, users))
    indptr = np.zeros(z - a + 1, dtype=np.int64)
    np.cumsum(np.bincount(users - a, minlength=z - a), out=indptr[1:])
    return sp.csr_array(
        (ratings[order], items[order].astype(np.int32), indptr), shape=(z - a, n_items)
    )
