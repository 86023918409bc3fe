"""Turn what users pass as a ratings matrix into one canonical CSR array, or refuse it clearly."""

import os
import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from joblib import cpu_count, effective_n_jobs
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval

from ._kernels import sgd as _sgd

# The kernels index users and items with C ints.
MAX_INDEX = np.iinfo(np.int32).max


class Integer(Interval):
    """``Interval(Integral, ...)`` that refuses bools: ``n_components=True`` is a slip, not 1."""

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def _check_dtype(X):
    """Refuse data that are not numbers before anything converts them."""
    dtype = getattr(X, "dtype", None)
    if dtype is None:
        return
    if dtype.kind == "b":
        raise TypeError(
            "X has boolean dtype; funksgd expects numeric ratings. If True/False are the "
            "ratings, convert them with X.astype(float)."
        )
    if dtype.kind in "USa":
        raise ValueError(
            f"X holds strings (dtype {dtype}), not numeric ratings: convert them to float "
            "first, e.g. X.astype(float)."
        )
    if dtype.kind in "MmV":
        raise TypeError(f"X has dtype {dtype}; funksgd expects numeric ratings.")


def _check_compressed(X):
    """Refuse CSR/CSC/BSR index arrays that disagree with each other or point outside X.

    scipy's conversions and funksgd's kernels trust these arrays: a bad one would make
    them read or write out of bounds instead of raising.
    """
    if X.format == "bsr":
        rows, cols = X.blocksize
        n_major, n_minor = X.shape[0] // rows, X.shape[1] // cols
    else:
        n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    indptr, indices, data = X.indptr, X.indices, X.data
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise TypeError(
            f"X's index arrays must be integers, got indptr {indptr.dtype} and indices "
            f"{indices.dtype}."
        )
    if indptr.ndim != 1 or indices.ndim != 1 or len(indptr) != n_major + 1:
        raise ValueError(
            f"X ({X.format}, shape {X.shape}) needs a 1-D indptr of length {n_major + 1}, "
            f"got shape {indptr.shape}."
        )
    nnz = int(indptr[-1])
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or nnz > min(len(indices), len(data)):
        raise ValueError(
            f"X.indptr is corrupt: it must start at 0, never decrease, and end at most at "
            f"len(indices) = {len(indices)} and len(data) = {len(data)}."
        )
    used = indices[:nnz]
    if nnz and (used.min() < 0 or used.max() >= n_minor):  # min/max: no O(nnz) temporaries
        bad = np.flatnonzero((used < 0) | (used >= n_minor))
        raise ValueError(
            f"X.indices[{bad[0]}] = {used[bad[0]]} is outside [0, {n_minor}): the matrix "
            "is corrupt."
        )


def _check_coordinates(X):
    """Refuse COO coordinates that disagree in length or point outside X (see above)."""
    for axis, (index, size) in enumerate(zip(X.coords, X.shape, strict=True)):
        if index.dtype.kind not in "iu":
            raise TypeError(f"X's coordinates must be integers, got {index.dtype}.")
        if index.shape != X.data.shape:
            raise ValueError(
                f"X's axis-{axis} coordinates have shape {index.shape} but its data {X.data.shape}."
            )
        if len(index) and (index.min() < 0 or index.max() >= size):
            bad = np.flatnonzero((index < 0) | (index >= size))
            raise ValueError(
                f"X stores an entry at axis-{axis} index {index[bad[0]]}, outside its "
                f"shape {X.shape}: the matrix is corrupt."
            )


def _check_sparse_structure(X):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (users x items), got a sparse array of shape {X.shape}.")
    if X.format in ("csr", "csc", "bsr"):
        _check_compressed(X)
    elif X.format == "coo":
        _check_coordinates(X)


def all_finite(values):
    """``np.isfinite(values).all()`` without a boolean array the size of ``values``."""
    return values.size == 0 or bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def too_large(dtype, magnitude):
    """The error for ratings of ``magnitude`` that overflow ``dtype``."""
    return ValueError(
        f"X holds ratings too large for {np.dtype(dtype).name} (largest magnitude "
        f"{magnitude:.3g}): rescale them, or use dtype='float64'."
    )


def _same_array(a, b):
    """Whether ``a`` and ``b`` view the same values (one memory, dtype, shape and strides)."""
    return (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])  # fmt: skip


