"""Synthetic ratings shaped like a real catalogue, generated chunk by chunk."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state

# Ratings generated per chunk: bounds the temporary arrays (a few hundred bytes per rating)
# whatever n_ratings is. Part of the generator's definition: changing it changes the output.
_CHUNK_RATINGS = 1 << 20
# A user who rates more than this share of the catalogue draws items by exponential keys
# (one pass over all items) instead of repeated draws, which would rarely hit the unrated tail.
_HEAVY_SHARE = 0.25
_MAX_ROUNDS = 8


def make_ratings(
    n_users=1000,
    n_items=500,
    n_ratings=20_000,
    *,
    n_components=10,
    rating_scale=(1, 5),
    rating_step=1.0,
    noise=0.5,
    activity_exponent=1.2,
    popularity_exponent=1.5,
    return_factors=False,
    random_state=None,
):
    """Generate a sparse ratings matrix with low-rank structure and a long tail.

    Each user gets a number of ratings drawn in proportion to
    ``(rank + n_users / 100) ** -activity_exponent``, a power law over a
    random ranking of the users whose head is flattened as in real
    catalogues; every user has at least one rating when ``n_ratings >=
    n_users``. Each user's items are drawn without replacement in proportion
    to ``(rank + n_items / 100) ** -popularity_exponent``, so a few items
    collect many ratings and most items few. The defaults give the Netflix
    prize shape roughly its real spread: about 60 ratings for the median
    user, 900 for the median movie and 300,000 for the most rated one.
    A rating is ``mu + b_u + b_i + p_u . q_i`` plus Gaussian noise, rounded to
    ``rating_step`` and clipped to ``rating_scale``.

    The matrix is built in chunks of users with int32 item indices and
    float32 ratings, so memory stays near 8 bytes per rating: the Netflix
    prize shape (480,189 users, 17,770 items, 100M ratings) fits in about
    1 GB.

    Parameters
    ----------
    n_users : int, default=1000
        Number of rows.
    n_items : int, default=500
        Number of columns.
    n_ratings : int, default=20_000
        Number of stored ratings, at most ``n_users * n_items``.
    n_components : int, default=10
        Rank of the interaction term ``p_u . q_i``.
    rating_scale : tuple of (float, float), default=(1, 5)
        Lowest and highest rating.
    rating_step : float or None, default=1.0
        Ratings are rounded to ``rating_scale[0] + j * rating_step``; None
        keeps them continuous (but clipped).
    noise : float, default=0.5
        Standard deviation of the noise added before rounding, in rating units.
    activity_exponent : float, default=1.2
        Power-law exponent of user activity; 0 gives every user the same
        expected number of ratings.
    popularity_exponent : float, default=1.5
        Power-law exponent of item popularity; 0 makes all items equally likely.
    return_factors : bool, default=False
        Also return the parameters the ratings were drawn from.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        float32 ratings and column indices sorted within each row (int32, or
        int64 from 2**31 ratings on); no (user, item) pair is stored twice.
    truth : sklearn.utils.Bunch
        Only with ``return_factors=True``: ``user_factors`` (n_users,
        n_components), ``item_factors`` (n_items, n_components),
        ``user_bias``, ``item_bias`` and ``global_mean``; the noiseless
        rating of ``(u, i)`` is ``global_mean + user_bias[u] + item_bias[i] +
        user_factors[u] @ item_factors[i]``.

    Examples
    --------
    >>> from funksgd.datasets import make_ratings
    >>> X = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=0)
    >>> X.shape, X.nnz, X.dtype
    ((200, 100), 5000, dtype('float32'))
    >>> sorted(set(X.data.tolist()))
    [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    _check_params(n_users, n_items, n_ratings, n_components, rating_scale, rating_step, noise)
    for name, value in [("activity", activity_exponent), ("popularity", popularity_exponent)]:
        if not isinstance(value, Real) or not 0 <= value < np.inf:
            raise ValueError(f"{name}_exponent must be a finite number >= 0, got {value!r}.")
    # A Generator is several times faster than RandomState for these draws; it is seeded from
    # random_state so that ints, RandomState instances and None behave as in scikit-learn.
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    truth = _draw_truth(rng, n_users, n_items, n_components, rating_scale)
    counts = _user_counts(rng, n_users, n_items, n_ratings, activity_exponent)
    item_weights = _power_law_weights(rng, n_items, popularity_exponent)
    item_weights /= item_weights.sum()

    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(n_ratings, dtype=np.int32)
    data = np.empty(n_ratings, dtype=np.float32)
    for start, stop in _user_chunks(indptr):
        lo, hi = indptr[start], indptr[stop]
        rows, cols = _draw_items(rng, counts[start:stop], item_weights)
        indices[lo:hi] = cols
        data[lo:hi] = _draw_values(rng, truth, rows + start, cols, noise, rating_scale, rating_step)
    # scipy wants one index dtype for indptr and indices: int32 unless there are 2**31 ratings.
    index_dtype = np.int32 if n_ratings < 2**31 else np.int64
    X = sp.csr_array(
        (data, indices.astype(index_dtype, copy=False), indptr.astype(index_dtype)),
        shape=(n_users, n_items),
        copy=False,
    )
    return (X, truth) if return_factors else X


def _check_params(n_users, n_items, n_ratings, n_components, rating_scale, rating_step, noise):
    for name, value in [("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings),
                        ("n_components", n_components)]:  # fmt: skip
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if n_users >= 2**31 or n_items >= 2**31:
        raise ValueError("n_users and n_items must be below 2**31 (int32 indices).")
    if n_ratings > n_users * n_items:
        raise ValueError(
            f"n_ratings={n_ratings} exceeds n_users * n_items = {n_users * n_items}: "
            "each (user, item) pair is rated at most once."
        )
    low, high = rating_scale
    if not low < high:
        raise ValueError(f"rating_scale must be (low, high) with low < high, got {rating_scale}.")
    if rating_step is not None and not 0 < rating_step <= high - low:
        raise ValueError(f"rating_step must be in (0, {high - low}] or None, got {rating_step}.")
    if not isinstance(noise, Real) or not 0 <= noise < np.inf:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}.")


def _draw_truth(rng, n_users, n_items, n_components, rating_scale):
    """Biases and factors; their spreads are shares of the scale (1-5: 0.4, 0.5, 0.7)."""
    low, high = rating_scale
    span = high - low
    # p_u . q_i has standard deviation 0.175 * span when both factors have this spread.
    factor_std = np.sqrt(0.175 * span) / n_components**0.25

    def normal(std, shape):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    return Bunch(
        user_factors=normal(factor_std, (n_users, n_components)),
        item_factors=normal(factor_std, (n_items, n_components)),
        user_bias=normal(0.1 * span, n_users),
        item_bias=normal(0.125 * span, n_items),
        global_mean=low + 0.65 * span,
    )


def _power_law_weights(rng, n, exponent):
    """``(rank + n / 100) ** -exponent`` over a random ranking of ``n`` ids.

    The offset flattens the head as in real catalogues (a pure Zipf law would give the
    top Netflix-shaped item more ratings than there are users); the random ranking keeps
    ids free of any popularity order.
    """
    return (rng.permutation(n) + 1.0 + n / 100) ** -exponent


def _user_counts(rng, n_users, n_items, n_ratings, exponent):
    """Ratings per user: power-law shares, at least one each when possible, at most n_items."""
    weights = _power_law_weights(rng, n_users, exponent)
    floor = 1 if n_ratings >= n_users else 0
    counts = floor + rng.multinomial(n_ratings - floor * n_users, weights / weights.sum())
    # The heaviest users may be assigned more ratings than there are items: hand the surplus
    # to the users with room left, in proportion to their weights, until none is left.
    while (surplus := int(np.maximum(counts - n_items, 0).sum())) > 0:
        np.minimum(counts, n_items, out=counts)
        room = np.where(counts < n_items, weights, 0.0)
        counts += rng.multinomial(surplus, room / room.sum())
    return counts


def _user_chunks(indptr):
    """Consecutive user ranges holding about _CHUNK_RATINGS ratings each."""
    n_users = len(indptr) - 1
    cuts = np.searchsorted(indptr, np.arange(0, indptr[-1], _CHUNK_RATINGS), side="right") - 1
    cuts = np.unique(np.r_[cuts, n_users])
    return zip(cuts[:-1], cuts[1:], strict=True)


def _draw_items(rng, counts, item_weights):
    """Distinct items for each user of a chunk, drawn without replacement by popularity.

    Light users draw with replacement and redraw what they already had (rejection), which
    is exactly sequential sampling without replacement. Heavy users, and anyone the
    rejection rounds leave short, use exponential keys: the ``need`` smallest of
    ``Exp(1) / weight`` over the items not yet taken.

    Returns (rows, cols): chunk-local user index and item, sorted by (row, col).
    """
    n_items = len(item_weights)
    item_cdf = np.cumsum(item_weights)
    need = counts.astype(np.int64)
    light = need <= _HEAVY_SHARE * n_items
    keys = np.empty(0, dtype=np.int64)  # row * n_items + item, sorted and distinct
    short = np.where(light, need, 0)
    for _ in range(_MAX_ROUNDS):
        if not short.any():
            break
        rows = np.repeat(np.arange(len(need)), short)
        cols = np.searchsorted(item_cdf, rng.random(len(rows)), side="right")
        new = np.sort(rows * n_items + np.minimum(cols, n_items - 1))
        keys = _sorted_distinct(np.r_[keys, new])
        short = np.where(light, need - np.bincount(keys // n_items, minlength=len(need)), 0)
    short = need - np.bincount(keys // n_items, minlength=len(need))
    extra = [
        _exponential_keys(rng, keys, row, short[row], item_weights) for row in np.flatnonzero(short)
    ]
    if extra:
        keys = np.sort(np.concatenate([keys, *extra]))
    rows, cols = np.divmod(keys, n_items)
    return rows, cols.astype(np.int32)


def _sorted_distinct(values):
    """Sorted distinct values of two sorted runs (np.unique hashes: far slower here)."""
    values.sort(kind="stable")  # timsort merges the two runs in linear time
    return values[np.r_[True, values[1:] != values[:-1]]]


def _exponential_keys(rng, keys, row, n_more, weights):
    """``n_more`` further items for ``row`` by weighted sampling without replacement."""
    n_items = len(weights)
    taken = keys[np.searchsorted(keys, row * n_items) : np.searchsorted(keys, (row + 1) * n_items)]
    score = rng.exponential(size=n_items) / np.maximum(weights, np.finfo(float).tiny)
    score[taken - row * n_items] = np.inf
    return row * n_items + np.sort(np.argpartition(score, n_more - 1)[:n_more])


def _draw_values(rng, truth, rows, cols, noise, rating_scale, rating_step):
    """Noisy ratings of (user, item) pairs, rounded and clipped to the scale, as float32."""
    low, high = rating_scale
    values = np.empty(len(rows), dtype=np.float32)
    step = 1 << 16  # gathered factors of this many pairs at a time: a few MB
    for start in range(0, len(rows), step):
        pairs = slice(start, start + step)
        user_factors = truth.user_factors[rows[pairs]]
        values[pairs] = np.einsum("ij,ij->i", user_factors, truth.item_factors[cols[pairs]])
    values += truth.user_bias[rows] + truth.item_bias[cols] + np.float32(truth.global_mean)
    values += rng.standard_normal(len(rows), dtype=np.float32) * np.float32(noise)
    if rating_step is not None:
        values = low + np.round((values - low) / rating_step) * rating_step
    return np.clip(values, low, high).astype(np.float32, copy=False)
