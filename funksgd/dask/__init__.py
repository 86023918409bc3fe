"""Train funksgd's models on a Dask cluster (needs the ``dask`` extra: ``dask[distributed]``).

``import funksgd`` never imports Dask; ``import funksgd.dask`` does.
"""

try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "funksgd.dask needs Dask: pip install 'funksgd[dask]' (dask[distributed])."
    ) from error

from ._cell import train_cell
from ._estimator import DaskFunkSVD
from ._executors import WorkerLost

__all__ = ["DaskFunkSVD", "WorkerLost", "train_cell"]