def _is_canonical(X):
    """Whether the indices inside each compressed row of ``X`` strictly increase.

    Asked of a fresh object over the same arrays: ``X.has_canonical_format`` is a cached
    flag, stale once someone edits ``indices`` in place.
    """
    return type(X)((X.data, X.indices, X.indptr), shape=X.shape, copy=False).has_canonical_format


def _check_no_duplicates(X):
    """Raise if a (row, column) pair is stored twice: summing them would corrupt a rating."""
    if X.format in ("csr", "csc") and _is_canonical(X):
        return
    coo = X.tocoo() if X.format != "coo" else X
    keys = coo.row.astype(np.int64) * X.shape[1] + coo.col
    keys.sort()
    repeated = np.flatnonzero(keys[1:] == keys[:-1])
    if len(repeated):
        row, col = divmod(int(keys[repeated[0]]), X.shape[1])
        raise ValueError(
            f"X stores {len(repeated)} duplicate (user, item) entries, the first at "
            f"({row}, {col}); a ratings matrix holds at most one rating per pair. "
            "Remove duplicates (or sum/average them yourself) before fitting."
        )


def _to_csr(X, dtype):
    """Canonical CSR with ``dtype`` data, explicit zeros kept."""
    if sp.issparse(X):
        X = sp.csr_array(X, dtype=dtype)
        if not X.has_canonical_format:  # unsorted indices: sort a copy, never the caller's X
            X = X.copy()
            X.sum_duplicates()  # only sorts: duplicates were refused above
    else:
        rows, cols = np.nonzero(~np.isnan(X))
        X = sp.csr_array((X[rows, cols].astype(dtype, copy=False), (rows, cols)), shape=X.shape)
    return X


def csr_arrays(X):
    """``(indptr, indices, data)`` of CSR ``X`` as the kernels take them: int64, int32, as is."""
    return X.indptr.astype(np.int64, copy=False), X.indices.astype(np.int32, copy=False), X.data


def check_n_jobs(n_jobs):
    """Threads for ``n_jobs``: None means 1, -1 all cores; one without OpenMP (a warning)."""
    # more threads than CPUs never helps, and thousands would fail to start
    n_threads = min(effective_n_jobs(n_jobs), cpu_count())
    if n_threads > 1 and not _sgd.openmp_enabled():
        warnings.warn(
            "funksgd was built without OpenMP support: n_jobs is ignored and one thread is used.",
            RuntimeWarning,
            stacklevel=4,
        )
        return 1
    return n_threads


def row_indices(X):
    """The row (user) index of each stored rating of CSR ``X``, as int32."""
    return np.repeat(np.arange(X.shape[0], dtype=np.int32), np.diff(X.indptr))


def item_counts(X, chunk=1 << 20):
    """Number of ratings of each item (column) of CSR ``X``.

    Counted a chunk of ratings at a time: ``np.bincount`` copies its input to int64, which
    on 100M ratings costs 800 MB and twice the time.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> item_counts(sp.csr_array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]]))
    array([2, 0, 1])
    """
    counts = np.zeros(X.shape[1], dtype=np.int64)
    for start in range(0, X.nnz, chunk):
        counts += np.bincount(X.indices[start : start + chunk], minlength=X.shape[1])
    return counts


# column names of a long-format ratings table: one rating per row, as files hold them
_USER_NAMES = {"user", "userid", "user_id", "users", "uid", "customer", "customerid"}
_ITEM_NAMES = {"item", "itemid", "item_id", "items", "iid", "movie", "movieid", "movie_id"}
_RATING_NAMES = {"rating", "ratings", "score", "stars", "value"}


def _check_not_long_format(frame):
    """Refuse a DataFrame of (user, item, rating) rows: it is a list of ratings, not a
    users x items matrix, and fitting it as one would be silently wrong."""
    names = {str(name).lower().replace(" ", "") for name in frame.columns}
    named = bool(names & _USER_NAMES) and bool(names & _ITEM_NAMES)
    shaped = (
        frame.shape[1] in (3, 4)
        and frame.shape[0] > 100 * frame.shape[1]
        and all(_looks_like_ids(frame.iloc[:, j]) for j in (0, 1))
    )
    if named or shaped:
        raise ValueError(
            f"X looks like a long-format table of ratings (columns {list(frame.columns)}, "
            "one rating per row), not a users x items matrix. Build the matrix with "
            "funksgd.datasets.ratings_to_csr(users, items, ratings), e.g. "
            "ratings_to_csr(df[user_col], df[item_col], df[rating_col])."
        )


