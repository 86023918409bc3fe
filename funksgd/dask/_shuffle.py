"""The one shuffle of a distributed fit: every partition's ratings to the worker of their
user block, cut into that block's cells.

Each partition, read a chunk at a time where it lives, is cut into pieces, one per cell
and range of the cell's users (a segment), sorted by user then item, and each piece
moves to its block's worker as soon as it is cut; the partitions are cut in a few
rounds, each waiting for the last one's pieces to arrive. There a chain of tasks builds
the block's segments one at a time, cell by cell: each task takes the pieces of the
segments still to build, merges those of one segment and passes the others on, so that
a segment's pieces are let go as soon as the segment exists. A worker so holds its
share of the ratings once, plus the segment being built: ``1 / (n_segments * n_blocks)``
of the share. A cell is the list of its ``n_segments`` segments, consecutive ranges of
its block's users; the tasks that read a cell loop over them, and training them in turn
is training the whole cell.
"""

from collections import namedtuple

import numpy as np

# the ratings of one segment of a cell, LOCAL indices into its user block and item block;
# ``valid_*`` are the held-out ratings of early stopping (empty without it)
Cell = namedtuple("Cell", "users items ratings valid_users valid_items valid_ratings")
# the segments of a user block still to build: ``pieces[c]`` are the pieces (each a
# partition's sorted runs, see ``split_by_cell``) of the c-th of them; ``held`` the
# hold-out of the validation ratings over the block's ratings from ``offset`` on
# (segments in turn, each sorted), or None; ``left`` the tuning rating of each user
# counted from the next segment on, or None; ``report`` the block's counts so far, a
# list entry per cell
Pending = namedtuple("Pending", "pieces held offset left report")
# a segment is merged from its pieces this many ratings at a time (whole users, so about
# as many); a partition is cut ``_ingest.CHUNK_RATINGS`` at a time
CHUNK_RATINGS = 1 << 18
# segments per cell at most: ranges of a user block's users balanced by their ratings
SEGMENTS = 8
# ... and fewer when a partition's piece of a segment would hold fewer ratings: its arrays
# would fall under glibc's mmap threshold (128 KB; Dask's workers fix it), and the heap's
# holes they leave stay in the worker's memory
SEGMENT_PIECE_RATINGS = 1 << 15
# the partitions are cut in this many rounds
ROUNDS = 4


def make_cells(executor, data, grid, rng, fraction, tuning):
    """The cells ``cells[b][j]`` of the grid, each a list of segments on the worker of
    user block ``b``, and the blocks' reports (duplicates, counts), gathered.

    The ratings are ``data.parts``, handles this function lets go of (it sets them to
    None), as of every intermediate result once its tasks are submitted: Dask frees each
    as soon as the tasks that read it are done. ``fraction`` of each block's ratings are
    held out for validation; or ``tuning``, ``(users, offsets)``, names the one rating
    of each sampled user held out to tune the prior; or neither.
    """
    p, parts, data.parts = grid.n_blocks, data.parts, None
    n_segments = segments_per_cell(data.n_ratings, len(parts), p)
    where = executor.scatter(
        (grid.user_block, grid.user_local, user_segments(grid, data.user_counts, n_segments),
         grid.item_block, grid.item_local),
        broadcast=True,
    )  # fmt: skip
    # in rounds, a share of each worker's partitions at a time: a round's partitions are
    # cut and their pieces moved to their blocks' workers (the cutting worker lets go of
    # them then) before the next round starts, so that no worker receives much more than
    # it has sent. Pieces are kept in the partitions' order
    owns = [[None] * len(parts) for _ in range(p)]
    moved, holders = [], executor.holders(parts)
    for positions in rounds(holders, ROUNDS):
        for t in positions:
            part = executor.submit(split_by_cell, parts[t], data.reads[t], where, p,
                                   n_segments, moved, worker=holders[t])  # fmt: skip
            parts[t] = None
            for b in range(p):
                owns[b][t] = executor.submit(_arrived, executor.part(part, b),
                                             worker=executor.owner(b))  # fmt: skip
        moved = [executor.submit(_moved, owns[b][t]) for t in positions for b in range(p)]
    part = moved = where = None  # Dask frees ``where`` once the last partition is cut
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
        for c in range(p * n_segments):
            step = executor.submit(next_segment, state, c % n_segments == 0,
                                   worker=executor.owner(b))  # fmt: skip
            if c % n_segments == 0:
                row.append([])
            row[-1].append(executor.part(step, 0))
            state = executor.part(step, 1)
        cells.append(row)
        reports.append(executor.part(state, 4))  # the last Pending's report
    del state, step
    return cells, executor.gather(reports)


