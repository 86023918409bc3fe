"""Property-based fuzzing of every public entry point with random valid and invalid input.

Valid input must give finite factors and predictions of the right shapes; invalid input must
raise the documented exception (ValueError, TypeError or NotFittedError) with a message.
The properties run in a child process, so that a crash in compiled code (a segfault, an
abort) fails the test instead of killing pytest. The examples are derandomized: every run
tries the same ones. For a longer hunt::

    FUNKSGD_FUZZ_EXAMPLES=5000 PYTHONPATH=. python tests/test_fuzz.py fuzz_invalid_matrix
"""

import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from funksgd import FunkSVD, train_test_split_ratings
from funksgd._cli import main as cli_main
from funksgd.datasets import load_ratings, ratings_to_csr, read_ratings

REPO = Path(__file__).resolve().parents[1]
FORMATS = ["dense", "csr", "csc", "coo", "lil", "dok", "bsr", "dia", "csr_matrix", "unsorted"]


def fuzz_settings(default_examples):
    return settings(
        max_examples=int(os.environ.get("FUNKSGD_FUZZ_EXAMPLES", default_examples)),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# ------------------------------------------------------------------------ strategies
@st.composite
def rating_matrices(draw):
    """(X in some format, the same ratings as a dense array with NaN for missing)."""
    n_users, n_items = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    observed = draw(arrays(bool, (n_users, n_items)))
    observed.flat[draw(st.integers(0, observed.size - 1))] = True  # at least one rating
    values = draw(arrays(np.float64, (n_users, n_items), elements=st.floats(-10, 10)))
    values = values.astype(draw(st.sampled_from([np.float64, np.float32, np.float16, np.int16])))
    dense = np.where(observed, values.astype(np.float64), np.nan)
    fmt = draw(st.sampled_from(FORMATS))
    if fmt == "dense":
        return np.where(observed, values, np.nan) if values.dtype.kind == "f" else dense, dense
    if values.dtype == np.float16:  # scipy.sparse has no float16: dense only
        values = values.astype(np.float32)
    rows, cols = np.nonzero(observed)
    X = sp.coo_array((values[rows, cols], (rows, cols)), shape=observed.shape)
    if draw(st.booleans()):
        X.coords = tuple(c.astype(np.int64) for c in X.coords)
    if fmt == "dia":  # scipy's DIA conversion drops zeros: they would be missing ratings
        X.data[X.data == 0] = 1
        dense[dense == 0] = 1
    if fmt == "bsr":  # zeros padding a stored block are stored: ratings. Keep blocks 1 x 1
        return X.tobsr(blocksize=(1, 1)), dense
    if fmt == "csr_matrix":
        return sp.csr_matrix(X), dense
    if fmt == "unsorted":  # valid CSR whose rows list their items in reverse
        X = sp.csr_array(X)
        for row in range(n_users):
            part = slice(X.indptr[row], X.indptr[row + 1])
            X.indices[part], X.data[part] = X.indices[part][::-1], X.data[part][::-1]
        X.has_sorted_indices = False
        return X, dense
    return X.asformat(fmt), dense


parameters = st.fixed_dictionaries(
    {
        "n_components": st.integers(1, 6),
        "alpha": st.floats(1e-3, 1.0),
        "eta0": st.floats(1e-4, 0.05),
        "max_iter": st.integers(1, 4),
        "biased": st.booleans(),
        "init_std": st.floats(0.0, 0.5),
        "shuffle": st.booleans(),
        "random_state": st.integers(0, 2**31),
        "dtype": st.sampled_from(["float32", "float64"]),
        "n_jobs": st.sampled_from([None, 1, 2, -1]),
        "learning_rate": st.sampled_from(["adagrad", "constant", "invscaling", "adaptive"]),
        "algorithm": st.sampled_from(["simultaneous", "funk"]),
        "early_stopping": st.booleans(),
        "tol": st.sampled_from([None, 1e-4, 0.1]),
    }
)
# a valid matrix may still be refused, in these documented ways
DOCUMENTED_FAILURES = "diverged|early_stopping=True needs at least 2 ratings"
# the fitted model that wrong calls are made on: a constant rate fits any valid matrix here
FITTED = {"n_components": 2, "max_iter": 2, "random_state": 0, "learning_rate": "constant"}


# ------------------------------------------------------------------------ properties
@given(data=rating_matrices(), params=parameters)
@fuzz_settings(100)
def fuzz_valid_input(data, params):
    X, dense = data
    n_users, n_items = dense.shape
    k = params["n_components"]
    warnings.simplefilter("ignore", ConvergenceWarning)  # early stopping after 1-4 epochs
    try:
        model = FunkSVD(**params).fit(X)
    except ValueError as error:
        assert re.search(DOCUMENTED_FAILURES, str(error)), repr(error)
        return
    for name, shape in [
        ("item_factors_", (n_items, k)),
        ("user_factors_", (n_users, k)),
        ("item_bias_", (n_items,)),
        ("user_bias_", (n_users,)),
    ]:
        value = getattr(model, name)
        assert value.shape == shape and np.isfinite(value).all(), name
    assert model.transform(X).shape == (n_users, k)
    predicted = model.complete(X)
    assert predicted.shape == dense.shape and np.isfinite(predicted).all()
    rows, cols = np.nonzero(~np.isnan(dense))
    assert np.isfinite(model.predict_ratings(rows, cols)).all()
    items, scores = model.recommend(np.arange(n_users), X=X, n=3)
    assert items.shape == scores.shape == (n_users, 3)
    assert ((items >= -1) & (items < n_items)).all()
    assert np.isfinite(scores[items >= 0]).all()
    assert np.isfinite(model.inverse_transform(model.transform(X))).all()
    if (np.sum(~np.isnan(dense), axis=1) >= 2).any():
        assert np.isfinite(model.score(X))
    if len(rows) >= 2:
        train, test = train_test_split_ratings(X, random_state=0)
        assert train.nnz + test.nnz == len(rows)
    streamed = FunkSVD(**params)
    try:
        for _ in range(2):
            streamed.partial_fit(X)
    except ValueError as error:
        assert re.search(DOCUMENTED_FAILURES, str(error)), repr(error)
        return
    assert np.isfinite(streamed.user_factors_).all() and np.isfinite(streamed.complete(X)).all()


def assert_fits(X, **params):
    """``X`` fits to finite predictions, or is refused in a documented way."""
    try:
        model = FunkSVD(n_components=2, max_iter=2, **params).fit(X)
    except ValueError as error:
        assert re.search(DOCUMENTED_FAILURES, str(error)), repr(error)
        return
    assert np.isfinite(model.complete(X)).all()


def corrupted(X, how, draw):
    """A copy of valid ratings ``X`` (dense with NaN) broken in the way ``how`` names."""
    n_users, n_items = X.shape
    rows, cols = np.nonzero(~np.isnan(X))
    csr = sp.csr_array((X[rows, cols], (rows, cols)), shape=X.shape)
    coo = csr.tocoo()
    position = draw(st.integers(0, csr.nnz - 1))
    far = draw(st.sampled_from([-1, -(2**31), n_users + n_items, 2**31 - 1, 2**40]))
    if how == "nan or inf in sparse data":
        csr.data[position] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return csr.asformat(draw(st.sampled_from(["csr", "csc", "coo", "lil"])))
    if how == "inf in dense data":
        X = X.copy()
        X[rows[position], cols[position]] = draw(st.sampled_from([np.inf, -np.inf]))
        return X
    if how == "duplicate entry":
        row, col = coo.row[position], coo.col[position]
        return sp.coo_array((np.r_[coo.data, 1.0], (np.r_[coo.row, row], np.r_[coo.col, col])),
                            shape=X.shape)  # fmt: skip
    if how == "coordinate out of range":
        coords = [coo.row.astype(np.int64), coo.col.astype(np.int64)]
        coords[draw(st.integers(0, 1))][position] = far
        coo.coords = tuple(coords)
        return coo
    if how == "index out of range":
        X = csr.asformat(draw(st.sampled_from(["csr", "csc"]))).copy()
        X.indices = X.indices.astype(np.int64)
        X.indices[position] = far
        X.has_canonical_format = draw(st.booleans())  # a stale flag must not be trusted
        return X
    if how == "corrupt indptr":
        X = csr.copy()
        X.indptr = X.indptr.astype(np.int64)
        broken = draw(st.sampled_from(["short", "start", "decreasing", "end"]))
        if broken == "short":
            X.indptr = X.indptr[: draw(st.integers(0, n_users))]
        elif broken == "start":
            X.indptr[0] = draw(st.sampled_from([-1, 1, far]))
        elif broken == "decreasing":
            row = draw(st.integers(1, n_users))
            X.indptr[row] = X.indptr[row - 1] - draw(st.integers(1, 3))
        else:
            X.indptr[-1] = csr.nnz + draw(st.integers(1, 2**40))
        return X
    if how == "bsr index out of range":
        X = csr.tobsr(blocksize=(1, 1))
        X.indices[position] = draw(st.sampled_from([-1, n_items, 2**31 - 1]))
        return X
    if how == "wrong dtype":
        kind = draw(st.sampled_from(["bool", "str", "bytes", "complex", "datetime", "object"]))
        dense = np.nan_to_num(X, nan=1.0)
        return {
            "bool": dense > 0,
            "str": dense.astype(str),
            "bytes": dense.astype(bytes),
            "complex": dense + 1j,
            "datetime": dense.astype(np.int64).astype("datetime64[D]"),
            "object": np.full(X.shape, {"a": 1}, dtype=object),
        }[kind]
    if how == "wrong shape":
        return draw(st.sampled_from([X.ravel(), X[None], np.empty((0, n_items)), X[:, :0]]))
    if how == "no ratings":
        return draw(st.sampled_from([np.full(X.shape, np.nan), sp.csr_array(X.shape)]))
    raise AssertionError(how)


BAD_PARAMETERS = [
    ("n_components", [0, -3, 2.5, True, "3", None, 10**13]),
    ("alpha", [0.0, -1.0, np.nan, np.inf, "0.1"]),
    ("eta0", [0.0, -0.1, np.nan, np.inf, None]),
    ("max_iter", [0, -1, 1.5, False]),
    ("init_std", [-0.1, np.nan, np.inf]),
    ("dtype", ["float16", "int32", np.int32, None]),
    ("n_jobs", [0, 1.5, "2", True]),
    ("biased", ["yes", 2, None]),
    ("shuffle", [None, "no"]),
    ("random_state", ["seed", -1, 1.5]),
    ("verbose", [-1, "loud"]),
    ("learning_rate", ["optimal", None, 1]),
    ("power_t", [-1.0, np.nan, "x"]),
    ("tol", [-1.0, np.nan, "x"]),
    ("early_stopping", ["yes", None]),
    ("validation_fraction", [0.0, 1.0, 1.5, np.nan]),
    ("n_iter_no_change", [0, True, 1.5]),
    ("algorithm", ["als", None]),
    ("warm_start", ["yes", 2]),
]
CORRUPTIONS = [
    "nan or inf in sparse data",
    "inf in dense data",
    "duplicate entry",
    "coordinate out of range",
    "index out of range",
    "corrupt indptr",
    "bsr index out of range",
    "wrong dtype",
    "wrong shape",
    "no ratings",
]


def bad_input_call(dense, draw):
    """(label, call) giving broken ratings to one of the entry points that take a matrix."""
    how = draw(st.sampled_from(CORRUPTIONS))
    X = corrupted(dense, how, draw)
    model = FunkSVD(**FITTED).fit(dense)
    calls = {
        "fit": lambda: FunkSVD(n_components=2, max_iter=2).fit(X),
        "partial_fit": lambda: FunkSVD(n_components=2).partial_fit(X),
        "partial_fit, fitted": lambda: model.partial_fit(X),
        "score": lambda: model.score(X),
        "train_test_split_ratings": lambda: train_test_split_ratings(X),
        "transform": lambda: model.transform(X),
        "complete": lambda: model.complete(X),
        "recommend": lambda: model.recommend(X=X),
    }
    # a matrix without ratings is a valid input to fold in: zero factors
    method = draw(st.sampled_from(list(calls)[:5] if how == "no ratings" else list(calls)))
    return f"{method}({how})", calls[method]


def bad_parameter_call(dense, draw):
    name, values = draw(st.sampled_from(BAD_PARAMETERS))
    value = draw(st.sampled_from(values))
    model = FunkSVD(n_components=2, max_iter=2).set_params(**{name: value})
    return f"{name}={value!r}", lambda: model.fit(dense)


def bad_method_call(dense, draw):
    """(label, call): a wrong argument to a method of a model fitted to ``dense``."""
    n_users, n_items = dense.shape
    model = FunkSVD(**FITTED).fit(dense)
    out = draw(st.sampled_from(["size", -1, 2**31, -(2**63), 2**64 - 1]))
    kind = draw(st.sampled_from(["out", [0.5], [np.nan], ["0"], [[0]], [None]]))

    def bad_index(size):
        return kind if kind != "out" else [size if out == "size" else out]

    wrong_items = np.ones((2, draw(st.integers(1, 20).filter(lambda n: n != n_items))))
    n = draw(st.sampled_from([0, -1, True, 1.5, 10**15]))
    test_size = draw(st.sampled_from([0, 1.0, -0.5, None, "x", 10**9]))
    calls = {
        "predict_ratings users": lambda: model.predict_ratings(bad_index(n_users), [0]),
        "predict_ratings items": lambda: model.predict_ratings([0], bad_index(n_items)),
        "predict_ratings lengths": lambda: model.predict_ratings([0, 0], [0]),
        "recommend users": lambda: model.recommend(bad_index(n_users), exclude_rated=False),
        "recommend n": lambda: model.recommend([0], n=n, exclude_rated=False),
        "recommend X rows": lambda: model.recommend([0], X=np.ones((2, n_items))),
        "recommend nothing": lambda: model.recommend(),
        "transform items": lambda: model.transform(wrong_items),
        "partial_fit items": lambda: model.partial_fit(wrong_items),
        "complete items": lambda: model.complete(wrong_items),
        "score items": lambda: model.score(wrong_items),
        "recommend items": lambda: model.recommend(X=wrong_items),
        "inverse_transform width": lambda: model.inverse_transform(np.ones((1, 3))),
        "inverse_transform nan": lambda: model.inverse_transform(np.full((1, 2), np.nan)),
        "score single ratings": lambda: model.score(sp.csr_array(np.eye(1, n_items))),
        "split test_size": lambda: train_test_split_ratings(dense, test_size=test_size),
        "unfitted": lambda: FunkSVD().predict_ratings([0], [0]),
    }
    label = draw(st.sampled_from(sorted(calls)))
    return label, calls[label]


def refuses_clearly(make, data, choice):
    """The call built by ``make`` raises a documented exception with a message."""
    label, call = make(data[1], choice.draw)
    try:
        call()
    except (ValueError, TypeError, NotFittedError) as error:
        assert len(str(error)) > 10, f"{label}: message {str(error)!r}"
    else:
        raise AssertionError(f"{label}: accepted")


@given(data=rating_matrices(), choice=st.data())
@fuzz_settings(200)
def fuzz_invalid_matrix(data, choice):
    refuses_clearly(bad_input_call, data, choice)


@given(data=rating_matrices(), choice=st.data())
@fuzz_settings(100)
def fuzz_invalid_parameter(data, choice):
    refuses_clearly(bad_parameter_call, data, choice)


@given(data=rating_matrices(), choice=st.data())
@fuzz_settings(150)
def fuzz_invalid_call(data, choice):
    refuses_clearly(bad_method_call, data, choice)


# ------------------------------------------------- readers, ratings_to_csr, command line
READER_NAMES = {"tab": "u.data", "dat": "ratings.dat", "csv": "ratings.csv",
                "netflix": "mv_0000001.txt"}  # fmt: skip
SEPARATORS = {"tab": "\t", "dat": "::", "csv": ",", "netflix": ","}
odd_fields = st.sampled_from(
    ["", " ", "nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "३", "2**31", "9" * 30, "a"]
)
fields = st.one_of(st.integers(-5, 2**40).map(str), st.floats().map(repr), odd_fields)


@st.composite
def ratings_files(draw):
    """(file name, bytes, format passed to the reader): mostly valid lines, some broken."""
    fmt = draw(st.sampled_from(sorted(READER_NAMES)))
    sep = SEPARATORS[fmt]
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "fields", "text", "movie"]))
        if kind == "valid":
            n_ids = 1 if fmt == "netflix" else 2
            ids = [str(draw(st.integers(1, 30))) for _ in range(n_ids)]
            rating = repr(draw(st.floats(0, 5)) if draw(st.booleans()) else draw(st.integers(1, 5)))
            lines.append(sep.join([*ids, rating] + (["881250949"] if draw(st.booleans()) else [])))
        elif kind == "fields":
            lines.append(sep.join(draw(st.lists(fields, max_size=5))))
        elif kind == "text":
            lines.append(draw(st.text(max_size=20)))
        else:
            lines.append(f"{draw(fields)}:")
    if fmt == "netflix" and draw(st.booleans()):
        lines.insert(0, f"{draw(st.integers(1, 20))}:")
    if fmt == "csv" and draw(st.booleans()):
        lines.insert(0, "userId,movieId,rating,timestamp")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.binary(max_size=20))  # not UTF-8 at all
    name = READER_NAMES[fmt] if draw(st.booleans()) else "ratings.txt"
    return name, text, draw(st.sampled_from([None, fmt]))


