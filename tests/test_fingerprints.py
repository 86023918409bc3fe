"""Bit-for-bit fingerprints of fitted models, recorded on the commit a refactor starts from.

A refactor must leave every number unchanged; a change that alters the numerics on purpose
updates ``FINGERPRINTS`` in its own commit and says why. The fingerprints depend on the
kernel build (AVX2 or portable), so each build has its own.
"""

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, _kernels
from funksgd.datasets import make_ratings

from .conftest import load_ml100k_split

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FITTED = ["user_factors_", "item_factors_", "user_bias_", "item_bias_"]

CASES = {
    "adagrad": dict(),
    "constant": dict(learning_rate="constant", eta0=0.01),
    "invscaling": dict(learning_rate="invscaling", eta0=0.02),
    "adaptive": dict(learning_rate="adaptive", eta0=0.01, n_iter_no_change=2, tol=0.5),
    "adagrad-2-threads": dict(n_jobs=2),
    "early-stopping": dict(early_stopping=True, n_iter_no_change=2),
    "unbiased-float64": dict(biased=False, dtype="float64"),
    "funk": dict(algorithm="funk", n_components=4, max_iter=5),
    "funk-constant-early": dict(
        algorithm="funk",
        n_components=3,
        max_iter=5,
        learning_rate="constant",
        eta0=0.01,
        early_stopping=True,
    ),
    "warm-start": dict(warm_start=True),
    "partial-fit": dict(),
    "funk-partial-fit": dict(algorithm="funk", n_components=3),
}


def fingerprint(model):
    digest = hashlib.sha256()
    for name in FITTED:
        digest.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    digest.update(np.float64(model.global_mean_).tobytes())
    return digest.hexdigest()[:16]


def fit_case(name, X):
    model = FunkSVD(**{"n_components": 8, "max_iter": 6, "random_state": 0, **CASES[name]})
    if name == "warm-start":
        model.fit(X).set_params(max_iter=3).fit(X)
    elif name.endswith("partial-fit"):
        half = X.nnz // 2
        coo = X.tocoo()
        for part in (slice(None, half), slice(half, None)):
            chunk = (coo.data[part], (coo.row[part], coo.col[part]))
            model.partial_fit(sp.csr_array(chunk, shape=X.shape))
    else:
        model.fit(X)
    return fingerprint(model)


def generated():
    return make_ratings(n_users=400, n_items=150, n_ratings=12_000, random_state=3)


def movielens():
    users, items, ratings = load_ml100k_split("u1.base")
    return sp.csr_array((ratings, (users, items)), shape=(943, 1682))


# fmt: off
FINGERPRINTS = {
    ('_sgd_avx2', 'generated', 'adagrad'): 'ab024d15e701fe3d',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): 'ab024d15e701fe3d',
    ('_sgd_avx2', 'generated', 'adaptive'): 'c56dcbff5a690821',
    ('_sgd_avx2', 'generated', 'constant'): 'fd89db8acbfbcfdc',
    ('_sgd_avx2', 'generated', 'early-stopping'): '556511c3beaa5702',
    ('_sgd_avx2', 'generated', 'funk'): '9449f35220863e31',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '7583012d514df91b',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): '4a82952489905fb6',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '4abd126cefc95061',
    ('_sgd_avx2', 'generated', 'warm-start'): 'e3db613fbbdd4251',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '09a74512b7c5f20e',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '09a74512b7c5f20e',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'd3d579fc3560ee06',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '5959cbc6c4263d9f',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'ecc1cf6307467dd7',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'cb83a90d2df5b2b1',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '4b9ae13bd144c92a',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '36a90dcf90a949a4',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '1c1819e8ffacb75d',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): 'c15396489a2b3507',
    ('_sgd', 'generated', 'adagrad'): '7b87ab76fffcb3a1',
    ('_sgd', 'generated', 'adagrad-2-threads'): '7b87ab76fffcb3a1',
    ('_sgd', 'generated', 'adaptive'): '2c614492df95e392',
    ('_sgd', 'generated', 'constant'): 'b31989c6ce03a2a8',
    ('_sgd', 'generated', 'early-stopping'): '3bb09bd639c9fd2c',
    ('_sgd', 'generated', 'funk'): '06693e513b95b268',
    ('_sgd', 'generated', 'funk-constant-early'): '6cd7a9ac70e92196',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '0b9a431b26983a44',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '5874a46fcc8bc8ad',
    ('_sgd', 'generated', 'warm-start'): 'be3f07a86cdd0e3c',
    ('_sgd', 'ml100k-u1', 'adagrad'): 'bb405785646de6c5',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): 'bb405785646de6c5',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'c00aa0cc7a63b87b',
    ('_sgd', 'ml100k-u1', 'constant'): '4ea01571cda3325f',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'c270c5086f520bb1',
    ('_sgd', 'ml100k-u1', 'funk'): '8d51d537afeabf61',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '5ea0c5f9443e8e4a',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '2765429805b4beb5',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): 'd8793a8f8d679d97',
    ('_sgd', 'ml100k-u1', 'warm-start'): '5ffd33a5ab15431e',
}
# fmt: on


@pytest.mark.parametrize("data", ["generated", "ml100k-u1"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fingerprint_unchanged(data, case):
    X = generated() if data == "generated" else movielens()
    key = (_kernels.sgd.__name__.rsplit(".", 1)[-1], data, case)
    if key not in FINGERPRINTS:
        pytest.fail(f"no fingerprint recorded for {key}: {fit_case(case, X)}")
    assert fit_case(case, X) == FINGERPRINTS[key]


def record():
    """Print ``FINGERPRINTS`` entries for this machine's kernel (on the reference commit):
    ``FUNKSGD_KERNEL=generic python -c "from tests.test_fingerprints import record; record()"``.
    """
    kernel = _kernels.sgd.__name__.rsplit(".", 1)[-1]
    for data in ("generated", "ml100k-u1"):
        X = generated() if data == "generated" else movielens()
        for case in sorted(CASES):
            print(f"    {(kernel, data, case)!r}: {fit_case(case, X)!r},")
