"""Ratings of a Dask DataFrame or array -> (row, column, rating) triplets on the workers.

Each partition is mapped where it lives; only statistics, distinct ids and per-id counts
come back to the client, never the ratings.
"""

from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import too_large
from ..datasets import IdMapping
from ._executors import tree_reduce

# ratings whose ids a task looks up, or whose statistics it takes, at a time: the
# temporaries of a chunk, not of a partition
CHUNK_RATINGS = 1 << 18


@dataclass
class Ratings:
    """Ratings spread over the workers as triplets, and what the client knows of them."""

    # one handle per partition: (rows int32, cols int32, ratings in the model's dtype: 12
    # bytes a rating in float32, as in the cells; a rating that overflows it is refused)
    triplets: list
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
    """Validate ``X`` and turn it into triplets on the workers; errors come before training."""
    import dask.array as da
    import dask.dataframe as dd

    columns = (user_col, item_col, rating_col)
    if isinstance(X, dd.DataFrame):
        triplets, mapping = _frame_triplets(executor, X, columns, mapping, np.dtype(dtype))
    elif isinstance(X, da.Array):
        triplets, mapping = _array_triplets(executor, X, np.dtype(dtype))
    else:
        raise TypeError(
            "X must be a dask.dataframe.DataFrame of ratings (one row per rating) or a "
            f"dask.array.Array of scipy.sparse chunks, got {type(X).__name__}. For data in "
            "memory, use funksgd.FunkSVD."
        )
    stats = executor.gather([tree_reduce(
        executor, [executor.submit(_triplet_stats, t, mapping.shape) for t in triplets],
        _add_stats,
    )])[0]  # fmt: skip
    _check_stats(stats)
    n = stats["n"]
    mean = stats["total"] / n
    variance = max(stats["squares"] / n - mean * mean, 0.0)
    return Ratings(
        triplets, mapping, n, mean, float(np.sqrt(variance)), stats["max_abs"], stats["low"],
        stats["high"], stats["user_counts"], stats["item_counts"],
    )  # fmt: skip


def _frame_triplets(executor, df, columns, fitted_mapping, dtype):
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
        executor, [executor.submit(_frame_stats, part, columns) for part in parts], _add_ids,
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
    mapping = IdMapping(stats["users"], stats["items"])
    if fitted_mapping is not None:
        mapping = _same_mapping(fitted_mapping, mapping)
    shared = executor.scatter(mapping, broadcast=True)
    triplets = [
        executor.submit(_index_frame, part, shared, columns, dtype, worker=worker)
        for part, worker in zip(parts, executor.holders(parts), strict=True)
    ]  # fmt: skip
    return triplets, mapping


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


def _array_triplets(executor, X, dtype):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (users x items), got a Dask array of shape {X.shape}.")
    if any(np.isnan(size) for size in X.shape):
        raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first.")
    if X.dtype.kind not in "iuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}.")
    rows0 = np.cumsum((0,) + X.chunks[0])
    cols0 = np.cumsum((0,) + X.chunks[1])
    blocks = X.to_delayed()
    positions = [(i, j) for i in range(blocks.shape[0]) for j in range(blocks.shape[1])]
    parts = executor.compute([blocks[i, j] for i, j in positions])
    triplets = [
        executor.submit(_chunk_triplets, part, int(rows0[i]), int(cols0[j]), dtype)
        for part, (i, j) in zip(parts, positions, strict=True)
    ]
    return triplets, IdMapping(np.arange(X.shape[0]), np.arange(X.shape[1]))


def _check_stats(stats):
    if stats["n_bad"]:
        raise ValueError(
            f"X contains {stats['n_bad']} NaN or infinite ratings among its stored entries. In a "
            "sparse matrix a missing rating is an absent entry: drop these entries instead."
        )
    if stats["n"] == 0:
        raise ValueError("X holds no ratings: every partition is empty.")


# ------------------------------------------------------------------ tasks (pure functions)
def _distinct(ids):
    """Distinct ids: sorted when they compare with each other, else in order of appearance."""
    ids = pd.unique(np.asarray(ids) if not isinstance(ids, np.ndarray) else ids)
    try:
        return np.sort(ids)
    except TypeError:  # mixed types
        return ids


def _frame_stats(part, columns):
    user_ids, item_ids = part[columns[0]].to_numpy(), part[columns[1]].to_numpy()
    missing = pd.isna(user_ids) | pd.isna(item_ids)
    ratings = part[columns[2]].to_numpy(dtype=np.float64, na_value=np.nan)
    return {
        "missing_ids": int(missing.sum()),
        "n_bad": int((~np.isfinite(ratings)).sum()),
        "users": _distinct(user_ids[~missing]),
        "items": _distinct(item_ids[~missing]),
    }


def _add_ids(a, b):
    return {
        "missing_ids": a["missing_ids"] + b["missing_ids"],
        "n_bad": a["n_bad"] + b["n_bad"],
        "users": _distinct(np.concatenate([a["users"], b["users"]])),
        "items": _distinct(np.concatenate([a["items"], b["items"]])),
    }


def _index_frame(part, mapping, columns, dtype):
    rows, cols = np.empty(len(part), np.int32), np.empty(len(part), np.int32)
    ratings = np.empty(len(part), dtype)
    for s in range(0, len(part), CHUNK_RATINGS):
        chunk = part.iloc[s : s + CHUNK_RATINGS]
        rows[s : s + len(chunk)] = mapping.user_index(chunk[columns[0]].to_numpy())
        cols[s : s + len(chunk)] = mapping.item_index(chunk[columns[1]].to_numpy())
        ratings[s : s + len(chunk)] = _as_dtype(chunk[columns[2]].to_numpy(np.float64), dtype)
    return rows, cols, ratings


def _as_dtype(values, dtype):
    """Float64 ``values`` in ``dtype``; a finite one that overflows it is refused (NaN and
    infinite ones stay, for the statistics to count)."""
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    overflow = np.isfinite(values) & ~np.isfinite(cast)
    if overflow.any():
        raise too_large(dtype, np.abs(values[overflow]).max())
    return cast


def _chunk_triplets(chunk, row0, col0, dtype):
    if sp.issparse(chunk):
        coo = sp.coo_array(chunk)
        rows, cols, values = coo.row, coo.col, coo.data
    elif isinstance(chunk, np.ndarray):  # dense: NaN marks a missing rating, as in FunkSVD
        rows, cols = np.nonzero(~np.isnan(chunk.astype(np.float64, copy=False)))
        values = chunk[rows, cols]
    else:
        raise TypeError(
            f"The chunks of X must be scipy.sparse matrices or NumPy arrays, got "
            f"{type(chunk).__name__}."
        )
    return (
        (rows + row0).astype(np.int32),
        (cols + col0).astype(np.int32),
        _as_dtype(np.asarray(values, dtype=np.float64), dtype),
    )


def _triplet_stats(triplets, shape):
    rows, cols, ratings = triplets
    chunks = range(0, max(len(ratings), 1), CHUNK_RATINGS)
    stats = reduce(_add_stats, (_rating_stats(ratings[s : s + CHUNK_RATINGS]) for s in chunks))
    # np.bincount would copy all the int32 indices to int64 at once
    stats["user_counts"], stats["item_counts"] = (
        sum((np.bincount(index[s : s + CHUNK_RATINGS], minlength=n) for s in chunks),
            np.zeros(n, dtype=np.int64))
        for index, n in ((rows, shape[0]), (cols, shape[1]))
    )  # fmt: skip
    return stats


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
