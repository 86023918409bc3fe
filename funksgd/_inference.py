"""Inference from fitted factors: fold-in of users, predictions of pairs, top-n items.

Every function takes the fitted arrays explicitly (a :class:`Fitted` model) and checks the
indices it hands to a compiled kernel against those very arrays.
"""

import dataclasses
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._kernels import sgd as _sgd
from ._validation import check_memory, csr_arrays, row_indices
from .model_selection import choose_per_row, split_by_mask

# score(): share of each row's ratings held out, and the seed that picks them. The seed is
# fixed so every candidate of a grid search is scored on the same split.
SCORE_HOLDOUT_FRACTION = 0.2
SCORE_SEED = 0


@dataclass(frozen=True)
class Fitted:
    """A fitted model, one state: the estimator swaps a whole new one in at once, so that a
    reader in another thread never sees the arrays of two fits."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    biased: bool
    alpha: float
    schedule: object  # the engine's Schedule, for warm starts and partial_fit
    n_iter: int = 0
    t: int = 0
    loss_curve: list = field(default_factory=list)
    validation_scores: list | None = None
    rating_range: tuple | None = None  # (lowest, highest) training rating, with clip=True
    item_counts: np.ndarray | None = None  # training ratings per item
    popularity_weight: float = 0.0  # of log(1 + item_counts) in recommend's ranking

    def ranking_offsets(self):
        """What ``recommend`` adds to each item's predicted rating to rank: the popularity
        offset, or None."""
        if not self.popularity_weight or self.item_counts is None:
            return None
        return self.popularity_weight * np.log1p(self.item_counts.astype(np.float64))

    beta: float = 0.0  # the users' prior, see choose_prior

    @property
    def n_components(self):
        return self.item_factors.shape[1]

    @property
    def n_items(self):
        return self.item_factors.shape[0]


def new_fitted(estimator, X, factors, users, record, extended, popularity):
    """The fitted state of a finished fit on ``X``: ``factors`` and ``users`` (factors,
    biases and prior ``beta``) from training, the ``record`` of its epochs (added to that of
    the model it ``extended``, in partial_fit), and the ``popularity`` weight and item
    counts."""
    n_iter, loss_curve = record.n_iter, record.loss_curve
    low, high = float(X.data.min()), float(X.data.max())
    if extended is not None:
        n_iter += extended.n_iter
        loss_curve = extended.loss_curve + loss_curve
        if extended.rating_range is not None:
            low, high = min(low, extended.rating_range[0]), max(high, extended.rating_range[1])
    return Fitted(
        user_factors=users[0], item_factors=factors.item_factors, user_bias=users[1],
        item_bias=factors.item_bias, global_mean=factors.global_mean, biased=estimator.biased,
        alpha=estimator.alpha, schedule=factors.schedule, n_iter=n_iter, t=factors.schedule.t,
        loss_curve=loss_curve, validation_scores=record.validation_scores or None,
        rating_range=(low, high) if estimator.clip else None, item_counts=popularity[1],
        popularity_weight=popularity[0], beta=users[2],
    )  # fmt: skip


def fitted_attribute(name):
    """A fitted attribute read from the one fitted state; setting it swaps in a new state."""

    def get(self):
        try:
            return getattr(self._fitted, name)
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name + '_'!r}: it is not fitted yet."
            ) from None

    def set(self, value):
        self._fitted = dataclasses.replace(self._fitted, **{name: value})

    return property(get, set)


class FittedAttributes:
    """The fitted attributes of an estimator that keeps one fitted state, ``_fitted``."""

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_fitted")

    components_ = property(lambda self: self.item_factors_.T)

    @property
    def best_validation_score_(self):
        scores = self.validation_scores_
        return max(scores) if scores else None


# item_factors_, ..., popularity_weight_: the fields of the one fitted state
for _name in (
    "item_factors", "user_factors", "item_bias", "user_bias", "global_mean", "n_iter", "t",
    "loss_curve", "validation_scores", "rating_range", "item_counts", "popularity_weight",
    "beta",
):  # fmt: skip
    setattr(FittedAttributes, f"{_name}_", fitted_attribute(_name))


class SimilarRows:
    """``similar_items`` and ``similar_users`` of an estimator with fitted factors."""

    def similar_items(self, items, n=10):
        """The ``n`` items most similar to each of ``items``, by the cosine of their factors.

        Parameters
        ----------
        items : array-like of int of shape (n_queries,)
            Item indices (columns of the training matrix).
        n : int, default=10
            Neighbours per item; the item itself is left out.

        Returns
        -------
        neighbours : ndarray of shape (n_queries, n), dtype int64
            Item indices, most similar first; -1 pads when there are fewer.
        similarities : ndarray of shape (n_queries, n)
            Their cosine similarities (NaN where padded).
        """
        return self._similar("item_factors", items, n, "items")

    def similar_users(self, users, n=10):
        """The ``n`` training users most similar to each of ``users``, by their factors.

        As :meth:`similar_items`, with user (row) indices.
        """
        return self._similar("user_factors", users, n, "users")

    def _similar(self, side, rows, n, name):
        check_is_fitted(self)
        factors = getattr(self._fitted, side)
        return similar_rows(factors, check_indices(rows, len(factors), name), n)


def check_output_memory(fitted, n_rows):
    """Refuse a dense matrix of predicted ratings that would not fit in memory."""
    check_memory(
        2 * n_rows * fitted.n_items * fitted.item_factors.dtype.itemsize,
        f"A ({n_rows}, {fitted.n_items}) matrix of predicted ratings",
    )


# rows solved per call of the compiled solve: Python runs in between, so Ctrl-C is honoured
SOLVE_CHUNK_RATINGS = 1 << 20
# conjugate gradient: each row's residual is brought under a tolerance times its A'y
# (SOLVE_TOL: transform, score, recommend; FIT_SOLVE_TOL: fit, which starts from the SGD
# factors, already close), in at most SOLVE_MAX_STEPS_PER_DIM * (n_components + 1) steps
# (exact arithmetic needs at most n_components + 1; rounding may need a few more)
SOLVE_TOL = 1e-6
FIT_SOLVE_TOL = 1e-3
SOLVE_MAX_STEPS_PER_DIM = 2
# choose_prior: the values tried, in units of the items' mean squared norm
PRIOR_GRID = np.concatenate([[0.0], np.logspace(-2, 3, 11)])


def solve_users(
    X, item_factors, item_bias, global_mean, alpha, biased, n_threads, beta=0.0, start=None,
    tol=SOLVE_TOL, in_place=False,
):  # fmt: skip
    """User factors and biases for the CSR rows of ``X``, items held fixed.

    Each row is a ridge regression whose penalty is ``alpha`` times its number of
    ratings plus ``beta`` (see :func:`choose_prior`), solved by conjugate gradient until
    its residual is under ``tol`` times its right-hand side (light rows exactly). It
    starts from zeros, or from ``start``: ``(factors, bias)`` with a row per row of
    ``X``. Returns ``(user_factors, user_bias)``.

    With ``in_place``, ``start`` is ``(factors, bias, positions)``, row ``u`` of ``X``
    at row ``positions[u]`` of those arrays (training's order): they are put in the
    order of ``X`` in place, then solved where they stand (each row read before it is
    written), and returned. No second copy is made.
    """
    n_rows, n_components = X.shape[0], item_factors.shape[1]
    if X.shape[1] != len(item_factors):
        raise ValueError(f"X has {X.shape[1]} items, the model {len(item_factors)}.")
    dtype = item_factors.dtype
    if in_place:
        user_factors, user_bias, positions = start
        _sgd.permute_rows(user_factors, user_bias, np.asarray(positions, np.int32))
        start = user_factors, user_bias
    else:
        check_memory(
            n_rows * (n_components + 1) * dtype.itemsize,
            f"Folding in rows of {n_rows} users with n_components={n_components}",
        )
        user_factors = np.empty((n_rows, n_components), dtype)
        user_bias = np.empty(n_rows, dtype)
    if start is None or X.nnz == 0:
        start = np.empty((0, n_components), dtype), np.empty(0, dtype)
    start = np.ascontiguousarray(start[0], dtype), np.ascontiguousarray(start[1], dtype)
    _fold_in_chunks(X, item_factors, item_bias, global_mean, alpha, beta, biased, tol,
                    n_threads, start, user_factors, user_bias)  # fmt: skip
    return user_factors, user_bias


def _fold_in_chunks(X, item_factors, item_bias, global_mean, alpha, beta, biased, tol,
                    n_threads, start, user_factors, user_bias):  # fmt: skip
    """The compiled solve, ``SOLVE_CHUNK_RATINGS`` ratings' rows at a time (Python runs
    in between, so Ctrl-C is honoured). Raises if rows could not be solved."""
    indptr, indices, data = csr_arrays(X)
    n_components, dtype = item_factors.shape[1], item_factors.dtype
    max_steps = SOLVE_MAX_STEPS_PER_DIM * (n_components + 1)
    warm = len(start[0]) > 0
    failures = 0
    for first, stop in row_chunks(indptr, SOLVE_CHUNK_RATINGS):
        _, failed, no_memory = _sgd.fold_in(
            indptr[first : stop + 1], indices, data, item_factors, item_bias, global_mean,
            alpha, beta, biased, max_steps, tol, n_threads,
            start[0][first:stop] if warm else start[0], start[1][first:stop] if warm else start[1],
            user_factors[first:stop], user_bias[first:stop],
        )  # fmt: skip
        if no_memory:
            raise MemoryError(
                f"Out of memory in the users' solve: {no_memory} rows could not be solved "
                f"for want of {5 * (n_components + 1) * dtype.itemsize:,} bytes of scratch "
                "per thread. Free memory, or use fewer threads (n_jobs)."
            )
        failures += failed
    if failures:
        raise ValueError(
            f"The least-squares fold-in failed for {failures} rows: its arithmetic or "
            f"answer overflowed in {dtype}, the item factors or ratings are too large. "
            "Training may have diverged (try a smaller eta0, or centre and scale the "
            "ratings); else use dtype='float64'."
        )


def row_chunks(indptr, n_ratings):
    """``(start, stop)`` ranges of rows holding about ``n_ratings`` ratings each."""
    n_rows = len(indptr) - 1
    bounds = np.searchsorted(indptr, np.arange(n_ratings, indptr[-1], n_ratings), "right")
    bounds = np.unique(np.concatenate([[0], np.minimum(bounds, n_rows), [n_rows]]))
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def choose_prior(
    known, held, item_factors, item_bias, global_mean, alpha, biased, n_threads, start=None,
    tol=SOLVE_TOL,
):  # fmt: skip
    """The count-independent part ``beta`` of the users' penalty ``alpha * n_u + beta``
    that best predicts ``held`` from ``known`` (CSR, a row per user), items fixed.

    In a Bayesian view ``beta`` is the noise variance over the prior variance of the user
    factors (and biases): with a prior that does not grow with a user's ratings, a user
    with 3 ratings is shrunk far more, relatively, than one with 3,000. It is estimated
    empirically: the rows of ``known`` are solved with each ``beta`` of ``PRIOR_GRID``
    times the mean squared norm of the item factors, the first solve from ``start``
    (``(factors, bias)`` a row per row, or zeros), each next one from the last one's
    answer, all to ``tol``. The held-out ratings must be unseen by the items: ratings
    they were trained on favour ``beta`` = 0. A user's held-out errors weigh as many as
    its ratings, as in a test split of random ratings (users sampled alike, one rating
    held out each, would otherwise favour the light users, and too large a ``beta``).
    Returns ``(beta, user_factors, user_bias)``, the last two the rows solved with it.
    """
    held_rows = row_indices(held).astype(np.int32)
    n_held = np.diff(held.indptr)
    weights = ((np.diff(known.indptr) + n_held) / np.maximum(n_held, 1))[held_rows]
    # in units of the items' squared norm, as the data term: the same choice for ratings
    # and factors scaled alike
    unit = float(np.mean(np.square(item_factors, dtype=np.float64).sum(axis=1))) or 1.0
    best = (np.inf, 0.0, None)
    # each value's solution starts the next: the answers move little from one to the next
    for beta in PRIOR_GRID * unit:
        start = solve_users(
            known, item_factors, item_bias, global_mean, alpha, biased, n_threads, beta,
            start, tol,
        )  # fmt: skip
        W, bias = start
        pred = np.einsum("ij,ij->i", W[held_rows].astype(np.float64), item_factors[held.indices])
        if biased:
            pred += global_mean + bias[held_rows] + item_bias[held.indices]
        error = float(np.average((held.data - pred) ** 2, weights=weights))
        if error < best[0]:
            best = (error, float(beta), start)
    return best[1], *best[2]


def fold_in(fitted, X, n_threads):
    """``solve_users`` with the fitted item side and prior."""
    return solve_users(
        X, fitted.item_factors, fitted.item_bias, fitted.global_mean, fitted.alpha,
        fitted.biased, n_threads, fitted.beta,
    )  # fmt: skip


def predict_pairs(fitted, user_factors, user_bias, users, items, n_threads):
    """Predicted ratings of (user row, item) pairs, in the factors' dtype."""
    pred = np.empty(len(users), dtype=fitted.item_factors.dtype)
    _sgd.predict_pairs(
        users, items, user_factors, fitted.item_factors, user_bias, fitted.item_bias,
        fitted.global_mean, fitted.biased, n_threads, pred,
    )  # fmt: skip
    return clip(fitted, pred)


