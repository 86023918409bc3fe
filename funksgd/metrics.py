"""Rating and top-N ranking metrics, and scorers for model selection.

Rating metrics (:func:`rmse`, :func:`mae`) compare predicted with true ratings.
Ranking metrics compare top-``k`` lists with the items each user found
relevant. Every ranking metric here uses binary relevance and averages over
the users that have at least one relevant item; with ``k`` the list length,
``rel(u)`` the relevant items of user ``u`` and ``hit(u, j)`` 1 when the
item at position ``j`` (0-based) of the list of ``u`` is relevant, else 0:

- precision@k = ``sum_j hit(u, j) / k``
- recall@k = ``sum_j hit(u, j) / |rel(u)|``
- NDCG@k = ``DCG / IDCG`` with ``DCG = sum_j hit(u, j) / log2(j + 2)`` and the
  ideal ``IDCG = sum_{j < min(k, |rel(u)|)} 1 / log2(j + 2)``
- MAP@k = ``sum_j hit(u, j) * precision@(j + 1) / min(k, |rel(u)|)``
- hit rate@k = 1 if any ``hit(u, j)``, else 0

Padding (item ``-1``, as :meth:`funksgd.FunkSVD.recommend` returns when a user
has fewer than ``k`` candidate items) counts as a miss. Catalogue coverage is
the share of all items that appear in at least one list.
"""

import re
import textwrap
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from . import _ranking
from ._inference import SCORE_HOLDOUT_FRACTION, SCORE_SEED, best_columns
from ._validation import check_ratings
from .model_selection import choose_per_row, split_by_mask

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


# The Parameters and Returns sections and the Examples heading of the metrics of one kind:
# ``%(list metric)s`` in a docstring stands for them (filled in by ``_shared_sections``).
_SHARED_SECTIONS = {
    "pair metric": """\
Parameters
----------
y_true : array-like of shape (n_ratings,)
    True ratings.
y_pred : array-like of shape (n_ratings,)
    Predicted ratings.

Returns
-------
{name} : float

Examples
--------""",
    "list metric": """\
Parameters
----------
recommended : array-like of int of shape (n_users, n_recommended)
    Item indices per user, best first; ``-1`` pads short lists. Only the
    first ``k`` columns are used.
relevant : sparse matrix of shape (n_users, n_items) or sequence of sequences of int
    The relevant items of each user: the stored nonzero entries of a
    sparse matrix (row ``u`` for user ``u``), or one sequence of item
    indices per user.
k : int, default=10
    List length; a padded list still counts as ``k`` long (precision's
    denominator).

Returns
-------
{name} : float
    The mean over the users with a relevant item; NaN when no user has one.

Examples
--------""",
}


def _shared_sections(metric):
    """Write the sections that ``metric`` shares with its kind into its docstring."""
    if metric.__doc__ is not None:  # None under python -OO
        name = metric.__name__.removesuffix("_at_k")
        fill = lambda m: textwrap.indent(_SHARED_SECTIONS[m[2]].format(name=name), m[1])  # noqa: E731
        metric.__doc__ = re.sub(r"^( *)%\((.+)\)s$", fill, metric.__doc__, flags=re.M)
    return metric


@_shared_sections
def rmse(y_true, y_pred):
    """Root mean squared error of predicted ratings.

    %(pair metric)s
    The errors are 0, 0 and 2: ``sqrt((0 + 0 + 4) / 3)``.

    >>> from funksgd.metrics import rmse
    >>> rmse([1, 2, 3], [1, 2, 5])
    1.1547005383792515
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


@_shared_sections
def mae(y_true, y_pred):
    """Mean absolute error of predicted ratings.

    %(pair metric)s
    The errors are 0, 0 and 2: ``(0 + 0 + 2) / 3``.

    >>> from funksgd.metrics import mae
    >>> mae([1, 2, 3], [1, 2, 5])
    0.6666666666666666
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_pred - y_true)))


