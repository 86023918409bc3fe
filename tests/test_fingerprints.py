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
    ('_sgd_avx2', 'generated', 'adagrad'): '1c7c2941255f2f86',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '1c7c2941255f2f86',
    ('_sgd_avx2', 'generated', 'adaptive'): '6b96262b58ce1339',
    ('_sgd_avx2', 'generated', 'constant'): '4adc1f94e0557545',
    ('_sgd_avx2', 'generated', 'early-stopping'): '85147415c05a08ca',
    ('_sgd_avx2', 'generated', 'funk'): '5656a441df93464d',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '47c2aefd826d4cf0',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): 'e7b6e799477034bb',
    ('_sgd_avx2', 'generated', 'invscaling'): '0d49776905b01691',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'b3ae96d115a5934b',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '78b5a7c168ca44fb',
    ('_sgd_avx2', 'generated', 'warm-start'): '4ffcff31dff873cb',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '39a69aae4e2d52fc',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '39a69aae4e2d52fc',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'dced676388f18203',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): 'c75b12346caa14d4',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'df0e74c05a706f0c',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'dbc7dece4a18aa28',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '0f7db5c1aa3009f7',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '76303a6c8d9d96cc',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '807e4a3556c7dc8e',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): '07fed146bcdb87f1',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'edbdfebea787704b',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '637027a7ed6f122f',
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
