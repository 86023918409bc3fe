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
    ('_sgd_avx2', 'generated', 'adagrad'): '2b83724b07545a1b',
    ('_sgd_avx2', 'generated', 'adagrad-2-threads'): '2b83724b07545a1b',
    ('_sgd_avx2', 'generated', 'adaptive'): 'a09b2d64a52b8712',
    ('_sgd_avx2', 'generated', 'constant'): 'e41482bf939d4922',
    ('_sgd_avx2', 'generated', 'early-stopping'): 'a7109ff124676280',
    ('_sgd_avx2', 'generated', 'funk'): '77a673f7f3832ce2',
    ('_sgd_avx2', 'generated', 'funk-constant-early'): '0ecb68d414f8895a',
    ('_sgd_avx2', 'generated', 'funk-partial-fit'): '1523156513a6893f',
    ('_sgd_avx2', 'generated', 'invscaling'): '8f55df02d39e51de',
    ('_sgd_avx2', 'generated', 'partial-fit'): 'de4cf0ea24492e30',
    ('_sgd_avx2', 'generated', 'unbiased-float64'): '478617853546a261',
    ('_sgd_avx2', 'generated', 'warm-start'): '764465f1337abade',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad'): 'a585a46a01218e32',
    ('_sgd_avx2', 'ml100k-u1', 'adagrad-2-threads'): 'a585a46a01218e32',
    ('_sgd_avx2', 'ml100k-u1', 'adaptive'): 'ac7a8997ace735fd',
    ('_sgd_avx2', 'ml100k-u1', 'constant'): '75807a57b09e7d2c',
    ('_sgd_avx2', 'ml100k-u1', 'early-stopping'): '8df958eb049818e6',
    ('_sgd_avx2', 'ml100k-u1', 'funk'): 'b5ee3722311eb712',
    ('_sgd_avx2', 'ml100k-u1', 'funk-constant-early'): '225941a211b474da',
    ('_sgd_avx2', 'ml100k-u1', 'funk-partial-fit'): '3ca8e2669693714e',
    ('_sgd_avx2', 'ml100k-u1', 'invscaling'): 'ad6affeb5cfc5517',
    ('_sgd_avx2', 'ml100k-u1', 'partial-fit'): 'a34cb72f4a16db99',
    ('_sgd_avx2', 'ml100k-u1', 'unbiased-float64'): '57455ac7b9cb3d6a',
    ('_sgd_avx2', 'ml100k-u1', 'warm-start'): '58cc55dcc45d46d5',
    ('_sgd', 'generated', 'adagrad'): '5a1299dc920b8ac9',
    ('_sgd', 'generated', 'adagrad-2-threads'): '5a1299dc920b8ac9',
    ('_sgd', 'generated', 'adaptive'): 'b9074ea4e7823f6a',
    ('_sgd', 'generated', 'constant'): 'bf99fe20942ef592',
    ('_sgd', 'generated', 'early-stopping'): 'fd9ec8054c9d04bf',
    ('_sgd', 'generated', 'funk'): '8c8a2cf5bc17a414',
    ('_sgd', 'generated', 'funk-constant-early'): '28f1478fd965bed5',
    ('_sgd', 'generated', 'funk-partial-fit'): '6b2bdf4d82be6033',
    ('_sgd', 'generated', 'invscaling'): 'ff5075bb57bfc375',
    ('_sgd', 'generated', 'partial-fit'): '017c77d093a03e50',
    ('_sgd', 'generated', 'unbiased-float64'): '2d4a6b317f848e1e',
    ('_sgd', 'generated', 'warm-start'): 'c063579b640bd20d',
    ('_sgd', 'ml100k-u1', 'adagrad'): '081605f726d7e692',
    ('_sgd', 'ml100k-u1', 'adagrad-2-threads'): '081605f726d7e692',
    ('_sgd', 'ml100k-u1', 'adaptive'): '2aeab74e7362c248',
    ('_sgd', 'ml100k-u1', 'constant'): '641dda16ec81d5ea',
    ('_sgd', 'ml100k-u1', 'early-stopping'): '19840e853da259c4',
    ('_sgd', 'ml100k-u1', 'funk'): 'ff77552890c83944',
    ('_sgd', 'ml100k-u1', 'funk-constant-early'): 'ffc61750a44081a4',
    ('_sgd', 'ml100k-u1', 'funk-partial-fit'): '63872bedcf525856',
    ('_sgd', 'ml100k-u1', 'invscaling'): '5c48fa6d21b8e13d',
    ('_sgd', 'ml100k-u1', 'partial-fit'): 'd523ad6558d4604c',
    ('_sgd', 'ml100k-u1', 'unbiased-float64'): '3e8f98d938d2465e',
    ('_sgd', 'ml100k-u1', 'warm-start'): '969adc837eb28689',
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