def rounds(holders, n_rounds):
    """The positions of the partitions held by ``holders`` (``executor.holders``) in up
    to ``n_rounds`` rounds: round ``k`` holds the ``k``-th share of the partitions each
    worker holds, in order."""
    by_worker = {}
    for t, worker in enumerate(holders):
        by_worker.setdefault(worker, []).append(t)
    n_rounds = min(n_rounds, max(map(len, by_worker.values()), default=0))
    return [
        [t for held in by_worker.values()
         for t in held[k * len(held) // n_rounds : (k + 1) * len(held) // n_rounds]]
        for k in range(n_rounds)
    ]  # fmt: skip


def segments_per_cell(n_ratings, n_partitions, n_blocks):
    """Up to ``SEGMENTS``, as many as keep a partition's piece of a segment at
    ``SEGMENT_PIECE_RATINGS`` ratings or more (on average), and at least one."""
    per_piece = n_ratings / (n_partitions * n_blocks * n_blocks * SEGMENT_PIECE_RATINGS)
    return int(np.clip(per_piece, 1, SEGMENTS))


def user_segments(grid, user_counts, n_segments):
    """Each user's segment: ``n_segments`` consecutive ranges of its block's rows,
    balanced by their ratings ``user_counts``."""
    segment = np.empty(len(grid.user_block), dtype=np.int32)
    for members in grid.user_members:
        ends = np.cumsum(user_counts[members])
        total = ends[-1] if len(ends) else 0
        segment[members] = np.clip((ends - 1) * n_segments // max(total, 1), 0, n_segments - 1)
    return segment


def joined(cell, field):
    """A field of a cell's segments, joined: the whole cell's."""
    return np.concatenate([getattr(segment, field) for segment in cell])


# ------------------------------------------------------------------ tasks (pure functions)
def _arrived(piece):
    """``piece``, on the worker this task runs on."""
    return piece


def _moved(piece):
    """A token, where ``piece`` is: it has arrived."""
    return True


def split_by_cell(part, read, where, n_blocks, n_segments, after=()):
    """One partition's ratings in local indices, cut by segment, once the tokens ``after``
    exist (see ``make_cells``): ``pieces[b][c]`` holds the (user row, item row, rating)
    arrays of segment ``c % n_segments`` of cell ``(b, c // n_segments)`` and the bounds
    of their runs (see :func:`_runs`), each run sorted by user then item (equal pairs in
    the partition's order). ``read = (function, args)``: ``function(part, *args)``
    yields the partition's triplets a chunk at a time (see ``_ingest.Ratings``), each cut
    into a run per segment, so that the task needs little memory beyond its output. A
    segment's runs are then joined into arrays of its own, one segment at a time: a few
    large arrays travel to the block's worker without Dask first copying many small ones
    into one message."""
    per_block = n_blocks * n_segments
    runs = [[] for _ in range(n_blocks * per_block)]
    sizes = [int(where[f].max(initial=0)) + 1 for f in (1, 4)]  # local user, item rows
    for chunk in read[0](part, *read[1]):  # one, empty, for an empty partition
        for c, run in enumerate(_sorted_runs(*chunk, where, sizes, n_blocks, n_segments)):
            runs[c].append(run)  # empty ones too: every segment has a run
    pieces = [[] for _ in range(n_blocks)]
    for c in range(len(runs)):  # each segment's runs are freed before the next's join
        bounds = np.cumsum([0] + [len(run[2]) for run in runs[c]])
        arrays = (np.concatenate([run[f] for run in runs[c]]) for f in range(3))
        pieces[c // per_block].append((*arrays, bounds))
        runs[c] = None
    return pieces


def _runs(piece):
    """The sorted runs of a piece of :func:`split_by_cell`: views of its arrays."""
    *arrays, bounds = piece
    return [tuple(v[a:z] for v in arrays) for a, z in zip(bounds[:-1], bounds[1:], strict=True)]


def _sorted_runs(rows, cols, ratings, where, sizes, n_blocks, n_segments):
    """The (user row, item row, rating) arrays of each segment ``c`` of cell ``(b, j)``,
    ``(b * n_blocks + j) * n_segments + c``, sorted by user then item; ``sizes`` bound
    the local rows of a user and an item block. Each segment's are arrays of their own,
    not views of the chunk's, so that its runs are freed with it."""
    user_block, user_local, user_segment, item_block, item_local = where
    cell = (user_block[rows] * np.int32(n_blocks) + item_block[cols]) * np.int32(n_segments)
    cell += user_segment[rows]
    cuts = np.cumsum(np.bincount(cell, minlength=n_blocks**2 * n_segments)).tolist()
    rows, cols = user_local[rows], item_local[cols]
    key = (cell.astype(np.int64) * sizes[0] + rows) * sizes[1] + cols
    order = np.argsort(key, kind="stable")
    runs = []
    for a, z in zip([0, *cuts[:-1]], cuts, strict=True):
        chosen = order[a:z]
        runs.append((rows[chosen], cols[chosen], ratings[chosen]))
    return runs


def start_block(own, seed, validation_fraction, tuning):
    """The ``Pending`` segments of a user block from its pieces of every partition
    (``own[part][c]``). ``validation_fraction`` of the block's ratings, drawn from
    ``seed`` over the segments in turn, are held out; or with ``tuning``, ``(rows,
    offsets, n_rows)``, rating ``offsets[n]`` of row ``rows[n]``, its ratings counted
    segment by segment."""
    pieces = [list(part) for part in zip(*own, strict=True)]
    total = sum(len(piece[2]) for segment in pieces for piece in segment)
    n_valid = round(validation_fraction * total)
    held = left = None
    if n_valid:
        held = np.zeros(total, dtype=bool)
        held[np.random.RandomState(seed).choice(total, n_valid, replace=False)] = True
    elif tuning is not None and len(tuning[0]):
        left = np.full(tuning[2], -1, dtype=np.int32)
        left[tuning[0]] = tuning[1]
    report = {"n_duplicates": 0, "first_duplicate": None, "n_train": [], "n_valid": [],
              "rated": [], "validated": []}  # fmt: skip
    return Pending(pieces, held, 0, left, report)


def next_segment(pending, first):
    """``(segment, rest)``: the first pending segment (of a new cell if ``first``), merged
    from its pieces and sorted by user then item, and the ``Pending`` of the others,
    which no longer holds its pieces. The pieces are merged a few users at a time, so
    that the task needs little memory beyond the finished segment."""
    runs = [run for piece in pending.pieces[0] for run in _runs(piece)]
    n = sum(len(run[2]) for run in runs)
    held = None if pending.held is None else pending.held[pending.offset : pending.offset + n]
    left = None if pending.left is None else pending.left.copy()
    n_rows = max((int(run[0][-1]) + 1 for run in runs if len(run[0])), default=0)
    counts = sum((np.bincount(run[0], minlength=n_rows) for run in runs),
                 np.zeros(n_rows, dtype=np.int64))  # fmt: skip
    if left is not None:  # users whose tuning rating is in this segment
        mine = np.flatnonzero(left[:n_rows] >= 0)
        n_valid = int((left[mine] < counts[mine]).sum())
    else:
        n_valid = 0 if held is None else int(held.sum())
    train, valid = _empty(runs[0], n - n_valid), _empty(runs[0], n_valid)
    report = _next_report(pending.report, first)
    at = [0, 0]
    for lo, hi in _user_ranges(counts):
        users, items, ratings = _merge(runs, lo, hi)
        repeated = np.flatnonzero((users[1:] == users[:-1]) & (items[1:] == items[:-1]))
        report["n_duplicates"] += len(repeated)
        if report["first_duplicate"] is None and len(repeated):
            j = len(report["n_train"]) - 1
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
    segment = Cell(*train, *valid)
    _count(report, segment)
    return segment, Pending(pending.pieces[1:], pending.held, pending.offset + n, left, report)


def _next_report(report, first):
    """A copy of a block's ``report``, with a new cell's entries if ``first``."""
    out = {key: value.copy() if isinstance(value, list) else value
           for key, value in report.items()}  # fmt: skip
    if first:
        out["n_train"].append(0)
        out["n_valid"].append(0)
        out["rated"].append(np.zeros(0, dtype=np.int64))
        out["validated"].append(np.zeros(0, dtype=np.int32))
    return out


def _count(report, segment):
    """Adds ``segment`` to its cell's entries of ``report`` (the last ones)."""
    report["n_train"][-1] += len(segment.ratings)
    report["n_valid"][-1] += len(segment.valid_ratings)
    report["rated"][-1] = np.union1d(report["rated"][-1], _distinct_items(segment.items))
    users = segment.valid_users  # sorted, and after the cell's earlier segments' users
    distinct = users[np.flatnonzero(np.diff(users, prepend=-1))]
    report["validated"][-1] = np.concatenate([report["validated"][-1], distinct])


def _empty(run, n):
    return tuple(np.empty(n, dtype=values.dtype) for values in run)


def _user_ranges(counts):
    """``(lo, hi)`` user ranges of about ``CHUNK_RATINGS`` ratings each, given each user's
    number of ratings ``counts``."""
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(CHUNK_RATINGS, ends[-1] if len(ends) else 0,
                                           CHUNK_RATINGS), side="right")  # fmt: skip
    bounds = np.unique(np.concatenate([[0], cuts, [len(counts)]]))
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _merge(runs, lo, hi):
    """The ratings of users ``lo`` to ``hi`` (excluded) in ``runs`` (each sorted by user
    then item), sorted by user then item, equal pairs in the runs' order."""
    parts = []
    for users, items, ratings in runs:
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
