"""Ratings with the users' own ids -> a CSR matrix, and the mapping back to those ids."""

import numpy as np
import scipy.sparse as sp

# Non-negative integer ids up to this bound are mapped through a lookup table (one pass,
# no sort) where there is at least one id in _MAX_TABLE_GAP of the table's range; others
# through a sort.
_MAX_TABLE_SIZE = 1 << 26
_MAX_TABLE_GAP = 4


class IdMapping:
    """Original user and item ids <-> row and column indices of a ratings matrix.

    Row ``j`` of the matrix belongs to user ``user_ids[j]`` and column ``j`` to
    item ``item_ids[j]``. Use :meth:`user_index` and :meth:`item_index` to ask
    a model about users and items by id, and :meth:`item_id` to turn the item
    indices it returns back into ids.

    Parameters
    ----------
    user_ids : array-like of shape (n_users,)
        Distinct hashable user ids, in row order.
    item_ids : array-like of shape (n_items,)
        Distinct hashable item ids, in column order.

    Attributes
    ----------
    user_ids : ndarray of shape (n_users,)
        The user id of each row.
    item_ids : ndarray of shape (n_items,)
        The item id of each column.
    shape : tuple of (int, int)
        ``(n_users, n_items)``, the shape of the ratings matrix.

    See Also
    --------
    ratings_to_csr : Builds the matrix and its mapping from rating columns.

    Examples
    --------
    >>> from funksgd.datasets import IdMapping
    >>> mapping = IdMapping(["ann", "bob"], [10, 20, 30])
    >>> mapping.user_index(["bob", "ann"])
    array([1, 0], dtype=int32)
    >>> mapping.item_index([30, 99], unknown="cold")
    array([ 2, -1], dtype=int32)
    >>> mapping.item_id([2, 0])
    array([30, 10])
    """

    def __init__(self, user_ids, item_ids):
        self._users = _Ids(user_ids, "user")
        self._items = _Ids(item_ids, "item")

    @property
    def user_ids(self):
        return self._users.ids

    @property
    def item_ids(self):
        return self._items.ids

    @property
    def shape(self):
        return len(self.user_ids), len(self.item_ids)

    def user_index(self, ids, *, unknown="raise"):
        """Row indices of user ids.

        Parameters
        ----------
        ids : array-like of shape (n,)
            User ids.
        unknown : {"raise", "cold"}, default="raise"
            For an id not in the mapping: raise a KeyError naming it, or
            return -1 at its position (a cold-start user).

        Returns
        -------
        indices : ndarray of shape (n,), dtype int32
        """
        return self._users.index(ids, unknown)

    def item_index(self, ids, *, unknown="raise"):
        """Column indices of item ids; see :meth:`user_index`."""
        return self._items.index(ids, unknown)

    def user_id(self, indices):
        """User ids of row indices.

        Parameters
        ----------
        indices : array-like of int of shape (n,)
            Row indices in ``[0, n_users)``.

        Returns
        -------
        ids : ndarray of shape (n,)
        """
        return self._users.id(indices)

    def item_id(self, indices):
        """Item ids of column indices; see :meth:`user_id`.

        ``-1``, which :meth:`FunkSVD.recommend <funksgd.FunkSVD.recommend>`
        uses to pad short rows, is refused like any index out of range.
        """
        return self._items.id(indices)

    def __repr__(self):
        return f"IdMapping(n_users={self.shape[0]}, n_items={self.shape[1]})"


