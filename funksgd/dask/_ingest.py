"""Ratings of a Dask DataFrame or array: checked and counted where each partition lives.

One pass over the partitions finds the distinct ids and their counts and the ratings'
statistics; only those come back to the client, never the ratings. The partitions stay
on the workers until the shuffle (``_shuffle.make_cells``) cuts them into cells, reading
each a chunk at a time as (row, column, rating) triplets.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import too_large
from ..datasets import IdMapping
from ..datasets._mapping import _factorize
from ._executors import tree_reduce

# ratings a task reads, looks up or takes the statistics of at a time: the temporaries
# of a chunk, not of a partition
CHUNK_RATINGS = 1 << 18
# the statistics of the ratings, summed over the chunks and partitions
RATING_STATS = ("n", "n_bad", "total", "squares", "max_abs", "low", "high")


@dataclass
class Ratings:
    """Ratings spread over the workers, and what the client knows of them."""

    # one handle per partition (of the DataFrame, or a chunk of the array), where it lives
    parts: list
    # ``reads[t] = (function, args)``: ``function(parts[t], *args)`` yields the partition's
    # (rows int32, cols int32, ratings in the model's dtype) a chunk at a time: 12 bytes
    # a rating in float32, as in the cells
    reads: list
    mapping: IdMapping
    n_ratings: int
    mean: float
    std: float
    max_abs: float
    low: float  # the lowest and highest rating
    high: float
    user_counts: np.ndarray
    item_counts: np.ndarray


def ingest(executor, X, *, user_col, item_col, rating_col, dtype, mapping=None):
    """Check and count the ratings ``X`` on the workers; errors come before training."""
    import dask.array as da
    import dask.dataframe as dd

    dtype = np.dtype(dtype)
    if isinstance(X, dd.DataFrame):
        parts, reads, stats, mapping = _frame(executor, X, (user_col, item_col, rating_col),
                                             mapping, dtype)  # fmt: skip
    elif isinstance(X, da.Array):
        parts, reads, stats, mapping = _array(executor, X, dtype)
    else:
        raise TypeError(
            "X must be a dask.dataframe.DataFrame of ratings (one row per rating) or a "
            f"dask.array.Array of scipy.sparse chunks, got {type(X).__name__}. For data in "
            "memory, use funksgd.FunkSVD."
        )
    if stats["n_bad"]:
        raise ValueError(
            f"X contains {stats['n_bad']} NaN or infinite ratings among its stored entries. In a "
            "sparse matrix a missing rating is an absent entry: drop these entries instead."
        )
    n = stats["n"]
    if n == 0:
        raise ValueError("X holds no ratings: every partition is empty.")
    mean = stats["total"] / n
    variance = max(stats["squares"] / n - mean * mean, 0.0)
    return Ratings(
        parts, reads, mapping, n, mean, float(np.sqrt(variance)), stats["max_abs"],
        stats["low"], stats["high"], stats["user_counts"], stats["item_counts"],
    )  # fmt: skip


def _frame(executor, df, columns, fitted_mapping, dtype):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"X has no column {missing[0]!r} (columns: {list(df.columns)}); set user_col, "
            "item_col and rating_col to the names of the user, item and rating columns."
        )
    rating_dtype = df.dtypes[columns[2]]
    if not pd.api.types.is_numeric_dtype(rating_dtype) or pd.api.types.is_bool_dtype(rating_dtype):
        raise TypeError(f"The ratings column {columns[2]!r} must hold numbers, not {rating_dtype}.")
    parts = executor.compute(df[list(columns)].to_delayed())
    stats = executor.gather([tree_reduce(
        executor, [executor.submit(_frame_stats, part, columns, dtype) for part in parts],
        _add_ids,
    )])[0]  # fmt: skip
    if stats["missing_ids"]:
        raise ValueError(
            f"{stats['missing_ids']} ratings have a missing user or item id (None or NaN in "
            f"{columns[0]!r} or {columns[1]!r}); every rating needs both."
        )
    if stats["n_bad"]:
        raise ValueError(
            f"The ratings column {columns[2]!r} holds {stats['n_bad']} NaN or infinite values: "
            "drop the rows of missing ratings instead."
        )
    (users, stats["user_counts"]), (items, stats["item_counts"]) = stats["users"], stats["items"]
    mapping = IdMapping(users, items)
    if fitted_mapping is not None:
        mapping = _same_mapping(fitted_mapping, mapping)
    shared = executor.scatter(mapping, broadcast=True)
    return parts, [(frame_chunks, (shared, columns, dtype))] * len(parts), stats, mapping


def _same_mapping(fitted, new):
    """warm_start continues on the same users and items."""
    same = fitted.shape == new.shape and all(
        np.array_equal(a, b) for a, b in
        [(fitted.user_ids, new.user_ids), (fitted.item_ids, new.item_ids)]
    )  # fmt: skip
    if not same:
        raise ValueError(
            f"warm_start=True continues a model of {fitted.shape[0]} users and "
            f"{fitted.shape[1]} items, but X has {new.shape[0]} users and {new.shape[1]} items "
            "(or other ids): pass ratings of the same users and items, or set warm_start=False."
        )
    return fitted


def _array(executor, X, dtype):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (users x items), got a Dask array of shape {X.shape}.")
    if any(np.isnan(size) for size in X.shape):
        raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first.")
    if X.dtype.kind not in "iuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}.")
    starts = [np.cumsum((0,) + chunks)[:-1].tolist() for chunks in X.chunks]
    blocks = X.to_delayed()
    corners = [(row0, col0) for row0 in starts[0] for col0 in starts[1]]
    parts = executor.compute(blocks.ravel().tolist())
    stats = executor.gather([tree_reduce(executor, [
        executor.submit(_chunk_stats, part, *corner, X.shape, dtype)
        for part, corner in zip(parts, corners, strict=True)
    ], _add_stats)])[0]  # fmt: skip
    reads = [(array_chunks, (*corner, dtype)) for corner in corners]
    return parts, reads, stats, IdMapping(*map(np.arange, X.shape))


# ------------------------------------------------------------------ tasks (pure functions)
def frame_chunks(part, mapping, columns, dtype):
    """A DataFrame partition's triplets, ``CHUNK_RATINGS`` at a time (one, empty, if it
    has none)."""
    for s in range(0, max(len(part), 1), CHUNK_RATINGS):
        chunk = part.iloc[s : s + CHUNK_RATINGS]
        yield (
            mapping.user_index(chunk[columns[0]].to_numpy()),
            mapping.item_index(chunk[columns[1]].to_numpy()),
            _as_dtype(chunk[columns[2]].to_numpy(np.float64), dtype),
        )


def array_chunks(chunk, row0, col0, dtype):
    """The triplets of an array's chunk whose first row and column are ``row0`` and
    ``col0``, ``CHUNK_RATINGS`` at a time (one, empty, if it has none)."""
    rows, cols, values = _entries(chunk)
    for s in range(0, max(len(values), 1), CHUNK_RATINGS):
        yield (
            (rows[s : s + CHUNK_RATINGS] + row0).astype(np.int32),
            (cols[s : s + CHUNK_RATINGS] + col0).astype(np.int32),
            _as_dtype(np.asarray(values[s : s + CHUNK_RATINGS], dtype=np.float64), dtype),
        )


def _entries(chunk):
    """(rows, columns, values) of the ratings an array's chunk stores."""
    if sp.issparse(chunk):
        coo = sp.coo_array(chunk)
        return coo.row, coo.col, coo.data
    if isinstance(chunk, np.ndarray):  # dense: NaN marks a missing rating, as in FunkSVD
        rows, cols = np.nonzero(~np.isnan(chunk.astype(np.float64, copy=False)))
        return rows, cols, chunk[rows, cols]
    raise TypeError(
        f"The chunks of X must be scipy.sparse matrices or NumPy arrays, got "
        f"{type(chunk).__name__}."
    )


