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
    ('_sgd_avx2', 'generated', 'adagrad'): '8806e81c6cc9b984',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '8806e81c6cc9b984',
    ('_sgd_avx2', 'generated', 'adaptive'): 'd8f818674849c17a',
    ('_sgd_avx2', 'generated', 'constant'): 'be6dd5829ddf1b94',
    ('_sgd_avx2', 'generated', 'early-stopping'): '8d677655c7896c26',
    ('_sgd_avx2', 'generated', 'funk'): '8d64e236f82f875a',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '5722617941b98da7',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): 'fdde8f43adc68a89',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '2f077daf9bea8734',
    ('_sgd_avx2', 'generated', 'warm-start'): 'c93c6bdc3608d0d1',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '7c5cf56f7d56fa30',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '7c5cf56f7d56fa30',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '9856b4b5a6973d7a',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '8e290b5906d859bb',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '67c63a9bb3b604c6',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '1dd7c0e8a31e84c5',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'f23ee8a854dfd277',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'e22b885dbc0bfcef',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'dd3b851edb495078',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '4927d9f11cde3913',
    ('_sgd', 'generated', 'adagrad'): '2c6ac1d0aabfb85f',
    ('_sgd', 'generated', 'adagrad-2-threads'): '2c6ac1d0aabfb85f',
    ('_sgd', 'generated', 'adaptive'): '00d9807176ead8af',
    ('_sgd', 'generated', 'constant'): '4bb50b612d27bc3d',
    ('_sgd', 'generated', 'early-stopping'): 'ae6169999d16a5f7',
    ('_sgd', 'generated', 'funk'): '2ba910309efe78bd',
    ('_sgd', 'generated', 'funk-constant-early'): 'd1dc382ff8fc74f3',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): 'ca582eaf51628442',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '5a4f3423b3c365c2',
    ('_sgd', 'generated', 'warm-start'): '2b53f3abb9a24d65',
    ('_sgd', 'ml100k-u1', 'adagrad'): '25e8b61ccd402465',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '25e8b61ccd402465',
    ('_sgd', 'ml100k-u1', 'adaptive'): '8fb66c519328af61',
    ('_sgd', 'ml100k-u1', 'constant'): '8c4b0aefdb90fdc4',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '827b7fe6fa4c62f8',
    ('_sgd', 'ml100k-u1', 'funk'): 'a230658e63d05bb3',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '17819d3ef4813486',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '52e1d8af11bceaad',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): 'da3ecdad35804d81',
    ('_sgd', 'ml100k-u1', 'warm-start'): '5b305766444efe27',
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
