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
    ('_sgd_avx2', 'generated', 'adagrad'): 'd26cf0d5e4802d85',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): 'd26cf0d5e4802d85',
    ('_sgd_avx2', 'generated', 'adaptive'): '7b966bddef0301de',
    ('_sgd_avx2', 'generated', 'constant'): 'f783c599d485841d',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'f7ddf0ddee474538',
    ('_sgd_avx2', 'generated', 'funk'): 'e7b32f3b575f4b24',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '0bee1fb5c57bf35f',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): 'e7b6e799477034bb',
    ('_sgd_avx2', 'generated', 'invscaling'): 'e12f547cfe7383b8',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'b3ae96d115a5934b',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '78b5a7c168ca44fb',
    ('_sgd_avx2', 'generated', 'warm-start'): '9bd4d0021a8870ed',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): 'e9e90a67ea2115fc',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): 'e9e90a67ea2115fc',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '06ad89873e4e8e00',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '77207b97626d8e23',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'a90b2e6cceb18e05',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'ea0ad243caeacbe2',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'ab698d0709105ee2',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '76303a6c8d9d96cc',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '3cf9e0603f9f539d',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): '07fed146bcdb87f1',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'edbdfebea787704b',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '0a92d81e0c4c11d0',
    ('_sgd', 'generated', 'adagrad'): 'ab7f23a2b2755e80',
    ('_sgd', 'generated', 'adagrad-2-threads'): 'ab7f23a2b2755e80',
    ('_sgd', 'generated', 'adaptive'): 'bdbae1742b84e088',
    ('_sgd', 'generated', 'constant'): 'e5a12e7a577899f5',
    ('_sgd', 'generated', 'early-stopping'): '2e9ebf7fdce0ce69',
    ('_sgd', 'generated', 'funk'): 'f1ac48e21094e6d7',
    ('_sgd', 'generated', 'funk-constant-early'): 'a093a7189b56c272',
    ('_sgd', 'generated', 'funk-partial-fit'): 'b9a0ff28ddd00e4a',
    ('_sgd', 'generated', 'invscaling'): '6394cdb976207a19',
    ('_sgd', 'generated', 'partial-fit'): '0fd5cc05d28bf5d1',
    ('_sgd', 'generated', 'unbiased-float64'): '7c8989e6a7244dff',
    ('_sgd', 'generated', 'warm-start'): 'c48e23916db4b398',
    ('_sgd', 'ml100k-u1', 'adagrad'): '55d87ccbf9e49792',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '55d87ccbf9e49792',
    ('_sgd', 'ml100k-u1', 'adaptive'): '4f86787e0f8d0df8',
    ('_sgd', 'ml100k-u1', 'constant'): '8c141eb955c94ded',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '0e9dc9c9db481487',
    ('_sgd', 'ml100k-u1', 'funk'): '6d7d3485d6d42474',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'f30b1709f90dd21c',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '3d5b0f701b45ea0e',
    ('_sgd', 'ml100k-u1', 'invscaling'): '255ddff801ed7215',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '596fbf67565afdc7',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): 'c5f637ae56913b6d',
    ('_sgd', 'ml100k-u1', 'warm-start'): '21dcb667354628cd',
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
