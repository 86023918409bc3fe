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
    ('_sgd_avx2', 'generated', 'adagrad'): '085db8112f0f0515',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '085db8112f0f0515',
    ('_sgd_avx2', 'generated', 'adaptive'): 'a725193dea80534f',
    ('_sgd_avx2', 'generated', 'constant'): '924de11f602ac50f',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'e6b46073daa4dc48',
    ('_sgd_avx2', 'generated', 'funk'): '887d87d1d186dfd0',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '04913206d51caa16',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): '6b0d4aaf96fd850c',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '2b2a9d6776567435',
    ('_sgd_avx2', 'generated', 'warm-start'): '1d941229fde090cb',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '88ec56f0600baaad',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '88ec56f0600baaad',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '3088c1b963d82761',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '9ba93503e4155878',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'fe279bdbfe81ae2e',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'c87fb5509862f7b0',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'ae83439d7c7d327f',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'd10c21f2e8d107fd',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '1543645341f49161',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '68b8af5d3fa12c35',
    ('_sgd', 'generated', 'adagrad'): 'b8adb2bff6d75aca',
    ('_sgd', 'generated', 'adagrad-2-threads'): 'b8adb2bff6d75aca',
    ('_sgd', 'generated', 'adaptive'): '9439362a419965f0',
    ('_sgd', 'generated', 'constant'): '524cb49ef136ea88',
    ('_sgd', 'generated', 'early-stopping'): '10e6bd138655c9fb',
    ('_sgd', 'generated', 'funk'): '7e2e3b1e3d85d33e',
    ('_sgd', 'generated', 'funk-constant-early'): 'c5e3f4b89847e700',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): 'c48828448c629239',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '7b50fa8b3f38fe4e',
    ('_sgd', 'generated', 'warm-start'): '466720396adde89d',
    ('_sgd', 'ml100k-u1', 'adagrad'): '4b50984f590affd1',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '4b50984f590affd1',
    ('_sgd', 'ml100k-u1', 'adaptive'): '64794877b619cc21',
    ('_sgd', 'ml100k-u1', 'constant'): 'b1b97cc9f93bfac4',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '0274342754f53f6d',
    ('_sgd', 'ml100k-u1', 'funk'): '04af62914752fb08',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'd5d23fbe2a422576',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): '5c451a2592ba37e0',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '33fe40d5a8976447',
    ('_sgd', 'ml100k-u1', 'warm-start'): '5ddefc5f77035728',
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
