"""Ranking-time adjustments and similarity search on fitted factors (pure functions).

Why a popularity offset: the items a user goes on to rate are not missing at
random, they are chosen, and popular items far more often. Ranking by the
predicted rating alone answers "how much would the user like it if they rated
it", not "will the user rate it and like it". Ranking by
``predicted rating + weight * log(1 + n_i)``, with ``n_i`` the training count
of item ``i``, scores the log of a prior of being chosen (proportional to a
power of ``n_i``) next to the rating; ``weight`` converts between the two and is
learned from the training ratings alone: by ``fit`` on the ratings it holds out of its
epochs (``_tuning``), or by :func:`learn_popularity_weight` with a fit of its own.
The offset changes only the order of the lists, never the predicted ratings.
"""

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from threadpoolctl import ThreadpoolController

from . import metrics
from ._progress import progress_bar
from ._validation import check_n_jobs, item_counts, row_indices
from .model_selection import choose_per_row, split_by_mask

POPULARITY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
LEARN_HOLDOUT_FRACTION = 0.2
LEARN_SEED = 0


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
    if held.nnz == 0:
        raise ValueError(
            "No user of X has two ratings or more: nothing can be held out to learn the "
            "popularity weight."
        )
    model = clone(estimator).fit(known)
    relevant = metrics.relevant_items(held, float(known.data.mean()))
    factors = model.user_factors_, model.item_factors_, model.item_bias_
    n_threads = check_n_jobs(getattr(estimator, "n_jobs", None))
    values = ndcg_by_weight(*factors, known, relevant, item_counts(known), weights, k, n_threads)
    ndcg = dict(zip(weights, values, strict=True))
    best = max(weights, key=lambda w: (ndcg[w], -w))
    return best, ndcg


# items scored together when bounding which of them can reach a top-k list (see ndcg_by_weight)
GROUP_SIZE = 32
# bytes of base scores per batch of users (16 MiB: a fit's side job)
BATCH_BYTES = 1 << 24
# the ratings_metrics_at_k batches whose sums learn_popularity_weight reproduces
REFERENCE_BATCH_BYTES = 1 << 17


@cache
def _blas():
    """threadpoolctl's controller of the BLAS libraries loaded (NumPy's among them), found
    once: ``threadpool_limits`` looks for them at every call (2 ms, 16 ms the first)."""
    return ThreadpoolController()


