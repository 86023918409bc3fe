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
    ('_sgd_avx2', 'generated', 'adagrad'): 'fc60bff79aaa8dad',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): 'fc60bff79aaa8dad',
    ('_sgd_avx2', 'generated', 'adaptive'): 'a692acd720f419d5',
    ('_sgd_avx2', 'generated', 'constant'): 'a8d135a1fdb6cab9',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'e5f1a8c16e2a5675',
    ('_sgd_avx2', 'generated', 'funk'): '5180449660a099f3',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): 'bf9549286041e009',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6365498ae36cfe8c',
    ('_sgd_avx2', 'generated', 'invscaling'): 'd54d6dc0790cd030',
    ('_sgd_avx2', 'generated', 'partial-fit'): '966034bb6253b55e',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '79f6552bf4e7a96f',
    ('_sgd_avx2', 'generated', 'warm-start'): '798e9e620de1928d',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '39bc917772ee74a7',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '39bc917772ee74a7',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '863b1a1924575c20',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '7a637ef27f070ce6',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'ec07b2f5119abf5f',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'b4ea1714af1dff13',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'cd0a954d7084ff6d',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '5095bfdeb58bec46',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'd3e8b0544adc8d64',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): '175b83e98e6391ba',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '3e3a800b3be63915',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '015287ed382aee1f',
    ('_sgd', 'generated', 'adagrad'): 'd7007b6c582243fd',
    ('_sgd', 'generated', 'adagrad-2-threads'): 'd7007b6c582243fd',
    ('_sgd', 'generated', 'adaptive'): '05edb177aa880a28',
    ('_sgd', 'generated', 'constant'): 'bda571a12b941b80',
    ('_sgd', 'generated', 'early-stopping'): '462f312b8dd6fd69',
    ('_sgd', 'generated', 'funk'): '55f2482b801c9537',
    ('_sgd', 'generated', 'funk-constant-early'): '28a30cee828e1ae4',
    ('_sgd', 'generated', 'funk-partial-fit'): 'a7760c40627f79b7',
    ('_sgd', 'generated', 'invscaling'): '7584a54330ae459b',
    ('_sgd', 'generated', 'partial-fit'): '7b81434fdd870fcf',
    ('_sgd', 'generated', 'unbiased-float64'): 'd4157157e4f510f5',
    ('_sgd', 'generated', 'warm-start'): '73e5e203eaffa20f',
    ('_sgd', 'ml100k-u1', 'adagrad'): '07560227d612889c',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '07560227d612889c',
    ('_sgd', 'ml100k-u1', 'adaptive'): '3497a79170cb31b6',
    ('_sgd', 'ml100k-u1', 'constant'): '1090374343e6a1c1',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'd7d2a922c9a8df42',
    ('_sgd', 'ml100k-u1', 'funk'): '7cd7fa793f3b91bc',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '80c10ebf9e238c4d',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): 'e4f3d9cc8eae20e9',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'ea957edfa4b16fd5',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6a210c1fd044ed24',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '25ba436ebe5ce510',
    ('_sgd', 'ml100k-u1', 'warm-start'): 'c52844ccecb15792',
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