def _as_dtype(values, dtype):
    """Float64 ``values`` in ``dtype``; a finite one that overflows it is refused (NaN and
    infinite ones stay, for the statistics to count)."""
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    overflow = np.isfinite(values) & ~np.isfinite(cast)
    if overflow.any():
        raise too_large(dtype, np.abs(values[overflow]).max())
    return cast


def _frame_stats(part, columns, dtype):
    """A partition's statistics: its ratings' (in ``dtype``), its missing ids, and its
    distinct users and items, each with its count, a chunk at a time."""
    out = None
    for s in range(0, max(len(part), 1), CHUNK_RATINGS):
        chunk = part.iloc[s : s + CHUNK_RATINGS]
        user_ids, item_ids = chunk[columns[0]].to_numpy(), chunk[columns[1]].to_numpy()
        missing = pd.isna(user_ids) | pd.isna(item_ids)
        if missing.any():
            user_ids, item_ids = user_ids[~missing], item_ids[~missing]
        stats = _rating_stats(_as_dtype(chunk[columns[2]].to_numpy(np.float64), dtype))
        stats["missing_ids"] = int(missing.sum())
        stats["users"], stats["items"] = _id_counts(user_ids), _id_counts(item_ids)
        out = stats if out is None else _add_ids(out, stats)
    return out