@_shared_sections
def precision_at_k(recommended, relevant, k=10):
    """Mean precision@k over the users with a relevant item.

    %(list metric)s
    Two hits in the first list of three, none in the second: ``(2/3 + 0/3) / 2``.

    >>> from funksgd.metrics import precision_at_k
    >>> precision_at_k([[3, 1, 2], [0, 5, -1]], [[1, 2], [4]], k=3)
    0.3333333333333333
    """
    return _mean_metric("precision", recommended, relevant, k)


@_shared_sections
def recall_at_k(recommended, relevant, k=10):
    """Mean recall@k (hits over the number of relevant items) over users with one.

    %(list metric)s
    Two of the first user's four relevant items found, none of the second's
    one: ``(2/4 + 0/1) / 2``.

    >>> from funksgd.metrics import recall_at_k
    >>> recall_at_k([[3, 1, 2], [0, 5, -1]], [[1, 2, 7, 8], [4]], k=3)
    0.25
    """
    return _mean_metric("recall", recommended, relevant, k)


@_shared_sections
def ndcg_at_k(recommended, relevant, k=10):
    """Mean NDCG@k with binary relevance and a log2 discount, over users with a relevant item.

    ``DCG = sum_j hit(u, j) / log2(j + 2)`` over positions ``j < k``, divided by
    the DCG of an ideal list, which puts ``min(k, |rel(u)|)`` relevant items first.

    %(list metric)s
    One hit at the second place of three, with two relevant items:
    ``(1 / log2(3)) / (1 + 1 / log2(3))``.

    >>> from funksgd.metrics import ndcg_at_k
    >>> round(ndcg_at_k([[3, 1, 0]], [[1, 2]], k=3), 6)
    0.386853
    """
    return _mean_metric("ndcg", recommended, relevant, k)


@_shared_sections
def map_at_k(recommended, relevant, k=10):
    """Mean average precision@k, normalised by ``min(k, |rel(u)|)``, over users with one.

    %(list metric)s
    Hits at places 1 and 3 of three, two relevant items: ``(1/1 + 2/3) / 2``.

    >>> from funksgd.metrics import map_at_k
    >>> map_at_k([[1, 0, 2]], [[1, 2]], k=3)
    0.8333333333333333
    """
    return _mean_metric("map", recommended, relevant, k)


@_shared_sections
def hit_rate_at_k(recommended, relevant, k=10):
    """Share of the users with a relevant item that get at least one in their top ``k``.

    %(list metric)s
    Only the first of three users finds a relevant item in their top 2.

    >>> from funksgd.metrics import hit_rate_at_k
    >>> hit_rate_at_k([[3, 1], [0, 5], [2, 4]], [[1], [4], [7]], k=2)
    0.3333333333333333
    """
    return _mean_metric("hit_rate", recommended, relevant, k)


def coverage(recommended, n_items):
    """Catalogue coverage: the share of the ``n_items`` items recommended to anyone.

    Parameters
    ----------
    recommended : array-like of int of shape (n_users, n_recommended)
        Item indices per user; ``-1`` (padding) is ignored.
    n_items : int
        Size of the catalogue.

    Returns
    -------
    coverage : float
        In [0, 1].

    Examples
    --------
    >>> from funksgd.metrics import coverage
    >>> coverage([[0, 1], [1, -1]], n_items=4)
    0.5
    """
    n_items = _check_positive_int(n_items, "n_items")
    recommended = _check_recommended(recommended, n_items)
    seen = np.zeros(n_items, dtype=bool)
    seen[recommended[recommended >= 0]] = True
    return float(seen.mean())


