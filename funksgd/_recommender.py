"""Recommender: a fitted model used by the original user and item ids, with titles."""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._validation import check_ratings


class Recommendation(NamedTuple):
    """One recommended (or similar) item: its id, its score and its title (or None)."""

    item_id: object
    score: float
    title: str | None


class Recommender:
    """Recommendations and similar items by original ids, for a fitted model.

    Wraps a fitted :class:`~funksgd.FunkSVD`, the :class:`~funksgd.datasets.IdMapping`
    of its training matrix (as :func:`~funksgd.datasets.load_ratings` or
    :func:`~funksgd.datasets.ratings_to_csr` return it) and that matrix, whose rated
    items are left out of each user's recommendations.

    Parameters
    ----------
    model : FunkSVD
        Fitted on ``X``.
    mapping : IdMapping
        Ids of the rows and columns of ``X``.
    X : sparse matrix of shape (n_users, n_items)
        The training ratings.
    titles : dict, default=None
        Title of each item id (:func:`~funksgd.datasets.read_item_titles`).

    Examples
    --------
    >>> from funksgd import FunkSVD, Recommender
    >>> from funksgd.datasets import ratings_to_csr
    >>> users = ["ann", "ann", "bob", "bob", "cy", "cy", "cy"]
    >>> items = [10, 20, 10, 30, 20, 30, 40]
    >>> X, ids = ratings_to_csr(users, items, [5.0, 4.0, 5.0, 2.0, 4.0, 1.0, 5.0])
    >>> model = FunkSVD(n_components=2, random_state=0).fit(X)
    >>> rec = Recommender(model, ids, X, titles={10: "Alien", 20: "Brazil",
    ...                                          30: "Cats", 40: "Dune"})
    >>> [r.title for r in rec.recommend("ann", n=2)]  # ann rated Alien and Brazil
    ['Dune', 'Cats']
    >>> [r.item_id for r in rec.recommend_new({10: 5.0, 40: 4.0}, n=2)]
    [20, 30]
    """

    def __init__(self, model, mapping, X, *, titles=None):
        if model.item_factors_.shape[0] != mapping.shape[1]:
            raise ValueError(
                f"The model knows {model.item_factors_.shape[0]} items, the mapping "
                f"{mapping.shape[1]}: pass the mapping of the matrix the model was fitted on."
            )
        X = check_ratings(X, allow_empty=True)
        if X.shape != mapping.shape:
            raise ValueError(f"X has shape {X.shape}, the mapping {mapping.shape}.")
        self.model, self.mapping, self.X = model, mapping, X
        self.titles = titles

    def recommend(self, user_id, n=10, **options):
        """Top-``n`` items for a training user, its rated items left out.

        ``options`` go to :meth:`FunkSVD.recommend` (for example ``filter_items``).
        Returns a list of :class:`Recommendation`, best first.
        """
        user = self.mapping.user_index([user_id])
        items, scores = self.model.recommend(users=user, X=self.X[user], n=n, **options)
        return self._named(items[0], scores[0])

    def recommend_new(self, ratings, n=10, **options):
        """Top-``n`` items for a new user given as ``{item_id: rating}``, folded in.

        Items the mapping does not know are refused; the rated ones are left out.
        """
        if not ratings:
            raise ValueError("ratings is empty: give at least one {item_id: rating}.")
        columns = self.mapping.item_index(list(ratings))
        values = np.asarray(list(ratings.values()), dtype=np.float64)
        row = sp.csr_array(
            (values, (np.zeros(len(columns), dtype=np.int64), columns)),
            shape=(1, self.mapping.shape[1]),
        )
        items, scores = self.model.recommend(X=row, n=n, **options)
        return self._named(items[0], scores[0])

    def similar_items(self, item_id, n=10):
        """The ``n`` items most similar to ``item_id`` (cosine of the item factors)."""
        item = self.mapping.item_index([item_id])
        items, scores = self.model.similar_items(item, n=n)
        return self._named(items[0], scores[0])

    def similar_users(self, user_id, n=10):
        """Ids and cosine similarities of the ``n`` users most similar to ``user_id``."""
        user = self.mapping.user_index([user_id])
        users, scores = self.model.similar_users(user, n=n)
        keep = users[0] >= 0
        ids = self.mapping.user_id(users[0][keep]).tolist()
        return list(zip(ids, scores[0][keep].tolist(), strict=True))

    def _named(self, items, scores):
        keep = items >= 0
        ids = self.mapping.item_id(items[keep])
        titles = self.titles or {}
        return [
            Recommendation(item_id, float(score), titles.get(item_id))
            for item_id, score in zip(ids.tolist(), scores[keep].tolist(), strict=True)
        ]
