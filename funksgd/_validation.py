"""Turn what users pass as a ratings matrix into one canonical CSR array, or refuse it clearly."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array


def _check_no_duplicates(X):
    """Raise if a (row, column) pair is stored twice: summing them would corrupt a rating."""
    if X.format in ("csr", "csc") and X.has_canonical_format:
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
    """
    if getattr(X, "dtype", None) == np.bool_:
        raise TypeError(
            "X has boolean dtype; funksgd expects numeric ratings. If True/False are the "
            "ratings, convert them with X.astype(float)."
        )
    X = check_array(
        X,
        accept_sparse=("csr", "csc", "coo"),
        dtype=(np.float64, np.float32),
        ensure_all_finite="allow-nan",
        input_name="X",
    )
    if sp.issparse(X):
        if not np.isfinite(X.data).all():
            raise ValueError(
                "X contains NaN or infinity among its stored ratings. In a sparse matrix a "
                "missing rating is an absent entry: drop these entries instead."
            )
        _check_no_duplicates(X)
    X = _to_csr(X, X.dtype if dtype is None else dtype)
    if X.nnz == 0 and not allow_empty:
        raise ValueError(
            f"X of shape {X.shape} holds no ratings: a sparse matrix needs stored entries "
            "and a dense one finite (non-NaN) values."
        )
    return X