def clip(fitted, ratings):
    """Predicted ``ratings`` limited, in place, to the training range (with ``clip=True``)."""
    if fitted.rating_range is not None:
        np.clip(ratings, *fitted.rating_range, out=ratings)
    return ratings


def rating_matrix(fitted, W, user_bias=None):
    """``W @ item_factors.T + global_mean + item_bias`` (+ ``user_bias`` per row), checked
    for overflow and memory."""
    check_output_memory(fitted, len(W))
    ratings = W @ fitted.item_factors.T + (fitted.global_mean + fitted.item_bias)
    if user_bias is not None:
        ratings += user_bias[:, None]
    return check_finite(ratings, "The predicted ratings")


def predict_ratings(fitted, users, items, n_threads):
    """Predicted ratings of (training user, item) index pairs, checked."""
    users = check_indices(users, len(fitted.user_factors), "users")
    items = check_indices(items, fitted.n_items, "items")
    if users.shape != items.shape:
        raise ValueError(
            f"users and items must have the same length, got {len(users)} and {len(items)}."
        )
    pred = predict_pairs(fitted, fitted.user_factors, fitted.user_bias, users, items, n_threads)
    return check_finite(pred, "The predicted ratings")


def heldout_score(fitted, X, n_threads):
    """``FunkSVD.score``: minus the RMSE of a seeded share of each row's ratings, predicted
    from the fold-in of the rest."""
    rng = np.random.RandomState(SCORE_SEED)
    known, held = split_by_mask(X, choose_per_row(X, SCORE_HOLDOUT_FRACTION, rng))
    if held.nnz == 0:
        raise ValueError("score needs at least one row of X with two or more ratings.")
    W, bias = fold_in(fitted, known, n_threads)
    held = held.tocoo()
    rows, cols = held.row.astype(np.int32), held.col.astype(np.int32)
    pred = predict_pairs(fitted, W, bias, rows, cols, n_threads)
    return -float(np.sqrt(np.mean((pred.astype(np.float64) - held.data) ** 2)))


