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
    ('_sgd_avx2', 'generated', 'adagrad'): '2eaac633ad537bb2',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '2eaac633ad537bb2',
    ('_sgd_avx2', 'generated', 'adaptive'): 'dd5fed210363ec9e',
    ('_sgd_avx2', 'generated', 'constant'): '432e7db7b6746639',
    ('_sgd_avx2', 'generated', 'early-stopping'): '9c6f27bcdacfdd7a',
    ('_sgd_avx2', 'generated', 'funk'): '0ce48647fd018fcd',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '301a0fe0b805c646',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): '6304b89ffb019bf8',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '622fb495557bcb0b',
    ('_sgd_avx2', 'generated', 'warm-start'): '8872c65a75520231',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '587d2730a8304b72',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '587d2730a8304b72',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'ba4fb61d416328db',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): 'af1550205406702b',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '6fcab24fa595fdb9',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '6ab4ce879d986ddd',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'a8ff39a0cae3209f',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '9c38a75eac9ab714',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '283ad54eb9fa14dc',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '28cc6b9674d5183b',
    ('_sgd', 'generated', 'adagrad'): '7d01e73e38dff125',
    ('_sgd', 'generated', 'adagrad-2-threads'): '7d01e73e38dff125',
    ('_sgd', 'generated', 'adaptive'): '2dcdf093dbdcd66a',
    ('_sgd', 'generated', 'constant'): 'cff1057f000d7ad8',
    ('_sgd', 'generated', 'early-stopping'): '796bb61964fd0747',
    ('_sgd', 'generated', 'funk'): '72d7edcf4b20c064',
    ('_sgd', 'generated', 'funk-constant-early'): 'f837b9f83195b875',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '3e39566c6fd645cd',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): 'd0e01eec867f852c',
    ('_sgd', 'generated', 'warm-start'): '433f2243c859f352',
    ('_sgd', 'ml100k-u1', 'adagrad'): '26b9e104618eb644',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '26b9e104618eb644',
    ('_sgd', 'ml100k-u1', 'adaptive'): '589fe78528632ddd',
    ('_sgd', 'ml100k-u1', 'constant'): 'ee7db2cf330a3dc4',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'd1c69e63202b17b4',
    ('_sgd', 'ml100k-u1', 'funk'): 'd6ecb3fe08553ad2',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'acd2bdba5dde6bc0',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '9951ef77df8b27b1',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '60f1eb98b1ba62a6',
    ('_sgd', 'ml100k-u1', 'warm-start'): '2eeee4e7b882669d',
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
