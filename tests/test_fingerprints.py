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
    ('_sgd_avx2', 'generated', 'adagrad'): '56c71c7c3b30d0db',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '56c71c7c3b30d0db',
    ('_sgd_avx2', 'generated', 'adaptive'): '4daa9d11cd6b20e1',
    ('_sgd_avx2', 'generated', 'constant'): 'aa40ec0474a19fc1',
    ('_sgd_avx2', 'generated', 'early-stopping'): '4034adc3e9350f35',
    ('_sgd_avx2', 'generated', 'funk'): 'cc8e760edf53d433',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '5ed9ac59d90029e7',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): 'eff5ddc1a0632410',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): 'c2082cd6220ed613',
    ('_sgd_avx2', 'generated', 'warm-start'): '28cd52d34d5d3566',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '55ec2cf7f034b290',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '55ec2cf7f034b290',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '1a060216df03a961',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '8604c02684439b18',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '1df1ecb90a56a9d7',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '24787e42ee4d7c97',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'd2df63838c1fc27c',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '1774efdc7bd1e685',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'f88b1653f8fa3396',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): 'a13935b5e58190d5',
    ('_sgd', 'generated', 'adagrad'): '6480f82015893039',
    ('_sgd', 'generated', 'adagrad-2-threads'): '6480f82015893039',
    ('_sgd', 'generated', 'adaptive'): 'fcd3c832e613e6dd',
    ('_sgd', 'generated', 'constant'): '27be821ee628d132',
    ('_sgd', 'generated', 'early-stopping'): '405cf5c5888aa4c4',
    ('_sgd', 'generated', 'funk'): 'fabfc273a507e677',
    ('_sgd', 'generated', 'funk-constant-early'): 'c16e83e148a321f2',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '44e2ae2e36034797',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '40cf7683f89e8f48',
    ('_sgd', 'generated', 'warm-start'): 'd3f3aa030f24cf1a',
    ('_sgd', 'ml100k-u1', 'adagrad'): '22052337c7b00151',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '22052337c7b00151',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'f4ce0761ab1217ba',
    ('_sgd', 'ml100k-u1', 'constant'): '443620bdf41681b5',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'ca6362bf7f8ec252',
    ('_sgd', 'ml100k-u1', 'funk'): '3802706fa9e1ce1a',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '03452f75d2a50990',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '5e34f7710e8affc9',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '499d2000e97092e4',
    ('_sgd', 'ml100k-u1', 'warm-start'): 'f1a1e741b0fcdd20',
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
