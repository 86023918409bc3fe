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
    ('_sgd_avx2', 'generated', 'adagrad'): '667f618bfbf592c6',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '667f618bfbf592c6',
    ('_sgd_avx2', 'generated', 'adaptive'): 'be8a3a39b37385e5',
    ('_sgd_avx2', 'generated', 'constant'): '58a8bb4a6aef1945',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'ad1b45166c2b8521',
    ('_sgd_avx2', 'generated', 'funk'): '31cdb71387152e19',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '2ad9ccf00a874492',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): 'b93221d38673294e',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '31b13a715622f24e',
    ('_sgd_avx2', 'generated', 'warm-start'): '0ca1cff01894e16a',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '7f124c61157b25f2',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '7f124c61157b25f2',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '5e96e3660df31373',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '0a67b6a5b2168ff8',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '04984c475a24a9bd',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'b6dce536bd9a494e',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '322597afa23e3aed',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'c59c1ca6fe92cdab',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '20b583678db213a2',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '04cab7ee65f17e9e',
    ('_sgd', 'generated', 'adagrad'): '4c3969b5e2134dea',
    ('_sgd', 'generated', 'adagrad-2-threads'): '4c3969b5e2134dea',
    ('_sgd', 'generated', 'adaptive'): '6707a1665da8c95e',
    ('_sgd', 'generated', 'constant'): 'bdbf693d83ad4b04',
    ('_sgd', 'generated', 'early-stopping'): 'bf2c97e15f50cdbe',
    ('_sgd', 'generated', 'funk'): '54dc5d1e00ff5853',
    ('_sgd', 'generated', 'funk-constant-early'): '6a18e9eaf3ee547c',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): 'f68a68e65277825b',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): 'cb3260de506dbcf3',
    ('_sgd', 'generated', 'warm-start'): '27534ecb803f1e85',
    ('_sgd', 'ml100k-u1', 'adagrad'): 'b656f96d17175699',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): 'b656f96d17175699',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'e42de27abe275b9c',
    ('_sgd', 'ml100k-u1', 'constant'): '6249bb280c24aeeb',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '6daba2a0c06904b3',
    ('_sgd', 'ml100k-u1', 'funk'): '8e22cd04f7258438',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'dd27945c987533ed',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '845fa2dc3aa220ce',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '7c4cb626fe23f715',
    ('_sgd', 'ml100k-u1', 'warm-start'): '1d6b7fe5b66ca5dd',
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
