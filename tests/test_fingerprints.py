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
    ('_sgd_avx2', 'generated', 'adagrad'): '05a3ebb8d7bdbdf3',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '05a3ebb8d7bdbdf3',
    ('_sgd_avx2', 'generated', 'adaptive'): '5be6d1bd3dd3c316',
    ('_sgd_avx2', 'generated', 'constant'): '80015030f7851a1e',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'c03302c707303c4f',
    ('_sgd_avx2', 'generated', 'funk'): 'f35330cd2e0667d5',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '968811dbd17913e0',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): '577a4e8c78db8ae9',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '30f27a10cc191d1e',
    ('_sgd_avx2', 'generated', 'warm-start'): '8be7af317df79c95',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '83fdb0717fff0056',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '83fdb0717fff0056',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'bc90c76647500040',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '435db99f8a3e816c',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'e3996ad560b71977',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '1e49af41894d16bd',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): 'd07c1dce4ed0afc3',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '9d2e6852f04aba1d',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'a300d8ebd89fdcdf',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): 'bfbdd23b4008464b',
    ('_sgd', 'generated', 'adagrad'): '6b6a884c19f8b953',
    ('_sgd', 'generated', 'adagrad-2-threads'): '6b6a884c19f8b953',
    ('_sgd', 'generated', 'adaptive'): '5d7468509d7cf1e1',
    ('_sgd', 'generated', 'constant'): '01f193fd453a0fec',
    ('_sgd', 'generated', 'early-stopping'): '0b00032fa6ad15fd',
    ('_sgd', 'generated', 'funk'): 'c131576f494469f8',
    ('_sgd', 'generated', 'funk-constant-early'): '454737fd8b901c46',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '3a73744ea17131ff',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '321e59fb21f0dc78',
    ('_sgd', 'generated', 'warm-start'): '32ee46177558357d',
    ('_sgd', 'ml100k-u1', 'adagrad'): '2ae18e1541dc7f90',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '2ae18e1541dc7f90',
    ('_sgd', 'ml100k-u1', 'adaptive'): '4b3993b9ba2db6d9',
    ('_sgd', 'ml100k-u1', 'constant'): '6e28be13ede97758',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '983862170dc0cf49',
    ('_sgd', 'ml100k-u1', 'funk'): '76f6288351fcd0fe',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'b6845df2bfd01ef1',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'dc17787e609c1bd3',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): 'ebe4134285cf1f44',
    ('_sgd', 'ml100k-u1', 'warm-start'): '141a9c9f2e2ca852',
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
