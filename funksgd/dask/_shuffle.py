"""The one shuffle of a distributed fit: every partition's ratings to the worker of their
user block, cut into that block's cells.

Each partition is split by cell, its pieces sorted by user then item. A user block's
cells are then built one at a time by a chain of tasks on the block's worker: each task
takes the pieces of the cells still to build, merges those of one cell, and passes the
others on, so that a cell's pieces are let go as soon as the cell exists. The worker
holds its share of the ratings once, plus the cell being built: never all the pieces
and all the cells at once.
"""

from collections import namedtuple

import numpy as np

# the ratings of one cell, LOCAL indices into its user block and item block; ``valid_*``
# are the held-out ratings of early stopping (empty without it)
Cell = namedtuple("Cell", "users items ratings valid_users valid_items valid_ratings")
# the cells of a user block still to build: ``pieces[j]`` are the runs (sorted ratings,
# see ``split_by_cell``) of the j-th of them; ``held`` the hold-out of the validation
# ratings over the block's ratings from ``offset`` on (cells in turn, each sorted), or
# None; ``left`` the tuning rating of each user counted from the next cell on, or None
Pending = namedtuple("Pending", "pieces held offset left report")
# a partition is cut by cell, and a cell merged from its pieces, this many ratings at a
# time (a cell: whole users, so about as many)
CHUNK_RATINGS = 1 << 18


def make_cells(executor, data, grid, rng, fraction, tuning):
    """The cells ``cells[b][j]`` of the grid, each on the worker of user block ``b``,
    and the blocks' reports (duplicates, counts), gathered.

    The ratings are ``data.triplets``, handles this function lets go of (it sets them to
    None), as of every intermediate result once its tasks are submitted: Dask frees each
    as soon as the tasks that read it are done. ``fraction`` of each block's ratings are
    held out for validation; or ``tuning``, ``(users, offsets)``, names the one rating
    of each sampled user held out to tune the prior; or neither.
    """
    p = grid.n_blocks
    where = executor.scatter(
        (grid.user_block, grid.user_local, grid.item_block, grid.item_local), broadcast=True
    )
    parts = [executor.submit(split_by_cell, t, where, p) for t in data.triplets]
    data.triplets = None
    # each piece moves to its block's worker as soon as it is cut, and its partition's
    # worker lets go of it then, not once the whole block has arrived
    owns = [[executor.submit(_arrived, executor.part(part, b), worker=executor.owner(b))
             for part in parts] for b in range(p)]  # fmt: skip
    del parts
    seeds = rng.randint(np.iinfo(np.int32).max, size=p)
    cells, reports = [], []
    for b in range(p):
        held = None
        if tuning is not None:
            mine = grid.user_block[tuning[0]] == b
            held = grid.user_local[tuning[0][mine]], tuning[1][mine], len(grid.user_members[b])
        state = executor.submit(start_block, owns[b], seeds[b], fraction, held,
                                worker=executor.owner(b))  # fmt: skip
        owns[b] = None
        row = []
        for _ in range(p):
            step = executor.submit(next_cell, state, worker=executor.owner(b))
            row.append(executor.part(step, 0))
            state = executor.part(step, 1)
        cells.append(row)
        reports.append(executor.part(state, 4))  # the last Pending's report
    del state, step
    return cells, executor.gather(reports)


# ------------------------------------------------------------------ tasks (pure functions)
def _arrived(piece):
    """``piece``, on the worker this task runs on."""
    return piece