def recommend(fitted, users, X, n, exclude_rated, n_threads, items=None, filter_items=None):
    """``FunkSVD.recommend`` on a fitted state, ``X`` already checked against it."""
    if users is None and X is None:
        raise ValueError("Pass users (training row indices), X (ratings), or both.")
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(exclude_rated, (bool, np.bool_)):
        raise TypeError(f"exclude_rated must be True or False, got {exclude_rated!r}.")
    if users is None:
        W, bias = fold_in(fitted, X, n_threads)
    else:
        users = check_indices(users, len(fitted.user_factors), "users")
        if X is not None and X.shape[0] != len(users):
            raise ValueError(
                f"X has {X.shape[0]} rows but {len(users)} users were given: row j of X "
                "must hold the ratings of users[j]."
            )
        W, bias = fitted.user_factors[users], fitted.user_bias[users]
    if exclude_rated and X is None:
        raise ValueError(
            "exclude_rated=True needs X, the users' ratings (e.g. X_train[users]); "
            "or pass exclude_rated=False."
        )
    check_memory(len(W) * n * 16, f"recommend(n={n}) for {len(W)} users")
    blocked = blocked_items(fitted.n_items, items, filter_items)
    rated = X if exclude_rated else None
    return top_n(fitted, W, bias + fitted.global_mean, rated, n, blocked)