def ranking_metrics_at_k(
    model,
    X_train,
    X_test,
    k=10,
    relevance_threshold=None,
    *,
    exclude_train=True,
    batch_size=None,
    n_jobs=None,
    show_progress=None,
):
    """Top-``k`` ranking metrics of a recommender on held-out ratings.

    For each user with at least one relevant test rating, a list of ``k``
    items is asked of ``model``, leaving out the user's training items, and
    compared with the user's relevant test items (see the module docstring
    for the definition of each metric). A test rating is relevant when it is
    at least ``relevance_threshold`` (every test rating when None). Users are
    taken in batches, so memory stays bounded whatever the number of users.

    Parameters
    ----------
    model : object with ``recommend`` or callable
        Either a fitted model with ``recommend(users=..., X=..., n=...)``
        returning ``(items, scores)`` with ``-1`` padding, as
        :meth:`funksgd.FunkSVD.recommend` (``users`` are rows of
        ``X_train``, ``X`` their training ratings to exclude); or a function
        ``scores(users)`` returning an array of shape ``(len(users), n_items)``
        (higher is better), for example ``lambda users: counts[None, :]`` for
        the popularity baseline, broadcast to every user.
    X_train : {array-like, sparse matrix} of shape (n_users, n_items)
        Training ratings: the items to exclude from each user's list.
    X_test : {array-like, sparse matrix} of shape (n_users, n_items)
        Held-out ratings of the same users and items.
    k : int, default=10
        List length.
    relevance_threshold : float, default=None
        Test ratings at or above it are relevant; None makes every test rating
        relevant.
    exclude_train : bool, default=True
        Leave each user's training items out of their list.
    batch_size : int, default=None
        Users per batch; None picks one that keeps a batch's score matrix
        near 32 MiB.
    n_jobs : int, default=None
        Threads over batches (NumPy releases the GIL in the heavy parts); None
        means 1, -1 all CPUs.
    show_progress : bool, default=None
        A tqdm progress bar over batches (when tqdm is installed); None shows
        one when there are more than 100 batches.

    Returns
    -------
    metrics : dict
        ``precision``, ``recall``, ``ndcg``, ``map``, ``hit_rate`` (means over
        the evaluated users), ``coverage`` (of the catalogue, by the lists of
        those users) and ``n_users`` (how many were evaluated).

    Examples
    --------
    >>> from funksgd import FunkSVD, train_test_split_ratings
    >>> from funksgd.datasets import make_ratings
    >>> from funksgd.metrics import ranking_metrics_at_k
    >>> X = make_ratings(n_users=200, n_items=100, n_ratings=5000, random_state=0)
    >>> X_train, X_test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    >>> model = FunkSVD(n_components=10, random_state=0).fit(X_train)
    >>> result = ranking_metrics_at_k(model, X_train, X_test, k=10, relevance_threshold=4)
    >>> sorted(result)
    ['coverage', 'hit_rate', 'map', 'n_users', 'ndcg', 'precision', 'recall']
    >>> 0 <= result["ndcg"] <= 1
    True
    """
    X_train = check_ratings(X_train, allow_empty=True)
    X_test = check_ratings(X_test, allow_empty=True)
    if X_train.shape != X_test.shape:
        raise ValueError(
            f"X_train has shape {X_train.shape} but X_test has {X_test.shape}: both must "
            "hold ratings of the same users and items."
        )
    k = _check_positive_int(k, "k")
    relevant = relevant_items(X_test, relevance_threshold)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    top_k = _ranking.top_k_function(model, X_train, k, exclude_train)
    return _ranking.evaluate(top_k, users, relevant, k, batch_size, n_jobs, show_progress)


def relevant_items(X, relevance_threshold=None):
    """The relevant entries of ratings ``X``, as a CSR matrix of ones.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Ratings.
    relevance_threshold : float, default=None
        Ratings at or above it are relevant; None makes every rating relevant.

    Returns
    -------
    relevant : scipy.sparse.csr_array of shape (n_users, n_items)
        1.0 where relevant, sorted indices.

    Examples
    --------
    >>> import numpy as np
    >>> from funksgd.metrics import relevant_items
    >>> relevant_items(np.array([[5.0, np.nan, 2.0]]), 4).toarray()
    array([[1., 0., 0.]])
    """
    X = check_ratings(X, allow_empty=True)
    if relevance_threshold is None:
        keep = np.ones(X.nnz, dtype=bool)
    else:
        if isinstance(relevance_threshold, bool) or not isinstance(relevance_threshold, Real):
            raise TypeError(
                f"relevance_threshold must be a number or None, got {relevance_threshold!r}."
            )
        if not np.isfinite(relevance_threshold):
            raise ValueError(f"relevance_threshold must be finite, got {relevance_threshold}.")
        keep = X.data >= relevance_threshold
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    out = sp.csr_array((np.ones(int(keep.sum())), (rows[keep], X.indices[keep])), shape=X.shape)
    out.sort_indices()
    return out


