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

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone

from . import metrics
from ._progress import progress_bar
from ._validation import check_n_jobs, row_indices
from .model_selection import choose_per_row, split_by_mask

POPULARITY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
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

    if not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    weights = [float(w) for w in weights]
    if not weights:
        raise ValueError("weights must hold at least one candidate.")
    rng = np.random.RandomState(random_state)
    known, held = split_by_mask(X, choose_per_row(X, holdout_fraction, rng))
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
    batch_size = max(1, (1 << 17) // X.shape[1])  # score blocks of ~1 MB: a fit's side job
    for weight in weights:
        offsets = popularity_offsets(counts, weight)
        scores = lambda users, offsets=offsets: base(users) + offsets  # noqa: E731
        ndcg[weight] = metrics.ranking_metrics_at_k(
            scores,
            known,
            held,
            k=k,
            relevance_threshold=threshold,
            batch_size=batch_size,
            show_progress=False,
        )["ndcg"]
    best = max(weights, key=lambda w: (ndcg[w], -w))
    return best, ndcg


def fitted_popularity(estimator, X, extended, incremental, max_ratings=1 << 18, max_users=2000):
    """``(weight, item counts)`` of the popularity offset for a model fitted on ``X``.

    The weight is the estimator's ``popularity_weight``, or with ``"auto"`` the one
    :func:`learn_popularity_weight` finds on ``X`` (on at most ``max_users`` random users
    holding about ``max_ratings`` ratings, so that learning costs a bounded share of a large
    fit; ``log(1 + n_i)`` only shifts by a constant when all counts scale); 0 when no
    user has the two ratings a hold-out needs. ``partial_fit`` adds the counts to those
    of the model it ``extended`` and keeps its weight; its first call (``incremental``)
    does not learn one: ``"auto"`` is 0 there, since learning takes a fit.
    """
    counts = item_counts(X)
    if extended is not None:  # a model from a file or a cluster may have no counts
        before = 0 if extended.item_counts is None else extended.item_counts
        return extended.popularity_weight, before + counts
    weight = estimator.popularity_weight
    if weight != "auto" or incremental:
        return 0.0 if weight == "auto" else float(weight), counts
    sample = X
    if X.nnz > max_ratings or X.shape[0] > max_users:
        users = np.random.RandomState(LEARN_SEED).permutation(X.shape[0])
        taken = np.searchsorted(np.cumsum(np.diff(X.indptr)[users]), max_ratings)
        sample = X[np.sort(users[: max(1, min(int(taken), max_users))])]
    if not np.any(np.diff(sample.indptr) >= 2):
        return 0.0, counts
    learner = clone(estimator).set_params(popularity_weight=0.0, verbose=0, warm_start=False)
    return learn_popularity_weight(learner, sample)[0], counts


# ------------------------------------------------- evaluating top-k lists (metrics)
def top_k_function(model, X_train, k, exclude_train):
    """``top_k(users) -> (len(users), k) items`` for a model with recommend, or a score function."""
    if hasattr(model, "recommend"):
        if not exclude_train:
            return lambda users: model.recommend(users=users, n=k, exclude_rated=False)[0]
        return lambda users: model.recommend(users=users, X=X_train[users], n=k)[0]
    if not callable(model):
        raise TypeError(
            "model must have a recommend(users=..., X=..., n=...) method or be a function "
            f"scores(users) -> (n_users, n_items) array, got {type(model).__name__}."
        )
    shape_of = lambda users: (len(users), X_train.shape[1])  # noqa: E731

    def top_k(users):
        scores = np.asarray(model(users), dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != X_train.shape[1]:
            raise ValueError(
                f"The score function returned shape {scores.shape}, expected {shape_of(users)}."
            )
        scores = np.array(np.broadcast_to(scores, shape_of(users)))
        if exclude_train:
            sub = X_train[users]
            scores[row_indices(sub), sub.indices] = -np.inf
        return metrics.top_k_items(scores, k)

    return top_k


def evaluate(top_k, users, relevant, k, batch_size, n_jobs, show_progress):
    """Sums of the per-user metrics over batches of ``users``, then their means."""
    n_items = relevant.shape[1]
    if batch_size is None:
        batch_size = max(1, (1 << 22) // max(n_items, 1))
    batch_size = metrics._check_positive_int(batch_size, "batch_size")
    batches = [users[start : start + batch_size] for start in range(0, len(users), batch_size)]

    def run(batch):
        items = metrics._check_recommended(top_k(batch), n_items, len(batch), k)
        per_user = per_user_metrics(items, relevant[batch], k)
        return {name: float(values.sum()) for name, values in per_user.items()}, items

    seen = np.zeros(n_items, dtype=bool)
    totals = dict.fromkeys(metrics.RANKING_METRICS, 0.0)
    show = show_progress or (show_progress is None and len(batches) > 100)
    bar = progress_bar(len(batches), "ranking metrics", "batch") if show else None
    n_threads = check_n_jobs(n_jobs)
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for sums, items in pool.map(run, batches) if n_threads > 1 else map(run, batches):
            for name in metrics.RANKING_METRICS:
                totals[name] += sums[name]
            seen[items[items >= 0]] = True
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    n_users = len(users)
    result = {name: total / n_users if n_users else np.nan for name, total in totals.items()}
    result["coverage"] = float(seen.mean()) if n_items else np.nan
    result["n_users"] = n_users
    return result


def per_user_metrics(items, relevant, k):
    """Each metric for each row of ``items``, against the rows of CSR ``relevant``."""
    items = items[:, :k]
    n_rows, n_items = relevant.shape
    n_relevant = np.diff(relevant.indptr)
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), n_relevant) * n_items + relevant.indices
    keys.sort()
    wanted = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + items
    where = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    hits = (items >= 0) & (keys[where] == wanted) if len(keys) else np.zeros(items.shape, bool)
    hits = hits.astype(np.float64)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_relevant, k)]
    n_hits = hits.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        return {
            "precision": n_hits / k,
            "recall": n_hits / n_relevant,
            "ndcg": hits @ discount / ideal,
            "map": (hits * precision_at).sum(axis=1) / np.minimum(n_relevant, k),
            "hit_rate": (n_hits > 0).astype(np.float64),
        }