class _Ids:
    """One axis of a mapping: distinct ids, looked up in a table when they are dense
    non-negative integers, by binary search when sorted, else by hashing."""

    _table = None  # built at the first lookup; never pickled (and absent from old pickles)

    def __init__(self, ids, name):
        ids = _as_1d(ids, f"{name}_ids")
        self.name = name
        self.ids = ids
        self._lookup = None
        try:
            self._sorted = bool(np.all(ids[1:] > ids[:-1]))
        except TypeError:  # ids of mixed types that do not compare
            self._sorted = False
        if not self._sorted:
            self._lookup = {key: j for j, key in enumerate(ids.tolist())}
            if len(self._lookup) < len(ids):
                raise ValueError(f"{name}_ids holds duplicates; each id must appear once.")

    def index(self, query, unknown):
        if unknown not in ("raise", "cold"):
            raise ValueError(f"unknown must be 'raise' or 'cold', got {unknown!r}.")
        query = _as_1d(query, f"{self.name} ids")
        found = self._find(query)
        missing = np.flatnonzero(found < 0)
        if len(missing) and unknown == "raise":
            first = _item(query, missing[0])
            known = ", ".join(repr(x) for x in self.ids[:3].tolist())
            known += ", ..." if len(self.ids) > 3 else ""
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise KeyError(
                f"unknown {self.name} id {first!r}{more}: not among the {len(self.ids):,} "
                f"known {self.name} ids ({known})."
            )
        return found

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_table", None)
        return state

    def _find(self, query):
        """Index of each query id, -1 where absent."""
        if query.dtype.kind in "iu" and self._dense():
            if self._table is None:
                self._table = np.full(int(self.ids[-1]) + 1, -1, dtype=np.int32)
                self._table[self.ids] = np.arange(len(self.ids), dtype=np.int32)
            inside = (query >= 0) & (query < len(self._table))
            if inside.all():
                return self._table[query]
            return np.where(inside, self._table[np.where(inside, query, 0)], np.int32(-1))
        if self._sorted and (query.dtype.kind in "iuf") == (self.ids.dtype.kind in "iuf"):
            try:
                pos = np.searchsorted(self.ids, query)
            except TypeError:
                pos = None
            if pos is not None:
                pos = np.minimum(pos, len(self.ids) - 1).astype(np.int32)
                return np.where(self.ids[pos] == query, pos, -1).astype(np.int32)
        lookup = self._lookup or {key: j for j, key in enumerate(self.ids.tolist())}
        self._lookup = lookup
        return np.fromiter((lookup.get(key, -1) for key in query.tolist()), np.int32, len(query))

    def _dense(self):
        """Sorted ids that fit a table (see :func:`_fits_a_table`)."""
        ids = self.ids
        return self._sorted and _fits_a_table(ids, int(ids[0]) if len(ids) else -1,
                                              int(ids[-1]) if len(ids) else -1)  # fmt: skip

    def id(self, indices):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"{self.name} indices must be integers, got dtype {indices.dtype}.")
        bad = np.flatnonzero((indices < 0) | (indices >= len(self.ids)))
        if len(bad):
            raise ValueError(
                f"{self.name} index {indices.flat[bad[0]]} is out of range: there are "
                f"{len(self.ids)} {self.name}s (indices 0..{len(self.ids) - 1})."
            )
        return self.ids[indices]


def _as_1d(values, name):
    """A 1-D array of ids; a lone string or number becomes a one-element array."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        values = [values]
    try:
        array = np.asarray(values)
    except ValueError:  # ids of different lengths (tuples, ...)
        array = None
    if not hasattr(values, "dtype") and (
        array is None
        or array.ndim > 1  # tuples as ids
        or (array.dtype.kind == "U" and not all(isinstance(x, str) for x in values))
    ):  # keep Python objects as they are: numpy would turn [1, "a"] into ["1", "a"]
        array = np.fromiter(values, dtype=object, count=len(values))
    values = array
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {values.shape}.")
    missing = np.flatnonzero(_is_missing(values))
    if len(missing):
        raise ValueError(
            f"{name}[{missing[0]}] is missing ({_item(values, missing[0])!r}); every rating needs "
            "a user id and an item id."
        )
    return values


def _item(array, j):
    """``array[j]`` as a plain Python object, for messages."""
    return array[j : j + 1].tolist()[0]


def _is_missing(values):
    """NaN, None or pandas.NA, elementwise."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind != "O":
        return np.zeros(len(values), dtype=bool)

    def missing(x):
        try:
            return x is None or bool(x != x)
        except TypeError:  # pandas.NA refuses bool()
            return True

    return np.fromiter((missing(x) for x in values.tolist()), bool, len(values))


