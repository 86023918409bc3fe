"""What ``FunkSVD.fit`` learns besides the factors, on ratings its epochs never saw.

The users' prior ``beta`` (see :func:`funksgd._inference.choose_prior`) and, with
``popularity_weight="auto"``, ``recommend``'s popularity weight are chosen on a sample of
users, each with ratings held out of SGD: the item factors have not been fitted to them,
so they measure what a new rating of a known user would see. Without early stopping the
held-out ratings are one rating of each of up to ``TUNING_USERS`` users with two or more
ratings, and never more than ``TUNING_SHARE`` of all the ratings; with it, the sample is
drawn from the validation ratings, already held out.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import metrics
from ._inference import choose_prior
from ._ranking import POPULARITY_WEIGHTS, ndcg_by_weight
from .model_selection import split_by_mask

TUNING_USERS = 5000
TUNING_SHARE = 0.02
# the popularity weight is learnt on up to this many of the sampled users (a top-k list each)
POPULARITY_USERS = 2000


@dataclass
class Tuning:
    """The sampled users (``rows``, sorted ids) with their training ratings (``known``)
    and their held-out ones (``held``): CSR, a row per sampled user."""

    rows: np.ndarray
    known: sp.csr_array
    held: sp.csr_array


def hold_out(X, rng):
    """``(skip, tuning)``: one random rating each of up to ``TUNING_USERS`` random rows of
    ``X`` with two or more ratings, at most ``TUNING_SHARE`` of ``X.nnz`` in all.

    ``skip[row]`` is the position in ``X.indices`` of the rating held out of ``row``, or
    -1 (see ``BlockedRatings``). ``(None, None)`` when nothing can be held out.
    """
    rows, offsets = choose(np.diff(X.indptr), rng)
    if len(rows) == 0:
        return None, None
    skip = np.full(X.shape[0], -1, dtype=np.int64)
    skip[rows] = X.indptr[rows] + offsets
    sample = X[rows]
    held = np.zeros(sample.nnz, dtype=bool)
    held[sample.indptr[:-1] + offsets] = True
    return skip, Tuning(rows, *split_by_mask(sample, held))


def choose(counts, rng):
    """``(rows, offsets)``: the rows :func:`hold_out` samples given each row's number of
    ratings ``counts``, and the position among its ratings (by item) of the one it holds
    out."""
    eligible = np.flatnonzero(counts >= 2)
    n_rows = min(TUNING_USERS, len(eligible), int(TUNING_SHARE * counts.sum()))
    if n_rows == 0:
        return eligible[:0], eligible[:0]
    rows = np.sort(rng.choice(eligible, n_rows, replace=False))
    return rows, (rng.random_sample(n_rows) * counts[rows]).astype(np.int64)


def from_validation(X, valid, rng):
    """The :class:`Tuning` of up to ``TUNING_USERS`` random rows of ``valid`` (the
    validation ratings, CSR) that hold a rating, with their training ratings in ``X``."""
    eligible = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(eligible) > TUNING_USERS:
        eligible = np.sort(rng.choice(eligible, TUNING_USERS, replace=False))
    return Tuning(eligible, X[eligible], valid[eligible])


def learn(tuning, items, n_threads, start, tol, popularity):
    """``(beta, popularity)`` for the item side ``items`` = ``(item_factors, item_bias,
    global_mean, alpha, biased)``. ``start`` is the users' SGD factors ``(factors, bias,
    rows)`` as in ``solve_users``, or None (zeros); ``popularity`` the ``(weight, item
    counts)`` of ``_ranking.fitted_popularity``, the weight learnt here when None."""
    weight, counts = popularity
    if tuning is None or tuning.held.nnz == 0:
        return 0.0, (weight or 0.0, counts)
    if start is not None:
        at = start[2][tuning.rows]
        start = start[0][at], start[1][at]
    beta, W, _ = choose_prior(tuning.known, tuning.held, *items, n_threads, start, tol)
    if weight is None:
        weight = learn_popularity(tuning, W, items, counts, n_threads)
    return beta, (weight, counts)


def learn_popularity(tuning, W, items, counts, n_threads, k=10):
    """The weight of ``POPULARITY_WEIGHTS`` whose top-``k`` lists of ``W`` (the sampled
    users' factors) rank their liked held-out items best (NDCG@k), the smallest of equals."""
    item_factors, item_bias, global_mean = items[:3]
    take = slice(None, None, -(-len(tuning.rows) // POPULARITY_USERS))  # spread over the ids
    relevant = metrics.relevant_items(tuning.held[take], global_mean)
    if relevant.nnz == 0:
        return 0.0
    values = ndcg_by_weight(
        W[take], item_factors, item_bias, tuning.known[take], relevant, counts,
        POPULARITY_WEIGHTS, k, n_threads,
    )  # fmt: skip
    best = max(range(len(values)), key=lambda j: (values[j], -POPULARITY_WEIGHTS[j]))
    return POPULARITY_WEIGHTS[best]
