"""funksgd: Funk-SVD / biased matrix factorization by SGD, as a scikit-learn estimator."""

from . import metrics
from ._baseline import BaselineOnly
from ._engine import EpochInfo
from ._funk_svd import FunkSVD
from ._recommender import Recommendation, Recommender
from .model_selection import KFoldRatings, cross_validate_ratings, train_test_split_ratings

__version__ = "0.1.0"
__all__ = [
    "BaselineOnly",
    "EpochInfo",
    "FunkSVD",
    "KFoldRatings",
    "Recommendation",
    "Recommender",
    "cross_validate_ratings",
    "metrics",
    "train_test_split_ratings",
    "__version__",
]