def ratings_to_csr(users, items, ratings, *, data=None, mapping=None, unknown="raise",
                   duplicates="raise", dtype=np.float32):  # fmt: skip
    """Build a users x items CSR ratings matrix from columns of ids and ratings.

    Parameters
    ----------
    users : array-like of shape (n_ratings,), or a column name
        User id of each rating: any hashable values (ints, strings, ...).
    items : array-like of shape (n_ratings,), or a column name
        Item id of each rating.
    ratings : array-like of float of shape (n_ratings,), or a column name
        The ratings; they must be finite.
    data : DataFrame or mapping of columns, default=None
        When given, ``users``, ``items`` and ``ratings`` are column names in
        it (a pandas DataFrame, or a dict of arrays).
    mapping : IdMapping, default=None
        Use these rows and columns (e.g. the training mapping, for test
        ratings). By default the mapping is built from the ids seen: sorted
        ids when they compare with each other, else order of first appearance.
    unknown : {"raise", "drop"}, default="raise"
        With ``mapping``: what to do with ratings of ids it does not know.
        "drop" leaves them out (count them with ``n_ratings - X.nnz``).
    duplicates : {"raise", "last", "mean"}, default="raise"
        A (user, item) pair rated more than once: raise a ValueError, keep
        the last rating given, or average them.
    dtype : numpy dtype, default=np.float32
        dtype of the stored ratings.

    Returns
    -------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        Ratings, column indices sorted within each row (int32 indices and
        ``indptr``, int64 from 2**31 ratings on).
    mapping : IdMapping
        Row and column ids of ``X``.

    Examples
    --------
    >>> from funksgd.datasets import ratings_to_csr
    >>> X, mapping = ratings_to_csr(["ann", "bob", "ann"], ["tea", "tea", "jam"], [5, 3, 4])
    >>> X.toarray()
    array([[4., 5.],
           [0., 3.]], dtype=float32)
    >>> mapping.item_ids
    array(['jam', 'tea'], dtype='<U3')
    >>> mapping.user_index(["bob"])
    array([1], dtype=int32)

    From a pandas DataFrame:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": [7, 7, 9], "movie": [1, 2, 1], "stars": [4.0, 2.5, 3.0]})
    >>> X, mapping = ratings_to_csr("user", "movie", "stars", data=df)
    >>> X.shape, mapping.user_ids.tolist()
    ((2, 2), [7, 9])
    """
    if data is not None:
        users, items, ratings = data[users], data[items], data[ratings]
    users = _as_1d(users, "users")
    items = _as_1d(items, "items")
    ratings = np.asarray(ratings)
    if ratings.ndim != 1 or not len(users) == len(items) == len(ratings):
        raise ValueError(
            "users, items and ratings must be 1-D and of the same length, got lengths "
            f"{len(users)}, {len(items)} and {np.shape(ratings)}."
        )
    if ratings.dtype.kind not in "iuf":
        raise TypeError(f"ratings must be numbers, got dtype {ratings.dtype}.")
    if len(ratings) == 0:
        raise ValueError("no ratings given: users, items and ratings are empty.")
    bad = np.flatnonzero(~np.isfinite(ratings))
    if len(bad):
        raise ValueError(
            f"ratings[{bad[0]}] = {_item(ratings, bad[0])} is not finite ({len(bad)} such "
            "ratings): leave missing ratings out instead."
        )
    if duplicates not in ("raise", "last", "mean"):
        raise ValueError(f"duplicates must be 'raise', 'last' or 'mean', got {duplicates!r}.")
    if mapping is None:
        user_ids, rows = _factorize(users)
        item_ids, cols = _factorize(items)
        mapping = IdMapping(user_ids, item_ids)
    else:
        if unknown not in ("raise", "drop"):
            raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}.")
        how = "raise" if unknown == "raise" else "cold"
        rows, cols = mapping.user_index(users, unknown=how), mapping.item_index(items, unknown=how)
        known = (rows >= 0) & (cols >= 0)
        if not known.all():
            rows, cols, ratings = rows[known], cols[known], ratings[known]
    X = _build_csr(rows, cols, ratings, mapping.shape, dtype)
    if X.nnz < len(rows):  # scipy summed repeated pairs
        if duplicates == "raise":
            _raise_duplicate(rows, cols, mapping)
        X = _build_csr(*_resolve_duplicates(rows, cols, ratings, mapping.shape, duplicates),
                       mapping.shape, dtype)  # fmt: skip
    # finite ratings can overflow dtype; min and max find inf without an O(nnz) temporary
    if X.nnz and not (np.isfinite(X.data.min()) and np.isfinite(X.data.max())):
        raise ValueError(
            f"ratings as large as {np.abs(ratings).max():.3g} overflow dtype "
            f"{np.dtype(dtype).name}: rescale them, or pass dtype=np.float64."
        )
    return X, mapping


