"""Doctests of funksgd.dask run only where the ``dask`` extra is installed."""

import importlib.util

_MISSING = [
    name for name in ("dask", "distributed", "pyarrow") if importlib.util.find_spec(name) is None
]
collect_ignore_glob = ["*.py"] if _MISSING else []
