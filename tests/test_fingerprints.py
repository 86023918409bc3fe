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
    ('_sgd_avx2', 'generated', 'adagrad'): 'c6764a659cd9d3ec',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): 'c6764a659cd9d3ec',
    ('_sgd_avx2', 'generated', 'adaptive'): '2ca0a099082de471',
    ('_sgd_avx2', 'generated', 'constant'): 'c33fed5d3070c7e4',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'c14b6274acf18962',
    ('_sgd_avx2', 'generated', 'funk'): '016397ac834ce2b2',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '8c05e28482ab78bd',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): 'e7b6e799477034bb',
    ('_sgd_avx2', 'generated', 'invscaling'): '6743f83e5c347256',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'b3ae96d115a5934b',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '54a9063b1fba07a5',
    ('_sgd_avx2', 'generated', 'warm-start'): '62386a47dac9124f',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '9e2295fab80442e0',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '9e2295fab80442e0',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '598a94bae0be8ce1',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '22397d9965745333',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'de1992c9c091d511',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'eb69ab2af809c6e8',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'fc5d6cc4e14f7dd0',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '76303a6c8d9d96cc',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'f88a791481ab1ddc',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): '07fed146bcdb87f1',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'eb7daa395e812d65',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '37f99c373aa1850d',
    ('_sgd', 'generated', 'adagrad'): '30946d86344925e7',
    ('_sgd', 'generated', 'adagrad-2-threads'): '30946d86344925e7',
    ('_sgd', 'generated', 'adaptive'): 'bb299de6439fdc66',
    ('_sgd', 'generated', 'constant'): '05aca11a8b0a72d2',
    ('_sgd', 'generated', 'early-stopping'): '829ac162047a7785',
    ('_sgd', 'generated', 'funk'): 'd8c960aba8e5a064',
    ('_sgd', 'generated', 'funk-constant-early'): '87884d054baeb384',
    ('_sgd', 'generated', 'funk-partial-fit'): 'b9a0ff28ddd00e4a',
    ('_sgd', 'generated', 'invscaling'): 'b63a37f658bf8755',
    ('_sgd', 'generated', 'partial-fit'): '0fd5cc05d28bf5d1',
    ('_sgd', 'generated', 'unbiased-float64'): '5daae302fc12eaa3',
    ('_sgd', 'generated', 'warm-start'): 'a1423da228bd17e0',
    ('_sgd', 'ml100k-u1', 'adagrad'): 'f3471700a70b1fdb',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): 'f3471700a70b1fdb',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'd9bff7be44578aad',
    ('_sgd', 'ml100k-u1', 'constant'): '4ee292e836d10825',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'e972d35d0049be90',
    ('_sgd', 'ml100k-u1', 'funk'): '7b45f8da6a3e18bf',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '8913a5a099637167',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '3d5b0f701b45ea0e',
    ('_sgd', 'ml100k-u1', 'invscaling'): '2ae2579ffeffd78a',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '596fbf67565afdc7',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '1b2318f3fbabb1e4',
    ('_sgd', 'ml100k-u1', 'warm-start'): '4b34ffb472dfc158',
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
