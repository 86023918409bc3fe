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
    ('_sgd_avx2', 'generated', 'adagrad'): '89da426faff23e58',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '89da426faff23e58',
    ('_sgd_avx2', 'generated', 'adaptive'): '8838977586589884',
    ('_sgd_avx2', 'generated', 'constant'): 'b388feb4dfaeb034',
    ('_sgd_avx2', 'generated', 'early-stopping'): '2b7f78488619108c',
    ('_sgd_avx2', 'generated', 'funk'): '6c28cf04ac822739',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '968811dbd17913e0',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): 'f9f30035f3f9b1e5',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '30f27a10cc191d1e',
    ('_sgd_avx2', 'generated', 'warm-start'): '0e2d5b049e619f7b',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '86c35eb91751e0e7',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '86c35eb91751e0e7',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'e4153dee2bf48649',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): 'fdde35c6d86763ed',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '259c8c8bc5620ac2',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '7515c9c0783792ef',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '8c3a52a148f2d67f',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '4b45c793312e4154',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'cc7443aec3325b1a',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): 'd486452941518dfc',
    ('_sgd', 'generated', 'adagrad'): '9cf30990129b1116',
    ('_sgd', 'generated', 'adagrad-2-threads'): '9cf30990129b1116',
    ('_sgd', 'generated', 'adaptive'): '470c627efa05ee01',
    ('_sgd', 'generated', 'constant'): '8d5846e85d0fe922',
    ('_sgd', 'generated', 'early-stopping'): '91f431fd5083a937',
    ('_sgd', 'generated', 'funk'): '300a26ab03079836',
    ('_sgd', 'generated', 'funk-constant-early'): '454737fd8b901c46',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): 'e2fea3e27bd13d2a',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '321e59fb21f0dc78',
    ('_sgd', 'generated', 'warm-start'): 'd2b3a69dc1cd47e0',
    ('_sgd', 'ml100k-u1', 'adagrad'): 'df1a511d05041777',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): 'df1a511d05041777',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'ef00232e1ce3e807',
    ('_sgd', 'ml100k-u1', 'constant'): 'a4a764e3a694c95e',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '9b14c23d690ee556',
    ('_sgd', 'ml100k-u1', 'funk'): '3f9211adea2492c3',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '68c2bf2ae939accc',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'ff5fcdf9204bde39',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): 'd082f7cd2e445b93',
    ('_sgd', 'ml100k-u1', 'warm-start'): 'fd3bae4dc8c2daf9',
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
