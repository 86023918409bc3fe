"""scikit-learn's common estimator checks."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

from funksgd import BaselineOnly, FunkSVD


@parametrize_with_checks(
    [FunkSVD(n_components=3, max_iter=5, random_state=0), BaselineOnly()],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("container", [sp.csr_array, sp.csr_matrix])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "dok", "lil", "dia", "bsr"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_every_sparse_format(container, fmt, index_dtype):
    rng = np.random.RandomState(0)
    dense = rng.uniform(1, 5, size=(40, 6))
    dense[dense < 2.5] = 0  # these zeros are not stored, so they are missing ratings
    X = container(dense).asformat(fmt)
    if fmt in ("csr", "csc", "coo", "bsr"):
        for name in ("indices", "indptr", "row", "col"):
            if hasattr(X, name):
                setattr(X, name, getattr(X, name).astype(index_dtype))
    model = FunkSVD(n_components=3, max_iter=5, random_state=0).fit(X)
    reference = FunkSVD(n_components=3, max_iter=5, random_state=0).fit(
        np.where(dense == 0, np.nan, dense)
    )
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    assert model.transform(X).shape == (40, 3)
    assert model.complete(X).shape == (40, 6)


@pytest.mark.parametrize(
    "check",
    [
        "check_parameters_default_constructible",
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_do_not_raise_errors_in_init_or_set_params",
    ],
)
def test_dask_estimator_parameters(check):
    """DaskFunkSVD takes FunkSVD's signature and defaults, plus its own, as a real estimator."""
    pytest.importorskip("distributed")
    from sklearn.utils import estimator_checks

    from funksgd.dask import DaskFunkSVD

    getattr(estimator_checks, check)("DaskFunkSVD", DaskFunkSVD(client="sync"))


def test_dask_signature_follows_funk_svd():
    """Every FunkSVD parameter, with its default, then the cluster's; unknown ones raise."""
    pytest.importorskip("distributed")
    from funksgd.dask import DaskFunkSVD

    funk, dask = FunkSVD().get_params(), DaskFunkSVD().get_params()
    assert {name: dask[name] for name in funk} == funk
    assert set(dask) - set(funk) == {
        "n_blocks", "user_col", "item_col", "rating_col", "client", "timeout"
    }  # fmt: skip
    assert DaskFunkSVD(7, alpha=0.5).get_params()["n_components"] == 7
    with pytest.raises(TypeError, match="bogus"):
        DaskFunkSVD(bogus=1)
    with pytest.raises(TypeError, match="positional"):
        DaskFunkSVD(5, 0.1)