_SCRATCH = []


def _work_dir():
    """A fresh folder inside one temporary folder that goes when the process ends."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="funksgd-fuzz-"))
    return Path(tempfile.mkdtemp(dir=_SCRATCH[0].name))


@given(spec=ratings_files(), seed=st.integers(0, 3))
@fuzz_settings(150)
def fuzz_reader(spec, seed):
    name, text, fmt = spec
    folder = _work_dir()
    path = folder / name
    path.write_bytes(text)
    try:
        users, items, ratings = read_ratings(path, format=fmt, cache=folder / "cache")
    except (ValueError, OSError) as error:  # UnicodeDecodeError is a ValueError
        assert len(str(error)) > 10, repr(error)
        return
    assert len(users) == len(items) == len(ratings) and np.isfinite(ratings).all()
    again = read_ratings(path, format=fmt, cache=folder / "cache")  # memory-mapped, read-only
    for got, want in zip(again, (users, items, ratings), strict=True):
        np.testing.assert_array_equal(got, want)
    X, mapping = load_ratings(path, format=fmt, cache=folder / "cache", duplicates="mean")
    assert X.shape == mapping.shape and np.isfinite(X.data).all()
    assert_fits(X, random_state=seed)


HEADER_NAMES = {"user": ["userId", "user_id", "USER"], "item": ["movieId", "item_id", "movie"],
                "rating": ["rating", "Rating"]}  # fmt: skip


@st.composite
def valid_ratings_files(draw):
    """(file name, bytes, format, the (user, item, rating) triples it holds): valid files in
    every shape the readers accept (header or not, columns in any order, a pandas index, a
    byte-order mark, CRLF, blank lines, a timestamp or not)."""
    fmt = draw(st.sampled_from(["tab", "dat", "csv"]))
    sep = SEPARATORS[fmt]
    n = draw(st.integers(1, 12))
    rows = [(draw(st.integers(-(2**40), 2**40)), draw(st.integers(0, 50)),
             draw(st.one_of(st.integers(-5, 10), st.floats(-1e30, 1e30))))
            for _ in range(n)]  # fmt: skip
    header = draw(st.booleans())
    order = draw(st.permutations(["user", "item", "rating", "timestamp", "index"]))
    order = [c for c in order if c != "index" or header]  # an index column comes with names
    if not header:
        order = ["user", "item", "rating"] + (["timestamp"] if draw(st.booleans()) else [])
    lines = []
    if header:
        names = {kind: draw(st.sampled_from(choices)) for kind, choices in HEADER_NAMES.items()}
        names.update(timestamp="timestamp", index="")
        lines.append(sep.join(names[c] for c in order))
    for j, (user, item, rating) in enumerate(rows):
        values = {"user": str(user), "item": str(item), "rating": repr(rating),
                  "timestamp": "881250949", "index": str(j)}  # fmt: skip
        lines.append(sep.join(values[c] for c in order))
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\t"])) if fmt != "tab" else "")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.booleans()) else ""
    name = {"tab": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[fmt]
    return name, (bom + text).encode(), draw(st.sampled_from([None, fmt])), rows


@given(spec=valid_ratings_files(), block_bytes=st.sampled_from([1 << 24, 7, 64]))
@fuzz_settings(150)
def fuzz_reader_valid(spec, block_bytes):
    from funksgd.datasets import _parsing

    name, text, fmt, rows = spec
    path = _work_dir() / name
    path.write_bytes(text)
    _parsing.BLOCK_BYTES = block_bytes
    try:
        users, items, ratings = read_ratings(path, format=fmt, cache=False)
    finally:
        _parsing.BLOCK_BYTES = 1 << 24
    expected = [(u, i, float(np.float32(r))) for u, i, r in rows]
    got = list(zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True))
    assert got == expected, (text, got, expected)


ids = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.text(max_size=3), st.none(), st.floats(), st.booleans()
)


@given(
    users=st.lists(ids, max_size=8),
    items=st.lists(ids, max_size=8),
    ratings=st.lists(st.one_of(st.floats(), st.text(max_size=2), st.none()), max_size=8),
    duplicates=st.sampled_from(["raise", "last", "mean", "sum"]),
)
@fuzz_settings(200)
def fuzz_ratings_to_csr(users, items, ratings, duplicates):
    try:
        X, mapping = ratings_to_csr(users, items, ratings, duplicates=duplicates)
    except (ValueError, TypeError) as error:
        assert len(str(error)) > 10, repr(error)
        return
    assert X.shape == mapping.shape and np.isfinite(X.data).all() and X.nnz <= len(ratings)
    if X.nnz:
        assert_fits(X)


_CLI_FILES = {}


def _cli_files():
    """A folder of good and bad inputs for the command line, made once per process."""
    if not _CLI_FILES:
        import joblib

        folder = _work_dir()
        rng = np.random.default_rng(0)
        rows = [f"{u}\t{i}\t{rng.integers(1, 6)}" for u in range(1, 31) for i in range(1, 21)
                if rng.random() < 0.4]  # fmt: skip
        (folder / "u.data").write_text("\n".join(rows) + "\n")
        (folder / "bad.data").write_text("1\t2\t3\nfour\tfive\n")
        (folder / "empty.data").write_text("")
        (folder / "junk.bin").write_bytes(bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
        joblib.dump([1, 2], folder / "list.joblib")
        from funksgd._model_file import save_model

        bare = FunkSVD(n_components=2, max_iter=1).fit(np.ones((3, 4)))
        save_model(folder / "bare.npz", bare)  # a model file, not one of 'funksgd fit'
        (folder / "dir").mkdir()
        (folder / "titles.txt").write_text("1|Toy Story (1995)|01-Jan-1995\n2|GoldenEye\n")
        with redirect_stdout(io.StringIO()):
            argv = ["fit", folder / "u.data", "-o", folder / "model.joblib", "--no-cache"]
            assert cli_main([*argv, "--n-components", "2", "--max-iter", "2", "-q"]) == 0
        _CLI_FILES["folder"] = folder
    return _CLI_FILES["folder"]


MODEL_OPTIONS = {
    "--n-components": ["0", "-1", "x", "2", "3", "1000000000000"],
    "--alpha": ["0", "-1", "nan", "inf", "x", "0.1", "0.05"],
    "--eta0": ["0", "-1", "nan", "inf", "50", "0.01", "0.005"],
    "--max-iter": ["0", "-1", "x", "1", "3"],
    "--n-jobs": ["0", "1", "2", "-1", "100000", "x"],
    "--seed": ["-1", "0", "7", "99999999999999999999", "x"],
}
READING_OPTIONS = {
    "--format": ["tab", "tab", "csv", "netflix", "dat", "xml"],
    "--cache-dir": ["cache", "cache", "u.data"],
    "--no-cache": None,
    "--columns": ["0,1,2", "1,0,2", "0,1,9", "a,b,c", "a,b", "user,item,rating"],
    "--duplicates": ["raise", "last", "mean", "x"],
}
CLI_OPTIONS = {
    "demo": {
        **MODEL_OPTIONS,
        "--n-users": ["0", "-3", "x", "5", "40"],
        "--n-items": ["0", "-3", "x", "5", "30"],
        "--n-ratings": ["0", "-1", "x", "10", "300", "1000000000000"],
    },
    "fit": {**MODEL_OPTIONS, **READING_OPTIONS},
    "evaluate": READING_OPTIONS,
    "recommend": {
        "-n": ["0", "-1", "x", "5", "1000000000000"],
        "--items": ["u.data", "junk.bin", "missing.data", "titles.txt"],
    },  # fmt: skip
}
RATINGS_FILES = ["u.data", "u.data", "bad.data", "empty.data", "junk.bin", "dir", "missing.data"]
MODEL_FILES = ["model.joblib", "model.joblib", "list.joblib", "bare.npz", "junk.bin", "u.data",
               "missing"]  # fmt: skip


@given(choice=st.data())
@fuzz_settings(100)
def fuzz_cli(choice):
    draw = choice.draw
    folder = _cli_files()
    commands = ["demo", "fit", "evaluate", "recommend"]
    command = draw(st.sampled_from([*commands * 4, "nonsense", None]))
    argv = [command] if command else []
    if command == "demo":
        argv += ["--n-users", "40", "--n-items", "30", "--n-ratings", "300", "--max-iter", "2"]
    if command == "fit":
        argv += [draw(st.sampled_from(RATINGS_FILES)), "-o", "out.joblib", "-q"]
        argv += ["--n-components", "2", "--max-iter", "2"]
    if command in ("evaluate", "recommend"):
        argv.append(draw(st.sampled_from(MODEL_FILES)))
    if command == "evaluate":
        argv += draw(st.lists(st.sampled_from(RATINGS_FILES), min_size=1, max_size=2))
    if command == "recommend":
        argv.append(draw(st.sampled_from(["1", "30", "999", "x", "-1", ""])))
    options = CLI_OPTIONS.get(command, MODEL_OPTIONS)
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=3)):
        argv += [flag] if options[flag] is None else [flag, draw(st.sampled_from(options[flag]))]
    names = {*RATINGS_FILES, *MODEL_FILES, "out.joblib", "cache", "titles.txt"}
    argv = [str(folder / arg) if arg in names else arg for arg in argv if arg is not None]
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = cli_main(argv)
    except SystemExit as exit:  # argparse: usage errors exit with 2, --help with 0
        status = exit.code
    assert status in (0, 2), f"{argv}: status {status!r}"
    if status == 2:
        said = out.getvalue() + err.getvalue()  # no command: the help, on stdout
        assert "error" in said or "usage" in said, (argv, said)


# ------------------------------------------------------------- the pytest entry points
def run_in_child(name, examples=None):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    if examples is not None:
        env["FUNKSGD_FUZZ_EXAMPLES"] = str(examples)
    child = subprocess.run(
        [sys.executable, "-X", "faulthandler", __file__, name],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if child.returncode < 0:
        pytest.fail(
            f"{name} crashed with {signal.Signals(-child.returncode).name}:\n{child.stderr}"
        )
    assert child.returncode == 0, f"{name} failed:\n{child.stdout}\n{child.stderr}"


PROPERTIES = [
    "fuzz_valid_input",
    "fuzz_invalid_matrix",
    "fuzz_invalid_parameter",
    "fuzz_invalid_call",
    "fuzz_reader",
    "fuzz_reader_valid",
    "fuzz_ratings_to_csr",
    "fuzz_cli",
]


@pytest.mark.parametrize("name", PROPERTIES)
def test_fuzz(name):
    run_in_child(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", PROPERTIES)
def test_fuzz_longer(name):
    examples = {"fuzz_valid_input": 200, "fuzz_cli": 200, "fuzz_invalid_parameter": 400}
    run_in_child(name, examples=examples.get(name, 500))  # about 60 s for all seven


if __name__ == "__main__":
    globals()[sys.argv[1]]()