def ndcg_by_weight(user_factors, item_factors, item_bias, known, relevant, counts, weights, k,
                   n_threads=1):  # fmt: skip
    """NDCG@k of the ranking ``W @ Q.T + item_bias + w * log(1 + counts)``, for each ``w``.

    The same numbers as :func:`funksgd.metrics.ranking_metrics_at_k` with the score
    function ``ranking_scores(W[users], Q, item_bias, popularity_offsets(counts, w))``,
    the items of ``known`` excluded and ``relevant`` the test items (ties in the score
    go to the lower item), at a small share of its cost: each user's base scores are
    computed once for all the weights, and only the items that can reach the top ``k``
    get a float64 score and a place in a sort. The items are grouped by count, so that
    in a group of ``GROUP_SIZE`` items the offsets span ``[lo, hi]``: the group's best
    base score ``m`` puts one item of the group at ``m + lo`` or above, and every item
    of the group at ``m + hi`` or below. The ``k``-th largest ``m + lo`` over ``4k``
    distinct groups of a user (the 2k most rated, the 2k best others) is a score
    that ``k`` items reach; groups whose ``m + hi`` falls below it are skipped. Float64
    sums round monotonically, so the bounds hold for the float64 scores exactly.

    Parameters
    ----------
    user_factors : ndarray of shape (n_users, n_components)
    item_factors : ndarray of shape (n_items, n_components)
    item_bias : ndarray of shape (n_items,)
    known : scipy.sparse.csr_array of shape (n_users, n_items)
        Training ratings, left out of each user's list.
    relevant : scipy.sparse.csr_array of shape (n_users, n_items)
        Relevant test items (see :func:`funksgd.metrics.relevant_items`).
    counts : ndarray of shape (n_items,)
        Training ratings per item.
    weights : sequence of float
        Popularity weights.
    k : int
        List length.
    n_threads : int, default=1
        Threads over batches of users; the result does not depend on it.

    Returns
    -------
    ndcg : list of float
        Mean NDCG@k over the users with a relevant item, one per weight.
    """
    n_items = item_factors.shape[0]
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    n_groups = -(-n_items // GROUP_SIZE)
    width = n_groups * GROUP_SIZE
    # column j * n_groups + g of the scores holds the j-th item of group g, the groups
    # taking the items by decreasing count: scores.reshape(-1, GROUP_SIZE, n_groups)
    # then has the groups' maxima along a contiguous axis. Padding: a zero factor row
    # and a -inf bias, which score -inf
    by_count = np.argsort(-np.asarray(counts), kind="stable")
    by_count = np.concatenate([by_count, np.full(width - n_items, n_items)])
    layout = by_count.reshape(n_groups, GROUP_SIZE).T.ravel()
    position = np.empty(n_items + 1, dtype=np.int64)
    position[layout] = np.arange(width)
    Q = np.vstack([item_factors, np.zeros((1, item_factors.shape[1]), item_factors.dtype)])
    Q = Q[layout]
    bias = np.append(item_bias, item_bias.dtype.type(-np.inf))[layout]
    item_of = layout.reshape(GROUP_SIZE, n_groups)
    offsets = [
        np.append(popularity_offsets(counts, w), 0.0)[item_of] for w in weights
    ]  # padding: offset 0, below any real item's
    # most rated groups first, the others by their best score: k distinct groups are
    # among these, whose items bound the k-th best score of any weight from below
    n_first = min(2 * k, n_groups)
    n_best = min(2 * k, n_groups - n_first)

    def run(batch):
        scores = user_factors[batch] @ Q.T
        scores += bias
        rated = known[batch]
        scores[row_indices(rated), position[rated.indices]] = -np.inf
        scores = scores.reshape(len(batch), GROUP_SIZE, n_groups)
        best = scores.max(axis=1).astype(np.float64)
        bounding = np.broadcast_to(np.arange(n_first), (len(batch), n_first))
        if n_best:
            others = np.argpartition(-best[:, n_first:], n_best - 1, axis=1)[:, :n_best]
            bounding = np.hstack([bounding, others + n_first])
        relevant_rows = relevant[batch]
        return [
            _ndcg_of_top_k(scores, best, bounding, offset, item_of, relevant_rows, k)
            for offset in offsets
        ]

    batch_size = max(1, BATCH_BYTES // (width * np.dtype(item_factors.dtype).itemsize))
    batches = [users[start : start + batch_size] for start in range(0, len(users), batch_size)]
    # BLAS threads woken by the products would spin on the cores the batches use
    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        per_batch = list(pool.map(run, batches) if n_threads > 1 else map(run, batches))
    # summed as ranking_metrics_at_k sums them, in its batches: the same float64 means
    reference_batch = max(1, REFERENCE_BATCH_BYTES // n_items)
    means = []
    for j in range(len(weights)):
        values = np.concatenate([result[j] for result in per_batch] + [np.zeros(0)])
        sums = [
            values[s : s + reference_batch].sum() for s in range(0, len(values), reference_batch)
        ]
        means.append(sum(float(total) for total in sums) / len(users) if len(users) else np.nan)
    return means


def _ndcg_of_top_k(scores, best, bounding, offset, item_of, relevant, k):
    """Per-user NDCG@k of one weight's lists, from the base ``scores`` in groups.

    ``scores[u, j, g]`` is the ``j``-th item of group ``g``, ``best`` the groups' maxima,
    ``offset[j, g]`` the items' popularity offsets, ``bounding`` distinct groups per user.
    """
    n_rows, _, n_groups = scores.shape
    # float64 sums round monotonically: exact bounds on the float64 scores
    lower = best + offset.min(axis=0)
    upper = best + offset.max(axis=0)
    reached = np.full(n_rows, -np.inf)
    if bounding.shape[1] >= k:  # k items score at least this
        reached = -np.partition(-np.take_along_axis(lower, bounding, axis=1), k - 1, axis=1)
        reached = reached[:, k - 1]
    rows, groups = np.nonzero(upper >= reached[:, None])
    candidates = scores[rows, :, groups].astype(np.float64) + offset[:, groups].T
    keep = (candidates >= reached[rows, None]) & (candidates > -np.inf)
    rows = np.broadcast_to(rows[:, None], keep.shape)[keep]
    values = candidates[keep]
    items = item_of[:, groups].T[keep]
    return per_user_metrics(_best_first(rows, values, items, n_rows, k), relevant, k)["ndcg"]


def _best_first(rows, values, items, n_rows, k):
    """The ``k`` best ``items`` of each row, by value then lower item; -1 pads.

    ``rows`` is sorted. The candidates of a row go to a dense row of slots, where a
    partition finds the ``k``-th best value; only the items at or above it are sorted.
    """
    n_candidates = np.bincount(rows, minlength=n_rows)
    slot = np.arange(len(rows)) - (np.cumsum(n_candidates) - n_candidates)[rows]
    if n_candidates.max(initial=0) > k:
        dense = np.full((n_rows, n_candidates.max()), -np.inf)
        dense[rows, slot] = values
        kth = -np.partition(-dense, k - 1, axis=1)[:, k - 1]
        taken = values >= kth[rows]
        rows, values, items = rows[taken], values[taken], items[taken]
    sort = np.lexsort((items, -values, rows))
    rows, items = rows[sort], items[sort]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    top = rank < k
    lists = np.full((n_rows, k), -1, dtype=np.int64)
    lists[rows[top], rank[top]] = items[top]
    return lists


def fitted_popularity(estimator, counts, extended, incremental):
    """``(weight, item counts)`` of the popularity offset for a model fitted on ratings
    with ``counts`` ratings per item.

    The weight is the estimator's ``popularity_weight``; None for ``"auto"``, which
    ``fit`` learns on ratings held out of training (``_tuning``). ``partial_fit`` adds
    the counts to those of the model it ``extended`` and keeps its weight; its first
    call (``incremental``) does not learn one: ``"auto"`` is 0 there, since learning
    needs held-out ratings.
    """
    if extended is not None:  # a model from a file or a cluster may have no counts
        before = 0 if extended.item_counts is None else extended.item_counts
        return extended.popularity_weight, before + counts
    weight = estimator.popularity_weight
    if weight != "auto":
        return float(weight), counts
    return (0.0 if incremental else None), counts


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
            # a sum per row, not hits @ discount: BLAS may round a row differently
            # depending on how many rows come with it
            "ndcg": (hits * discount).sum(axis=1) / ideal,
            "map": (hits * precision_at).sum(axis=1) / np.minimum(n_relevant, k),
            "hit_rate": (n_hits > 0).astype(np.float64),
        }