def _chunk_stats(chunk, row0, col0, shape, dtype):
    """An array chunk's statistics: its ratings' (in ``dtype``), a chunk of
    ``CHUNK_RATINGS`` at a time, and each row's and column's count."""
    rows, cols, values = _entries(chunk)
    out = None
    for s in range(0, max(len(values), 1), CHUNK_RATINGS):
        part = np.asarray(values[s : s + CHUNK_RATINGS], dtype=np.float64)
        stats = _rating_stats(_as_dtype(part, dtype))
        out = stats if out is None else _add_stats(out, stats)
    # np.bincount would copy all the indices to int64 at once
    for name, index, start, n in (("user_counts", rows, row0, shape[0]),
                                  ("item_counts", cols, col0, shape[1])):  # fmt: skip
        counts = np.zeros(n, dtype=np.int64)
        for s in range(0, len(index), CHUNK_RATINGS):
            counts[start:] += np.bincount(index[s : s + CHUNK_RATINGS], minlength=n - start)
        out[name] = counts
    return out


def _rating_stats(ratings):
    values = ratings.astype(np.float64, copy=False)
    good = values[np.isfinite(values)]
    with np.errstate(over="ignore"):  # ratings near float64's limit: max_abs reports them
        squares = float(np.square(good).sum())
    return {
        "n": len(values),
        "n_bad": len(values) - len(good),
        "total": float(good.sum()),
        "squares": squares,
        "max_abs": float(np.abs(good).max()) if len(good) else 0.0,
        "low": float(good.min()) if len(good) else np.inf,
        "high": float(good.max()) if len(good) else -np.inf,
    }


def _add_stats(a, b):
    out = {key: a[key] + b[key] for key in a}
    out["max_abs"] = max(a["max_abs"], b["max_abs"])
    out["low"], out["high"] = min(a["low"], b["low"]), max(a["high"], b["high"])
    return out


def _add_ids(a, b):
    """``_add_stats`` of two partitions' ``_frame_stats``, their ids and counts merged."""
    out = _add_stats(*({key: s[key] for key in RATING_STATS} for s in (a, b)))
    out["missing_ids"] = a["missing_ids"] + b["missing_ids"]
    out["users"], out["items"] = (_merge_counts(a[key], b[key]) for key in ("users", "items"))
    return out


def _id_counts(ids, weights=None):
    """``(distinct ids, count of each)``, or the sum of their ``weights``: sorted when
    the ids compare with each other, else in order of appearance."""
    distinct, codes = _factorize(ids)
    return distinct, np.bincount(codes, weights, minlength=len(distinct)).astype(np.int64)


def _merge_counts(a, b):
    """The ``_id_counts`` of the ids of ``a`` then ``b``, each an ``_id_counts``."""
    # float64 sums: exact up to 2**53 ratings
    return _id_counts(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
