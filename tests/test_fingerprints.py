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
    ('_sgd_avx2', 'generated', 'adagrad'): '98cdb1131bcacd0f',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '98cdb1131bcacd0f',
    ('_sgd_avx2', 'generated', 'adaptive'): '3e5b59cafda70454',
    ('_sgd_avx2', 'generated', 'constant'): 'e6bcb649bef088c4',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'b3d5461542be34ec',
    ('_sgd_avx2', 'generated', 'funk'): 'ce9cce72445a5065',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '2fb927a53f1bca1b',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '6daaa900e792619b',
    ('_sgd_avx2', 'generated', 'invscaling'): 'd59339caff5e379c',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'ceae06a6ff8bdaf3',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '1e46186e204d3545',
    ('_sgd_avx2', 'generated', 'warm-start'): 'e1d681629fcb9904',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): '40cef2e21d462c3b',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): '40cef2e21d462c3b',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): '111c45bb90bf2360',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '93a9185be656e80f',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): 'f67e9dc5f3c54434',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): '782f80049bbae1c9',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '47b706ad910a4204',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): 'e5448eb0fcfe58bf',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): '3d309e080e95a6d1',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'ef2ee93eb6ac7e84',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): 'e8fab93cb1e5d0a8',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '9e7eaf3f314ee0e0',
    ('_sgd', 'generated', 'adagrad'): '3439703593116e4b',
    ('_sgd', 'generated', 'adagrad-2-threads'): '3439703593116e4b',
    ('_sgd', 'generated', 'adaptive'): 'ed68abcd0319e0cb',
    ('_sgd', 'generated', 'constant'): 'a702b5753ed5fef9',
    ('_sgd', 'generated', 'early-stopping'): 'cb06e821bff71352',
    ('_sgd', 'generated', 'funk'): 'a469763f751fcde3',
    ('_sgd', 'generated', 'funk-constant-early'): 'fa60933ba6cdd8b9',
    ('_sgd', 'generated', 'funk-partial-fit'): 'c947f99f54dc0d7e',
    ('_sgd', 'generated', 'invscaling'): '042c404c2cf56275',
    ('_sgd', 'generated', 'partial-fit'): 'b86250b4f84163d8',
    ('_sgd', 'generated', 'unbiased-float64'): '6162f01694070f04',
    ('_sgd', 'generated', 'warm-start'): '9bb887eb6edfdc32',
    ('_sgd', 'ml100k-u1', 'adagrad'): '081be92f2aadcc78',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '081be92f2aadcc78',
    ('_sgd', 'ml100k-u1', 'adaptive'): 'abcb5a64b96439f6',
    ('_sgd', 'ml100k-u1', 'constant'): 'd8c41da0adedb22e',
    ('_sgd', 'ml100k-u1', 'early-stopping'): 'f882144d0cd79aed',
    ('_sgd', 'ml100k-u1', 'funk'): '4bd091ab1c5886a3',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): '833238a94de6f85d',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '70f1717481fa57c1',
    ('_sgd', 'ml100k-u1', 'invscaling'): 'beeb90a07bedaff2',
    ('_sgd', 'ml100k-u1', 'partial-fit'): '6b81c6c8ea3219f9',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '68e209f47c12b7e7',
    ('_sgd', 'ml100k-u1', 'warm-start'): 'f254a3341b433f00',
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
