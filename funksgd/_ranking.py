"""Ranking-time adjustments and similarity search on fitted factors (pure functions).

Why a popularity offset: the items a user goes on to rate are not missing at
random, they are chosen, and popular items far more often. Ranking by the
predicted rating alone answers "how much would the user like it if they rated
it", not "will the user rate it and like it". Ranking by
``predicted rating + weight * log(1 + n_i)``, with ``n_i`` the training count
of item ``i``, scores the log of a prior of being chosen (proportional to a
power of ``n_i``) next to the rating; ``weight`` converts between the two and is
learned from the training ratings alone by :func:`learn_popularity_weight`.
The offset changes only the order of the lists, never the predicted ratings.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone

POPULARITY_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
LEARN_HOLDOUT_FRACTION = 0.2
LEARN_SEED = 0


def item_counts(X):
    """Number of ratings of each item (column) of CSR ``X``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> item_counts(sp.csr_array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]]))
    array([2, 0, 1])
    """
    return np.bincount(X.indices, minlength=X.shape[1])


def popularity_offsets(counts, weight):
    """Per-item ranking offsets ``weight * log(1 + counts)``.

    Parameters
    ----------
    counts : ndarray of shape (n_items,)
        Training ratings per item.
    weight : float
        Non-negative weight of the log-count (0 ranks by predicted rating).

    Returns
    -------
    offsets : ndarray of shape (n_items,), float64

    Examples
    --------
    >>> import numpy as np
    >>> popularity_offsets(np.array([0, 1, 3]), 2.0)
    array([0.        , 1.38629436, 2.77258872])
    """
    if isinstance(weight, bool) or not isinstance(weight, Real) or not weight >= 0:
        raise ValueError(f"weight must be a non-negative number, got {weight!r}.")
    counts = np.asarray(counts)
    if counts.ndim != 1 or (counts.size and counts.min() < 0):
        raise ValueError("counts must be a 1-D array of non-negative counts.")
    return float(weight) * np.log1p(counts.astype(np.float64))


def shrink_items(item_bias, item_factors, counts, beta):
    """Item biases and factors scaled by ``n_i / (n_i + beta)``: a count-based prior.

    Parameters
    ----------
    item_bias : ndarray of shape (n_items,)
    item_factors : ndarray of shape (n_items, n_components)
    counts : ndarray of shape (n_items,)
        Training ratings per item.
    beta : float
        Non-negative prior strength, in ratings (0 leaves them as they are).

    Returns
    -------
    item_bias, item_factors : ndarray
        Shrunk copies.

    Examples
    --------
    >>> import numpy as np
    >>> b, Q = shrink_items(np.array([1.0, 1.0]), np.ones((2, 1)), np.array([0, 10]), 10.0)
    >>> b
    array([0. , 0.5])
    """
    if isinstance(beta, bool) or not isinstance(beta, Real) or not beta >= 0:
        raise ValueError(f"beta must be a non-negative number, got {beta!r}.")
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        scale = np.where(counts > 0, counts / (counts + beta), 0.0 if beta > 0 else 1.0)
    scale = scale.astype(item_factors.dtype)
    return item_bias * scale, item_factors * scale[:, None]


def empirical_bayes_beta(X):
    """Prior strength ``beta = noise variance / item-effect variance``, by moments.

    The mean deviation ``d_i`` of item ``i``'s ratings from the global mean has
    variance ``tau^2 + sigma^2 / n_i`` (true item effect plus noise), so
    ``tau^2`` is estimated as ``var(d_i) - mean(sigma^2 / n_i)`` and ``beta`` is
    ``sigma^2 / tau^2``: the posterior mean of an item effect is
    ``d_i * n_i / (n_i + beta)``.

    Parameters
    ----------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        Training ratings.

    Returns
    -------
    beta : float
        ``inf`` when the item effects are indistinguishable from noise.
    """
    counts = item_counts(X)
    mu = X.data.mean()
    sums = np.bincount(X.indices, weights=X.data - mu, minlength=X.shape[1])
    rated = counts > 0
    deviations = sums[rated] / counts[rated]
    sigma2 = float(np.var(X.data))
    tau2 = float(np.var(deviations) - np.mean(sigma2 / counts[rated]))
    return sigma2 / tau2 if tau2 > 0 else float("inf")


def ranking_scores(user_factors, item_factors, item_bias, offsets=None):
    """Scores that order items for each user: ``W @ Q.T + item_bias (+ offsets)``.

    The global mean and the user bias are constant per user and left out.
    """
    scores = user_factors @ item_factors.T + item_bias
    if offsets is not None:
        scores = scores + offsets
    return scores


def learn_popularity_weight(
    estimator,
    X,
    *,
    weights=POPULARITY_WEIGHTS,
    k=10,
    holdout_fraction=LEARN_HOLDOUT_FRACTION,
    random_state=LEARN_SEED,
):
    """The popularity weight that ranks best on ratings held out of ``X`` itself.

    A clone of ``estimator`` is fitted on the training ratings less a seeded
    ``holdout_fraction`` of each user's ratings; each candidate weight ranks
    the unseen items of every user by ``predicted rating + weight * log(1 + n_i)``
    (counts of the reduced training set), and the weight with the highest
    NDCG@k on the held-out ratings at or above the training mean (liked; all
    of them when the ratings are constant, as implicit feedback) is returned,
    the smallest of equals. Only ``X`` is used: no test data.

    Parameters
    ----------
    estimator : FunkSVD
        An unfitted (or fitted: it is cloned) estimator.
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        Training ratings.
    weights : sequence of float, default=POPULARITY_WEIGHTS
        Candidates.
    k : int, default=10
        List length of the NDCG that chooses.
    holdout_fraction : float, default=0.2
        Share of each user's ratings held out.
    random_state : int, default=0
        Seeds the split.

    Returns
    -------
    weight : float
        The best candidate.
    ndcg : dict
        NDCG@k on the inner hold-out for each candidate.
    """
    from .metrics import ranking_metrics_at_k, split_within_rows

    if not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    weights = [float(w) for w in weights]
    if not weights:
        raise ValueError("weights must hold at least one candidate.")
    known, held = split_within_rows(X, holdout_fraction, np.random.RandomState(random_state))
    model = clone(estimator).fit(known)
    counts = item_counts(known)
    threshold = float(known.data.mean())
    base = lambda users: ranking_scores(  # noqa: E731
        model.user_factors_[users], model.item_factors_, model.item_bias_
    )
    if held.nnz == 0:
        raise ValueError(
            "No user of X has two ratings or more: nothing can be held out to learn the "
            "popularity weight."
        )
    ndcg = {}
    for weight in weights:
        offsets = popularity_offsets(counts, weight)
        scores = lambda users, offsets=offsets: base(users) + offsets  # noqa: E731
        ndcg[weight] = ranking_metrics_at_k(
            scores, known, held, k=k, relevance_threshold=threshold
        )["ndcg"]
    best = max(weights, key=lambda w: (ndcg[w], -w))
    return best, ndcg


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
        best = np.argpartition(-block, take - 1, axis=1)[:, :take]
        best_sims = np.take_along_axis(block, best, axis=1)
        order = np.lexsort((best, -best_sims), axis=1)
        rows[start : start + len(batch), :take] = np.take_along_axis(best, order, axis=1)
        sims[start : start + len(batch), :take] = np.take_along_axis(best_sims, order, axis=1)
    return rows, sims


def similar_items(item_factors, items, n=10, *, batch_size=None):
    """The ``n`` items most cosine-similar to each of ``items`` by their factors, itself excluded.

    See :func:`similar_rows`.
    """
    return similar_rows(item_factors, items, n, batch_size=batch_size)


def similar_users(user_factors, users, n=10, *, batch_size=None):
    """The ``n`` users most cosine-similar to each of ``users`` by their factors, itself excluded.

    See :func:`similar_rows`.
    """
    return similar_rows(user_factors, users, n, batch_size=batch_size)