def _looks_like_ids(column):
    """Integer values, none missing, and more distinct ones than a rating scale has."""
    values = np.asarray(column)
    if values.dtype.kind not in "iuf" or not np.isfinite(values).all():
        return False
    return bool(np.all(values == np.round(values))) and len(np.unique(values)) > 20


def check_ratings(X, *, dtype=None, allow_empty=False):
    """Validate a users x items ratings matrix and return it as canonical CSR.

    Sparse input: every stored entry is a rating (explicit zeros included).
    Dense input: NaN marks a missing rating, every finite value is a rating.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_users, n_items)
    dtype : numpy dtype, default=None
        dtype of the returned ratings; None keeps float32 and makes anything else float64.
    allow_empty : bool
        Accept a matrix with no stored rating (fold-in of new rows).

    Returns
    -------
    ratings : scipy.sparse.csr_array
        Sorted indices, no duplicates, finite ``dtype`` data; it may share memory with
        ``X``, which is never written to.

    Raises
    ------
    TypeError
        Boolean, datetime or structured dtype; non-integer index arrays.
    ValueError
        Strings, complex numbers, not 2-D, no rows or columns, NaN/inf among the stored
        ratings of a sparse matrix or inf in a dense one, ratings that overflow ``dtype``,
        duplicate entries, index arrays that are inconsistent or point outside ``X``, no
        ratings (unless ``allow_empty``).
    """
    if not sp.issparse(X) and not hasattr(X, "dtype") and not hasattr(X, "dtypes"):
        X = np.asarray(X)  # lists: let numpy say whether they hold strings
    if hasattr(X, "columns"):
        _check_not_long_format(X)
    _check_dtype(X)
    if len(getattr(X, "shape", ())) == 2 and max(X.shape) > MAX_INDEX:
        raise ValueError(
            f"X has shape {X.shape}: funksgd handles at most {MAX_INDEX} rows/columns."
        )
    checked = None  # a CSR X whose arrays are checked here
    if sp.issparse(X):
        _check_sparse_structure(X)
        checked = X if X.format == "csr" else None
    X = check_array(
        X,
        accept_sparse=("csr", "csc", "coo"),
        dtype=(np.float64, np.float32),
        ensure_all_finite="allow-nan",
        input_name="X",
    )
    if sp.issparse(X):
        if not all_finite(X.data):
            raise ValueError(
                "X contains NaN or infinity among its stored ratings. In a sparse matrix a "
                "missing rating is an absent entry: drop these entries instead."
            )
        _check_no_duplicates(X)
    with np.errstate(over="ignore"):  # overflow is reported below, in words
        ratings = _to_csr(X, X.dtype if dtype is None else dtype)
    # what the kernels will read, whatever the conversion path; arrays of a CSR ``X``
    # that came through unchanged were checked above (a pass over 100M ratings each)
    unchanged = checked is not None and checked is X
    if not (unchanged and _same_array(ratings.data, X.data)) and not all_finite(ratings.data):
        raise too_large(ratings.dtype, np.abs(X.data if sp.issparse(X) else X[~np.isnan(X)]).max())
    if not (unchanged and all(_same_array(getattr(ratings, name), getattr(X, name))
                              for name in ("indptr", "indices"))):  # fmt: skip
        _check_compressed(ratings)
    if ratings.nnz == 0 and not allow_empty:
        raise ValueError(
            f"X of shape {X.shape} holds no ratings: a sparse matrix needs stored entries "
            "and a dense one finite (non-NaN) values."
        )
    return ratings


def _total_memory():
    """Bytes of memory this process may use (physical memory or cgroup limit); None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                total = min(total, int(f.read()))
        except (OSError, ValueError):  # absent, or "max"
            pass
    return total


def check_memory(n_bytes, what):
    """Refuse, before allocating, ``what`` needing more than all of the machine's memory."""
    total = _total_memory()
    if total is not None and n_bytes > total:
        raise ValueError(
            f"{what} would need {n_bytes / 2**30:.3g} GiB, more than the "
            f"{total / 2**30:.3g} GiB of memory of this machine."
        )