def _fits_a_table(ids, low, high):
    """Integer ``ids`` from ``low`` to ``high``, for a table from 0 to ``high`` of at
    most ``_MAX_TABLE_GAP`` entries per id (and a few thousand more)."""
    if ids.dtype.kind not in "iu" or not len(ids) or low < 0:
        return False
    return high < min(_MAX_TABLE_SIZE, _MAX_TABLE_GAP * len(ids) + 4096)


def _factorize(ids):
    """(distinct ids, int32 code of each id): sorted ids when they compare, else first seen."""
    if ids.dtype.kind in "iu" and len(ids):
        low, high = int(ids.min()), int(ids.max())
        if _fits_a_table(ids, low, high):
            present = np.zeros(high + 1, dtype=bool)
            present[ids] = True
            distinct = np.flatnonzero(present).astype(ids.dtype)
            table = np.zeros(high + 1, dtype=np.int32)
            table[distinct] = np.arange(len(distinct), dtype=np.int32)
            return distinct, table[ids]
    try:
        distinct, codes = np.unique(ids, return_inverse=True)
    except TypeError:  # mixed types: keep the order of first appearance
        lookup = {}
        codes = np.fromiter((lookup.setdefault(x, len(lookup)) for x in ids.tolist()),
                            np.int64, len(ids))  # fmt: skip
        distinct = np.empty(len(lookup), dtype=object)
        distinct[:] = list(lookup)
    if len(distinct) >= 2**31:
        raise ValueError("more than 2**31 - 1 distinct ids on one axis: indices are int32.")
    return distinct, codes.astype(np.int32).reshape(-1)


def _build_csr(rows, cols, ratings, shape, dtype):
    """CSR with sorted indices; repeated pairs are summed (tocsr does that)."""
    X = sp.coo_array((np.asarray(ratings, dtype=dtype), (rows, cols)), shape=shape).tocsr()
    X.sort_indices()
    return X


def _pair_keys(rows, cols, shape):
    return rows.astype(np.int64) * shape[1] + cols


def _raise_duplicate(rows, cols, mapping):
    keys = np.sort(_pair_keys(rows, cols, mapping.shape))
    repeated = keys[1:][keys[1:] == keys[:-1]]
    row, col = divmod(int(repeated[0]), mapping.shape[1])
    raise ValueError(
        f"user {_item(mapping.user_ids, row)!r} rated item {_item(mapping.item_ids, col)!r} "
        "more than once "
        f"({len(np.unique(repeated))} pairs are repeated). Pass duplicates='last' to keep the "
        "last rating of each pair, or duplicates='mean' to average them (--duplicates last or "
        "--duplicates mean on the command line)."
    )


def _resolve_duplicates(rows, cols, ratings, shape, how):
    """One rating per (row, col) pair: the last one given, or the mean."""
    keys = _pair_keys(rows, cols, shape)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    if how == "last":
        pick = order[np.r_[starts[1:] - 1, len(keys) - 1]]
        return rows[pick], cols[pick], ratings[pick]
    sums = np.add.reduceat(ratings[order].astype(np.float64), starts)
    counts = np.diff(np.r_[starts, len(keys)])
    first = order[starts]
    return rows[first], cols[first], sums / counts