def make_ranking_scorer(
    metric="ndcg",
    k=10,
    relevance_threshold=None,
    *,
    holdout_fraction=SCORE_HOLDOUT_FRACTION,
    random_state=SCORE_SEED,
):
    """A scorer ``scorer(estimator, X, y=None)`` for ``GridSearchCV(scoring=...)``.

    ``GridSearchCV`` splits the *rows* of ``X`` (users), so the scored rows are
    users the estimator did not train on (strong generalisation), as in
    :meth:`funksgd.FunkSVD.score`. The scorer therefore holds out, in each
    row of ``X`` with at least two ratings, a random ``holdout_fraction`` (at
    least one) of its ratings, seeded by ``random_state`` so that every
    candidate of a search is scored on the same split; it asks
    ``estimator.recommend(X=known, n=k)`` for the remaining (known) ratings,
    which folds the rows in and excludes their known items, and scores the
    lists against the held-out ratings with :func:`ranking_metrics_at_k`.

    Parameters
    ----------
    metric : {"ndcg", "precision", "recall", "map", "hit_rate"}, default="ndcg"
        Which metric the scorer returns (higher is better).
    k : int, default=10
        List length.
    relevance_threshold : float, default=None
        Held-out ratings at or above it are relevant; None makes all relevant.
    holdout_fraction : float, default=0.2
        Share of each row's ratings held out.
    random_state : int, default=0
        Seeds the within-row split.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from funksgd import FunkSVD
    >>> from funksgd.datasets import make_ratings
    >>> from funksgd.metrics import make_ranking_scorer
    >>> X = make_ratings(n_users=300, n_items=100, n_ratings=9000, random_state=0)
    >>> search = GridSearchCV(
    ...     FunkSVD(random_state=0), {"n_components": [5, 20]}, cv=3,
    ...     scoring=make_ranking_scorer("ndcg", k=10, relevance_threshold=4),
    ... ).fit(X)
    >>> search.best_params_["n_components"] in (5, 20)
    True
    """
    if metric not in RANKING_METRICS:
        raise ValueError(f"metric must be one of {RANKING_METRICS}, got {metric!r}.")
    k = _check_positive_int(k, "k")
    if not isinstance(holdout_fraction, Real) or not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction!r}.")
    relevant_items(np.zeros((1, 1)), relevance_threshold)  # checks the threshold now

    def scorer(estimator, X, y=None):
        X = check_ratings(X)
        rng = np.random.RandomState(random_state)
        known, held = split_by_mask(X, choose_per_row(X, holdout_fraction, rng))
        relevant = relevant_items(held, relevance_threshold)
        rows = np.flatnonzero(np.diff(relevant.indptr) > 0)
        if len(rows) == 0:
            raise ValueError("The scored rows of X hold no relevant held-out rating.")
        top_k = lambda batch: estimator.recommend(X=known[batch], n=k)[0]  # noqa: E731
        return _ranking.evaluate(top_k, rows, relevant, k, None, None, False)[metric]

    scorer.__name__ = f"{metric}_at_{k}_scorer"
    return scorer


def ndcg_scorer(estimator, X, y=None):
    """NDCG@10 of ``estimator`` on rows ``X``, every held-out rating relevant.

    The scorer of ``make_ranking_scorer("ndcg", k=10)``: see
    :func:`make_ranking_scorer` for the within-row protocol.
    """
    return _NDCG_SCORER(estimator, X, y)


