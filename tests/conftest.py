"""Shared fixtures: generated ratings, and MovieLens-100k when it lies beside the checkout.

In CI (``CI=true`` in the environment) a skipped test is a failure: MovieLens-100k
missing, a build without OpenMP (the thread-invariance tests), an optional test
dependency missing (tqdm, pandas) must not leave CI green without those tests.
"""

import os

# scikit-learn's check_array_api_input (tests/test_common.py) skips unless SciPy was imported
# with its array API support switched on, which is read once, at SciPy's import: set it first.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from funksgd import _kernels  # noqa: E402

# the builds of the compiled loops this machine runs: portable, and AVX2 where available
KERNELS = [_kernels.generic]
if _kernels.avx2 is not None and _kernels.generic.cpu_has_avx2_fma():
    KERNELS.append(_kernels.avx2)
each_kernel = pytest.mark.parametrize("kernel", KERNELS, ids=lambda kernel: kernel.__name__)

ML100K = Path(
    os.environ.get(
        "FUNKSGD_ML100K_DIR", Path(__file__).resolve().parents[1].parent / "shared/data/ml-100k"
    )
)


IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def default_sigint():
    """A ``preexec_fn`` for a child that must see Ctrl-C: a shell starts its background
    jobs with SIGINT ignored, children inherit that, and Python then leaves it ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def skip_or_fail_in_ci(reason):
    """``pytest.skip(reason)``, or in CI a failure with that reason."""
    if IN_CI:
        pytest.fail(f"CI=true: this test must not be skipped: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, report every skip (a skipif mark, importorskip, pytest.skip) as a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI=true: this test must not be skipped: {reason}"


def load_ml100k_split(name):
    """(users, items, ratings) of MovieLens-100k file ``name``, 0-based ids; skip if absent
    (fail in CI)."""
    path = ML100K / name
    if not path.exists():
        skip_or_fail_in_ci(f"MovieLens-100k not found at {ML100K} (set FUNKSGD_ML100K_DIR)")
    a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
    return a[:, 0] - 1, a[:, 1] - 1, a[:, 2].astype(np.float64)


@pytest.fixture(scope="session")
def ml100k_u1():
    """u1.base as a 943 x 1682 CSR matrix, and u1.test as (users, items, ratings)."""
    u, i, r = load_ml100k_split("u1.base")
    X = sp.csr_array((r, (u, i)), shape=(943, 1682))
    return X, load_ml100k_split("u1.test")


def planted_ratings(n_users=300, n_items=200, rank=5, density=0.3, noise=0.1, seed=0):
    """A noisy rank-``rank`` matrix observed at random entries: (X_full_true, X_observed csr)."""
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 1, (n_users, rank))
    Q = rng.normal(0, 1, (n_items, rank))
    truth = 3.0 + P @ Q.T / np.sqrt(rank)
    mask = rng.random((n_users, n_items)) < density
    rows, cols = np.nonzero(mask)
    values = truth[rows, cols] + rng.normal(0, noise, len(rows))
    return truth, sp.csr_array((values, (rows, cols)), shape=(n_users, n_items))