def split_by_cell(triplets, where, n_blocks):
    """One partition's ratings in local indices, cut by cell: ``pieces[b][j]`` holds the
    (user row, item row, rating) arrays of cell ``(b, j)`` and the bounds of their runs
    (see :func:`_runs`), each run sorted by user then item (equal pairs in the
    partition's order). The partition is cut ``CHUNK_RATINGS`` ratings at a time, a run
    per chunk, so that the task needs little memory beyond its input and output. A
    cell's runs are then joined into arrays of its own, one cell at a time: a few large
    arrays travel to the block's worker without Dask first copying many small ones into
    one message."""
    pieces = [[[] for _ in range(n_blocks)] for _ in range(n_blocks)]
    sizes = [int(local.max(initial=0)) + 1 for local in where[1::2]]  # of the blocks
    for start in range(0, max(len(triplets[2]), 1), CHUNK_RATINGS):  # an empty one too
        chunk = (values[start : start + CHUNK_RATINGS] for values in triplets)
        runs = _sorted_runs(*chunk, where, sizes, n_blocks)
        for c, run in enumerate(runs):  # empty ones too: every cell has a run
            pieces[c // n_blocks][c % n_blocks].append(run)
    for row in pieces:
        for j, runs in enumerate(row):  # each cell's runs are freed before the next's join
            bounds = np.cumsum([0] + [len(run[2]) for run in runs])
            row[j] = (*(np.concatenate([run[f] for run in runs]) for f in range(3)), bounds)
    return pieces


def _runs(piece):
    """The sorted runs of a piece of :func:`split_by_cell`: views of its arrays."""
    *arrays, bounds = piece
    return [tuple(v[a:z] for v in arrays) for a, z in zip(bounds[:-1], bounds[1:], strict=True)]


def _sorted_runs(rows, cols, ratings, where, sizes, n_blocks):
    """The (user row, item row, rating) arrays of each cell ``c = b * n_blocks + j``,
    sorted by user then item; ``sizes`` bound the local rows of a user and an item
    block. Each cell's are arrays of their own, not views of the chunk's, so that a
    cell's runs are freed with it."""
    user_block, user_local, item_block, item_local = where
    cell = user_block[rows] * np.int32(n_blocks) + item_block[cols]
    cuts = np.cumsum(np.bincount(cell, minlength=n_blocks**2)).tolist()
    rows, cols = user_local[rows], item_local[cols]
    key = (cell.astype(np.int64) * sizes[0] + rows) * sizes[1] + cols
    order = np.argsort(key, kind="stable")
    runs = []
    for a, z in zip([0, *cuts[:-1]], cuts, strict=True):
        chosen = order[a:z]
        runs.append((rows[chosen], cols[chosen], ratings[chosen]))
    return runs


def start_block(own, seed, validation_fraction, tuning):
    """The ``Pending`` cells of a user block from its pieces of every partition
    (``own[part][j]``). ``validation_fraction`` of the block's ratings, drawn from
    ``seed`` over the cells in turn, are held out; or with ``tuning``, ``(rows, offsets,
    n_rows)``, rating ``offsets[n]`` of row ``rows[n]``, its ratings counted cell by cell."""
    pieces = [[run for piece in cell for run in _runs(piece)] for cell in zip(*own, strict=True)]
    total = sum(len(piece[2]) for cell in pieces for piece in cell)
    n_valid = round(validation_fraction * total)
    held = left = None
    if n_valid:
        held = np.zeros(total, dtype=bool)
        held[np.random.RandomState(seed).choice(total, n_valid, replace=False)] = True
    elif tuning is not None and len(tuning[0]):
        left = np.full(tuning[2], -1, dtype=np.int64)
        left[tuning[0]] = tuning[1]
    report = {"n_duplicates": 0, "first_duplicate": None, "n_train": [], "n_valid": [],
              "rated": [], "validated": []}  # fmt: skip
    return Pending(pieces, held, 0, left, report)


def next_cell(pending):
    """``(cell, rest)``: the first pending cell, merged from its pieces and sorted by user
    then item, and the ``Pending`` of the others. The pieces are merged a few users at a
    time, so the task needs little memory beyond the finished cell."""
    pieces, n = pending.pieces[0], sum(len(piece[2]) for piece in pending.pieces[0])
    j = len(pending.report["n_train"])
    held = None if pending.held is None else pending.held[pending.offset : pending.offset + n]
    left = None if pending.left is None else pending.left.copy()
    n_rows = max((int(piece[0][-1]) + 1 for piece in pieces if len(piece[0])), default=0)
    counts = sum((np.bincount(piece[0], minlength=n_rows) for piece in pieces),
                 np.zeros(n_rows, dtype=np.int64))  # fmt: skip
    if left is not None:  # users whose tuning rating is in this cell
        mine = np.flatnonzero(left[:n_rows] >= 0)
        n_valid = int((left[mine] < counts[mine]).sum())
    else:
        n_valid = 0 if held is None else int(held.sum())
    train, valid = _empty(pieces[0], n - n_valid), _empty(pieces[0], n_valid)
    report = {key: value.copy() if isinstance(value, list) else value
              for key, value in pending.report.items()}  # fmt: skip
    at = [0, 0]
    for lo, hi in _user_ranges(counts):
        users, items, ratings = _merge(pieces, lo, hi)
        repeated = np.flatnonzero((users[1:] == users[:-1]) & (items[1:] == items[:-1]))
        report["n_duplicates"] += len(repeated)
        if report["first_duplicate"] is None and len(repeated):
            report["first_duplicate"] = (users[repeated[0]], j, items[repeated[0]])
        if left is not None:
            mask = _tuning_ratings(users, left)
        elif held is not None:
            mask = held[at[0] + at[1] : at[0] + at[1] + len(users)]
        else:
            mask = np.zeros(len(users), dtype=bool)
        for out, chosen, side in ((train, ~mask, 0), (valid, mask, 1)):
            m = int(chosen.sum())
            for f, values in enumerate((users, items, ratings)):
                out[f][at[side] : at[side] + m] = values[chosen]
            at[side] += m
    cell = Cell(*train, *valid)
    report["n_train"].append(len(cell.ratings))
    report["n_valid"].append(len(cell.valid_ratings))
    report["rated"].append(_distinct_items(cell.items))
    users = cell.valid_users  # sorted
    report["validated"].append(users[np.flatnonzero(np.diff(users, prepend=-1))])
    return cell, Pending(pending.pieces[1:], pending.held, pending.offset + n, left, report)


def _empty(piece, n):
    return tuple(np.empty(n, dtype=values.dtype) for values in piece)


def _user_ranges(counts):
    """``(lo, hi)`` user ranges of about ``CHUNK_RATINGS`` ratings each, given each user's
    number of ratings ``counts``."""
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(CHUNK_RATINGS, ends[-1] if len(ends) else 0,
                                           CHUNK_RATINGS), side="right")  # fmt: skip
    bounds = np.unique(np.concatenate([[0], cuts, [len(counts)]]))
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _merge(pieces, lo, hi):
    """The ratings of users ``lo`` to ``hi`` (excluded) in ``pieces`` (each sorted by user
    then item), sorted by user then item, equal pairs in the pieces' order."""
    parts = []
    for users, items, ratings in pieces:
        a, z = np.searchsorted(users, [lo, hi])
        parts.append((users[a:z], items[a:z], ratings[a:z]))
    users, items, ratings = (np.concatenate([part[f] for part in parts]) for f in range(3))
    # one stable sort of a combined key: it finds the sorted runs (lexsort would not)
    key = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    order = np.argsort(key, kind="stable")
    return users[order], items[order], ratings[order]


def _tuning_ratings(users, left):
    """Which ratings of a cell (``users`` sorted) are held out: rating ``left[u]`` of each
    user ``u`` with ``left[u] >= 0``, counting from this cell; ``left`` then drops by the
    user's ratings in the cell."""
    where = np.flatnonzero(left[users] >= 0)
    mine = users[where]
    rank = np.arange(len(mine)) - np.searchsorted(mine, mine)
    mask = np.zeros(len(users), dtype=bool)
    mask[where[rank == left[mine]]] = True
    left -= np.bincount(mine, minlength=len(left))
    return mask


def _distinct_items(items):
    """``np.unique(items)`` of non-negative ids, without sorting a copy of them."""
    seen = np.zeros(int(items.max()) + 1 if len(items) else 0, dtype=bool)
    seen[items] = True
    return np.flatnonzero(seen)
