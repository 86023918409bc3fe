"""Ratings in: file readers, id mappings, and a generator of realistic synthetic ratings."""

from ._generator import make_ratings
from ._mapping import IdMapping, ratings_to_csr
from ._readers import FORMATS, load_ratings, read_ratings
from ._titles import read_item_titles

__all__ = [
    "FORMATS",
    "IdMapping",
    "load_ratings",
    "make_ratings",
    "ratings_to_csr",
    "read_item_titles",
    "read_ratings",
]