def blocked_items(n_items, items, filter_items):
    """A mask of the items no row may get: outside ``items`` (when given) or in
    ``filter_items``; None when every item may be recommended."""
    if items is None and filter_items is None:
        return None
    blocked = np.zeros(n_items, dtype=bool)
    if items is not None:
        blocked[:] = True
        blocked[check_indices(items, n_items, "items")] = False
    if filter_items is not None:
        blocked[check_indices(filter_items, n_items, "filter_items")] = True
    return blocked


def top_n(fitted, W, offsets, rated, n, blocked=None):
    """Best ``n`` items per row of ``W``, in chunks so memory stays bounded.

    ``offsets`` is added to each row's scores (global mean plus user bias); the items
    stored in row ``j`` of the CSR ``rated`` (or none, when None) and those ``blocked``
    (a mask over the items, or None) are left out. Items are ranked by their score plus
    the fitted ranking offsets (popularity); returns ``(items, scores)`` with the
    scores the predicted ratings, -1 and NaN where a row has fewer than ``n`` items.
    """
    n_items = fitted.n_items
    ranking = fitted.ranking_offsets()
    take = min(n, n_items)
    items = np.full((len(W), n), -1, dtype=np.int64)
    scores = np.full((len(W), n), np.nan, dtype=W.dtype)
    chunk = max(1, (1 << 22) // n_items)
    for start in range(0, len(W), chunk):
        stop = min(start + chunk, len(W))
        block = W[start:stop] @ fitted.item_factors.T + fitted.item_bias
        block += offsets[start:stop, None]
        if rated is not None:
            sub = rated[start:stop]
            block[row_indices(sub), sub.indices] = -np.inf
        if blocked is not None:
            block[:, blocked] = -np.inf
        best, best_scores = best_columns(block if ranking is None else block + ranking, take)
        valid = np.isfinite(best_scores)
        best_scores = np.take_along_axis(block, best, axis=1)
        items[start:stop, :take] = np.where(valid, best, -1)
        scores[start:stop, :take] = np.where(valid, best_scores, np.nan)
    return items, scores


def best_columns(block, take):
    """Columns of the ``take`` largest values of each row, largest first (ties: lower column
    first), and those values."""
    if take < block.shape[1]:
        best = np.argpartition(-block, take - 1, axis=1)[:, :take]
        # argpartition keeps any of the values tied with the last one taken: rows with such
        # ties are sorted in full, so that the lower columns win
        last = np.take_along_axis(block, best, axis=1).min(axis=1)
        tied = np.flatnonzero((block >= last[:, None]).sum(axis=1) > take)
        if len(tied):
            columns = np.broadcast_to(np.arange(block.shape[1]), (len(tied), block.shape[1]))
            best[tied] = np.lexsort((columns, -block[tied]), axis=1)[:, :take]
    else:
        best = np.broadcast_to(np.arange(block.shape[1]), block.shape)
    values = np.take_along_axis(block, best, axis=1)
    order = np.lexsort((best, -values), axis=1)
    return np.take_along_axis(best, order, axis=1), np.take_along_axis(values, order, axis=1)


def similar_rows(factors, queries, n=10, *, batch_size=None):
    """The ``n`` rows of ``factors`` most cosine-similar to each query row, itself excluded.

    Parameters
    ----------
    factors : ndarray of shape (n_rows, n_components)
        Item (or user) factors.
    queries : array-like of int of shape (n_queries,)
        Row indices to find neighbours for.
    n : int, default=10
        Neighbours per query.
    batch_size : int, default=None
        Queries per batch; None keeps a batch's similarity block near 32 MiB.

    Returns
    -------
    rows : ndarray of shape (n_queries, n), dtype int64
        Neighbour indices, most similar first; -1 pads when there are fewer
        than ``n`` other rows. A zero row has similarity 0 to every row.
    similarities : ndarray of shape (n_queries, n)
        Cosine similarities (NaN where padded).

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> rows, sims = similar_rows(Q, [0], n=2)
    >>> rows
    array([[1, 2]])
    """
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(f"factors must be 2-D, got shape {factors.shape}.")
    queries = np.asarray(queries)
    if queries.ndim != 1 or (queries.size and queries.dtype.kind not in "iu"):
        raise ValueError("queries must be a 1-D array of integer row indices.")
    n_rows = len(factors)
    if queries.size and (queries.min() < 0 or queries.max() >= n_rows):
        raise ValueError(f"queries must be row indices in 0..{n_rows - 1}.")
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    norms = np.linalg.norm(factors, axis=1)
    unit = factors / np.where(norms > 0, norms, 1.0)[:, None]
    if batch_size is None:
        batch_size = max(1, (1 << 22) // max(n_rows, 1))
    take = min(n, n_rows - 1)
    rows = np.full((len(queries), n), -1, dtype=np.int64)
    sims = np.full((len(queries), n), np.nan, dtype=unit.dtype)
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        block = unit[batch] @ unit.T
        block[np.arange(len(batch)), batch] = -np.inf
        if take <= 0:
            continue
        best, best_sims = best_columns(block, take)
        rows[start : start + len(batch), :take] = best
        sims[start : start + len(batch), :take] = best_sims
    return rows, sims


def check_indices(indices, size, name):
    """1-D int32 indices in [0, size), or a ValueError naming the offending value."""
    indices = np.asarray(indices)
    if indices.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {indices.shape}.")
    if indices.dtype.kind not in "iu":
        if indices.size and (indices.dtype.kind != "f" or not np.all(indices == np.round(indices))):
            raise TypeError(f"{name} must be integer indices, got dtype {indices.dtype}.")
    bad = np.flatnonzero((indices < 0) | (indices >= size))
    if len(bad):
        raise ValueError(
            f"{name}[{bad[0]}] = {indices[bad[0]]} is out of range: the model knows {size} "
            f"{name} (indices 0..{size - 1})."
        )
    return indices.astype(np.int32)


def check_factors(W, n_components, dtype):
    """User factors as a 2-D array of ``dtype`` with ``n_components`` columns."""
    W = check_array(W, dtype=dtype)
    if W.shape[1] != n_components:
        raise ValueError(
            f"X has {W.shape[1]} columns but the model has n_components={n_components}."
        )
    return W


def check_finite(values, what):
    """Return ``values``, or raise if any overflowed to inf or NaN (huge ratings or factors)."""
    if not (values.size == 0 or np.isfinite(values.min()) and np.isfinite(values.max())):
        raise ValueError(
            f"{what} overflowed to inf or NaN in {values.dtype}: the ratings or factors are "
            "too large. Rescale the ratings, or use dtype='float64'."
        )
    return values