def top_k_items(scores, k):
    """The ``k`` highest-scoring columns of each row, best first; ``-1`` where not finite.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_items)
        Scores; ``-inf`` (or NaN) marks an item that must not be recommended.
    k : int
        Items per row.

    Returns
    -------
    items : ndarray of shape (n_rows, k), dtype int64
        Column indices; ties keep the lower index first.

    Examples
    --------
    >>> import numpy as np
    >>> from funksgd.metrics import top_k_items
    >>> top_k_items(np.array([[0.1, 0.9, -np.inf, 0.5]]), 3)
    array([[1, 3, 0]])
    >>> top_k_items(np.array([[0.1, -np.inf]]), 3)
    array([[ 0, -1, -1]])
    """
    scores = np.where(np.isnan(scores), -np.inf, scores)
    take = min(k, scores.shape[1])
    best, best_scores = best_columns(scores, take)
    items = np.full((len(scores), k), -1, dtype=np.int64)
    items[:, :take] = np.where(np.isfinite(best_scores), best, -1)
    return items


def _mean_metric(name, recommended, relevant, k):
    k = _check_positive_int(k, "k")
    relevant = _relevant_matrix(relevant, recommended)
    recommended = _check_recommended(recommended, relevant.shape[1], relevant.shape[0])
    if recommended.shape[1] < k:
        pad = np.full((len(recommended), k - recommended.shape[1]), -1, dtype=np.int64)
        recommended = np.hstack([recommended, pad])
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) == 0:
        return float("nan")
    return float(_ranking.per_user_metrics(recommended[users], relevant[users], k)[name].mean())


def _relevant_matrix(relevant, recommended):
    """CSR ones of shape (n_users, n_items) from a sparse matrix or per-user index lists."""
    if sp.issparse(relevant):
        relevant = sp.csr_array(relevant)
        relevant = sp.csr_array(
            (np.ones(relevant.nnz), relevant.indices, relevant.indptr), shape=relevant.shape
        )
        relevant.eliminate_zeros()
        relevant.sum_duplicates()
        return relevant
    lists = [np.unique(np.asarray(row, dtype=np.int64)) for row in relevant]
    if any(row.size and row[0] < 0 for row in lists):
        raise ValueError("relevant item indices must be non-negative.")
    largest = max([row[-1] for row in lists if row.size], default=-1)
    n_items = max(largest, int(np.max(recommended, initial=-1))) + 1
    indptr = np.concatenate([[0], np.cumsum([len(row) for row in lists])])
    indices = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return sp.csr_array(
        (np.ones(len(indices)), indices, indptr), shape=(len(lists), max(n_items, 1))
    )


def _check_recommended(recommended, n_items, n_users=None, k=None):
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(
            f"The recommended items must be a 2-D array (users x positions), got shape "
            f"{recommended.shape}."
        )
    if recommended.dtype.kind not in "iu":
        raise TypeError(f"The recommended items must be integers, got dtype {recommended.dtype}.")
    if n_users is not None and len(recommended) != n_users:
        raise ValueError(f"Got lists for {len(recommended)} users, expected {n_users}.")
    if k is not None and recommended.shape[1] < k:
        raise ValueError(f"Got lists of {recommended.shape[1]} items, expected k={k}.")
    bad = (recommended < -1) | (recommended >= n_items)
    if bad.any():
        raise ValueError(
            f"Recommended item {recommended[bad][0]} is out of range: items are 0.."
            f"{n_items - 1} (-1 for padding)."
        )
    return recommended.astype(np.int64, copy=False)


def _check_pair(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}."
        )
    if y_true.size == 0:
        raise ValueError("y_true and y_pred are empty.")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("y_true and y_pred must be finite (no NaN or infinity).")
    return y_true, y_pred


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


_NDCG_SCORER = make_ranking_scorer("ndcg", k=10)
