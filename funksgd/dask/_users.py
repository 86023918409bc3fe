"""The users' side of a DSGD fit on the workers: the final solve of each user block, and
the ratings of the sampled users gathered to the client to learn the prior and the
popularity weight."""

import numpy as np
import scipy.sparse as sp

from .. import _inference
from .._inference import solve_users

# ratings per chunk of a user block's final solve: its memory beside the cells (~40 B each)
SOLVE_CHUNK_RATINGS = 1 << 18


def gather_users(executor, cells, grid, rows, dtype):
    """The training and the held-out ratings of the users ``rows`` (sorted), as two CSR
    matrices with a row per user.

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
    pieces = [], []  # training, held out
    for b, part in enumerate(parts):
        for j, cell in enumerate(part):
            for held, (u, i, r) in enumerate(cell):
                users = np.searchsorted(rows, grid.user_members[b][u])
                pieces[held].append((users, grid.item_members[j][i], r))
    return tuple(_to_csr(piece, (len(rows), n_items), dtype) for piece in pieces)


def _to_csr(triplets, shape, dtype):
    """CSR ``shape`` from pieces ``(users, items, ratings)``, each row sorted by item."""
    users, items, ratings = (np.concatenate([t[f] for t in triplets]) for f in range(3))
    order = np.lexsort((items, users))
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=shape[0]), out=indptr[1:])
    ratings = ratings[order].astype(dtype, copy=False)
    return sp.csr_array((ratings, items[order].astype(np.int32), indptr), shape=shape)


def _users_ratings(row, wanted, n_rows):
    """For each cell of a user block, ``(users, items, ratings)`` of its rows ``wanted``:
    training ratings, held-out ones. A few arrays per cell (not per segment), so that Dask
    sends them as they are instead of joining many small ones into one message first."""
    chosen = np.zeros(n_rows, dtype=bool)  # a byte per user, not a sort of the ratings
    chosen[wanted] = True
    out = []
    for cell in row:
        sides = []
        for first in (0, 3):  # the training ratings, then the held-out ones (see Cell)
            masks = [chosen[segment[first]] for segment in cell]
            sides.append(tuple(
                np.concatenate([s[f][m] for s, m in zip(cell, masks, strict=True)])
                for f in range(first, first + 3)
            ))  # fmt: skip
        out.append(tuple(sides))
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
    for segment in (s for cell in row for s in cell):  # sorted by user: no copy to count
        for users in (segment.users, segment.valid_users):
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
        for s in cell:
            for u, i, r in [(s.users, s.items, s.ratings),
                            (s.valid_users, s.valid_items, s.valid_ratings)]:  # fmt: skip
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
