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
    ('_sgd_avx2', 'generated', 'adagrad'): '6303ab7c2f17f0a3',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '6303ab7c2f17f0a3',
    ('_sgd_avx2', 'generated', 'adaptive'): '5ec9ddcc16263b72',
    ('_sgd_avx2', 'generated', 'constant'): 'f89943fec414b463',
    ('_sgd_avx2', 'generated', 'early-stopping'): '49400ca8e8edf24b',
    ('_sgd_avx2', 'generated', 'funk'): '3f6cb41cfb4a2934',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '1fe7ce09e6abcb18',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): '7cdb65c061617450',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '5070cc488e3bb060',
    ('_sgd_avx2', 'generated', 'warm-start'): '65bc771ced6c9413',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '11a789e7577cbbb8',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '11a789e7577cbbb8',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '8a42fd8aeff3ba6e',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): 'e5767985beac8176',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '235b987863e23ae8',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '75ce454493827462',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '4b48c14d5129204f',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'fd382cdc1a11b351',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '52b3a71b33364d05',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '74984ebd693f2c7b',
    ('_sgd', 'generated', 'adagrad'): '14cb46d541bccb06',
    ('_sgd', 'generated', 'adagrad-2-threads'): '14cb46d541bccb06',
    ('_sgd', 'generated', 'adaptive'): 'd9c6cfe47b91ebb9',
    ('_sgd', 'generated', 'constant'): '7260e07584927274',
    ('_sgd', 'generated', 'early-stopping'): '9faf3e0eba7962bf',
    ('_sgd', 'generated', 'funk'): '5af58f57f22b3a1f',
    ('_sgd', 'generated', 'funk-constant-early'): '0421e3aa8e314307',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '21b3ab9e88aff937',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): 'd70a4021b6d7706a',
    ('_sgd', 'generated', 'warm-start'): '80911fdb98d2cd36',
    ('_sgd', 'ml100k-u1', 'adagrad'): 'faeb34e81f866df3',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): 'faeb34e81f866df3',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'c5b8280f3ddd5313',
    ('_sgd', 'ml100k-u1', 'constant'): '47ac2d90b6eb12b5',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '9a34240f22dce66a',
    ('_sgd', 'ml100k-u1', 'funk'): '8a3b806fa8e3c65a',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'f0a665740b2801eb',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'f9ac060f09868cd9',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '4c05dffbefb48bb5',
    ('_sgd', 'ml100k-u1', 'warm-start'): 'b956a841b9abc485',
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
