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
    ('_sgd_avx2', 'generated', 'adagrad'): '6ae0e96aa44149f4',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '6ae0e96aa44149f4',
    ('_sgd_avx2', 'generated', 'adaptive'): '2ff941f8027d5186',
    ('_sgd_avx2', 'generated', 'constant'): '6b269d698692995d',
    ('_sgd_avx2', 'generated', 'early-stopping'): '4132c4d5681de537',
    ('_sgd_avx2', 'generated', 'funk'): '9b4cd7fcb605f0ae',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '91f4fc37718181df',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '351ffd0db1aedc78',
    ('_sgd_avx2', 'generated', 'invscaling'): 'bcd0555cfc552358',
    ('_sgd_avx2', 'generated', 'partial-fit'): '622ccb8c4cc81459',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '1eb499a1b6fa203d',
    ('_sgd_avx2', 'generated', 'warm-start'): '7fb849e9d1dd293d',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '2e230c2413bea96d',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '2e230c2413bea96d',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '403959c537a56c6b',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): 'f6572ac9d8ba5277',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '02c1bf27d2cf910b',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '369deef71bec1a8d',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '2439847ee98e9081',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '871c5b0110f13a5e',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '7438001bc9f64985',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): '7b8ed08ca0aa3c95',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '29b08af56a1ecd31',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '2dc10753115ea1b4',
    ('_sgd', 'generated', 'adagrad'): 'b2751f1868540a90',
    ('_sgd', 'generated', 'adagrad-2-threads'): 'b2751f1868540a90',
    ('_sgd', 'generated', 'adaptive'): '17f535b3d835ec18',
    ('_sgd', 'generated', 'constant'): '082a8991b200f6ac',
    ('_sgd', 'generated', 'early-stopping'): '323254ae199edad4',
    ('_sgd', 'generated', 'funk'): 'da1b0d698a7ecff9',
    ('_sgd', 'generated', 'funk-constant-early'): '94480fae8d763ee2',
    ('_sgd', 'generated', 'funk-partial-fit'): 'd2749adfdf882c62',
    ('_sgd', 'generated', 'invscaling'): '55a367229ba1340e',
    ('_sgd', 'generated', 'partial-fit'): '7c4c0a43157080a7',
    ('_sgd', 'generated', 'unbiased-float64'): '1a7657b50263d960',
    ('_sgd', 'generated', 'warm-start'): 'a85c1c7e68b498b7',
    ('_sgd', 'ml100k-u1', 'adagrad'): '38441a0eb22139fe',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '38441a0eb22139fe',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'c4bebe56e5f36ba1',
    ('_sgd', 'ml100k-u1', 'constant'): '0e821ce883e0f953',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '7ed87ca070c9f272',
    ('_sgd', 'ml100k-u1', 'funk'): 'f44e4aa175b0698e',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'a5e85b10f629d6cb',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '9d7d385559dadaac',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'c9a398bd71249d3f',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '45a27e97a5996686',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '1650ae5e7f826c7b',
    ('_sgd', 'ml100k-u1', 'warm-start'): '105ba03abf99fbdd',
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
