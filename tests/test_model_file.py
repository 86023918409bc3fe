"""Model files (funksgd/_model_file.py): loaded without running code, kept on a failed write."""

import copy
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from funksgd import FunkSVD, _model_file
from funksgd._model_file import load_model, read_model_file, save_model
from funksgd.datasets import IdMapping, make_ratings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ratings():
    return make_ratings(n_users=60, n_items=40, n_ratings=900, random_state=0)


@pytest.fixture(scope="module")
def fitted(ratings):
    return FunkSVD(n_components=4, max_iter=5, random_state=0).fit(ratings)


FITTED_ATTRIBUTES = ["item_factors_", "user_factors_", "item_bias_", "user_bias_",
                     "global_mean_", "n_features_in_", "n_iter_", "t_", "loss_curve_",
                     "validation_scores_", "best_validation_score_"]  # fmt: skip


def assert_same_model(a, b):
    assert a.get_params() == b.get_params()
    for name in FITTED_ATTRIBUTES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert type(getattr(a, name)) is type(getattr(b, name)), name
    assert a.item_factors_.dtype == b.item_factors_.dtype


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"dtype": "float64", "learning_rate": "adaptive", "biased": False},
        {"early_stopping": True, "max_iter": 8, "learning_rate": "constant", "eta0": 0.01},
        {"algorithm": "funk", "learning_rate": "invscaling"},
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_round_trip_is_exact_and_trains_on_identically(ratings, tmp_path, params):
    model = FunkSVD(**{"n_components": 3, "max_iter": 4, "random_state": 0, **params})
    model.fit(ratings)
    path = tmp_path / "model.npz"
    save_model(path, model)
    loaded, mapping = load_model(path)
    assert mapping is None
    assert_same_model(loaded, model)
    np.testing.assert_array_equal(loaded.predict(ratings), model.predict(ratings))
    np.testing.assert_array_equal(loaded.transform(ratings), model.transform(ratings))
    # the learning-rate schedule is kept: partial_fit and warm_start go on the same way
    for method in ("partial_fit", "warm_start"):
        a, b = copy.deepcopy(model), copy.deepcopy(loaded)
        for estimator in (a, b):
            if method == "partial_fit":
                estimator.partial_fit(ratings)
            else:
                estimator.set_params(warm_start=True, max_iter=2).fit(ratings)
        assert_same_model(a, b)


@pytest.mark.parametrize(
    "users, items",
    [(np.arange(60) * 7, np.arange(40) + 10**12), ([f"u{j}" for j in range(60)], np.arange(40))],
)
def test_mapping_round_trip(fitted, tmp_path, users, items):
    path = tmp_path / "model.npz"
    save_model(path, fitted, IdMapping(users, items), extra={"note": np.array(["hi"])})
    _, mapping, extra = read_model_file(path)
    assert mapping.user_ids.tolist() == list(users) and mapping.item_ids.tolist() == list(items)
    assert extra["note"].tolist() == ["hi"]


def test_what_cannot_be_saved_is_refused(fitted, tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_model(tmp_path / "m.npz", FunkSVD())
    objects = IdMapping([("a", j) for j in range(60)], np.arange(40))
    with pytest.raises(ValueError, match="user ids of dtype object cannot be saved"):
        save_model(tmp_path / "m.npz", fitted, objects)
    with pytest.raises(ValueError, match="extra array 'x'"):
        save_model(tmp_path / "m.npz", fitted, extra={"x": np.array([{}])})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------- refused files
class RunsCode:
    """A pickle payload that creates a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib zlib", "joblib gzip", "in npz"])
def test_a_pickle_is_never_unpickled(tmp_path, how):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.joblib"
    payload = RunsCode(marker)
    if how == "pickle":
        path.write_bytes(pickle.dumps(payload))
    elif how.startswith("joblib"):
        compress = {"joblib": 0, "joblib zlib": 3, "joblib gzip": ("gzip", 3)}[how]
        joblib.dump(payload, path, compress=compress)
    else:  # an object array inside a real archive, beside valid-looking metadata
        meta = json.dumps({"format": "funksgd-model", "version": 1}).encode()
        with open(path, "wb") as f:
            np.savez(f, __metadata__=np.frombuffer(meta, np.uint8),
                     **{"model/item_factors_": np.array([payload], dtype=object)})  # fmt: skip
    with pytest.raises(ValueError, match="pickle|not a readable funksgd model file"):
        load_model(path)
    assert not marker.exists()


def archive(tmp_path, fitted, edit):
    """A model file of ``fitted`` whose arrays and metadata ``edit`` changes."""
    arrays, metadata = _model_file._estimator_to_arrays(fitted)
    metadata.update(format="funksgd-model", version=1, funksgd_version="x")
    edit(arrays, metadata)
    arrays["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def drop(name):
    return lambda arrays, meta: arrays.pop(name)


def set_array(name, value):
    return lambda arrays, meta: arrays.__setitem__(name, value)


def set_meta(*keys, value):
    def edit(arrays, meta):
        for key in keys[:-1]:
            meta = meta[key]
        meta[keys[-1]] = value

    return edit


BROKEN = [
    (set_meta("version", value=2), "format version 2.*Upgrade funksgd"),
    (set_meta("version", value="1"), "format version '1'"),
    (set_meta("format", value="other"), "format is not 'funksgd-model'"),
    (drop("model/item_factors_"), "item_factors_ is missing"),
    (drop("model/user_bias_"), "user_bias_ is missing"),
    (set_array("model/item_factors_", np.ones((40, 4), dtype=np.int64)), "finite float32"),
    (set_array("model/item_factors_", np.full((40, 4), "x")), "finite float32"),
    (set_array("model/user_factors_", np.full((60, 4), np.nan, np.float32)), "finite float32"),
    (set_array("model/user_factors_", np.ones(60, np.float32)), "must be 2-D"),
    (set_array("model/user_factors_", np.ones((60, 3), np.float32)), "factors disagree"),
    (set_array("model/user_factors_", np.ones((60, 4), np.float64)), "factors disagree"),
    (set_array("model/item_bias_", np.ones(39, np.float32)), "biases"),
    (set_meta("params", "n_components", value=5), "factors disagree"),
    (set_meta("params", "n_components", value="4"), "n_components"),
    (set_meta("params", "nonsense", value=1), "nonsense"),
    (set_meta("params", value=[1, 2]), "params is missing or has the wrong type"),
    (set_meta("attributes", "n_features_in_", value=39), "n_features_in_"),
    (set_meta("attributes", "n_iter_", value="5"), "n_iter_ is missing or has the wrong type"),
    (set_meta("attributes", "loss_curve_", value=["a"]), "loss_curve_ has the wrong type"),
    (set_meta("attributes", "t_", value=True), "t_ has the wrong type"),
    (set_meta("attributes", "global_mean_", value=float("nan")), "global_mean_ .* not finite"),
    (lambda arrays, meta: meta["attributes"].pop("global_mean_"), "global_mean_ is missing"),
    (set_meta("schedule", "scale", value=-1), "schedule scale"),
    (set_meta("fitted", "alpha", value=0), "alpha"),
    (drop("model/schedule_item_grad_sq"), "only one of the two AdaGrad"),
    (set_array("model/schedule_user_grad_sq", np.ones(3, np.float32)), "AdaGrad accumulators"),
    (set_array("mapping/user_ids", np.arange(60)), "only one of the user and item ids"),
]


@pytest.mark.parametrize("edit, match", BROKEN)
def test_inconsistent_files_are_refused_clearly(fitted, tmp_path, edit, match):
    path = archive(tmp_path, fitted, edit)
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_files_that_are_not_model_files(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path)
    cases = {
        "empty": b"",
        "text": b"1\t2\t3\n",
        "npy": b"\x93NUMPY\x01\x00",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="not a funksgd model file"):
            load_model(tmp_path / name)
    good = tmp_path / "good.npz"
    save_model(good, fitted)
    (tmp_path / "truncated").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable funksgd model file"):
        load_model(tmp_path / "truncated")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(ValueError, match="not a funksgd model file"):
        load_model(tmp_path / "other.zip")
    np.savez(tmp_path / "plain.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="no metadata"):
        load_model(tmp_path / "plain.npz")


# ------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_previous_file(fitted, tmp_path, monkeypatch, error):
    path = tmp_path / "model.npz"
    save_model(path, fitted)
    before = path.read_bytes()
    real_savez = np.savez

    def fail_midway(file, **arrays):
        real_savez(io.BytesIO(), **arrays)
        file.write(b"PK\x03\x04 half a file")
        raise error

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(type(error)):
        save_model(path, fitted)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left
    monkeypatch.undo()
    load_model(path)


def test_the_file_size_limit_keeps_the_previous_file(fitted, tmp_path):
    # disk full for real: RLIMIT_FSIZE in a child process makes the write fail with EFBIG
    path = tmp_path / "model.npz"
    save_model(path, fitted)
    before = path.read_bytes()
    code = f"""
import resource, signal, sys
import numpy as np
from funksgd import FunkSVD
from funksgd._model_file import save_model
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
X = np.random.default_rng(0).random((200, 300))
model = FunkSVD(n_components=20, max_iter=1, random_state=0).fit(X)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
try:
    save_model({str(path)!r}, model)
except OSError as error:
    print("refused:", error)
    sys.exit(3)
"""
    child = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert child.returncode == 3, child.stderr
    assert "File too large" in child.stdout
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_written_files_follow_the_umask(fitted, tmp_path):
    old = os.umask(0o027)
    try:
        save_model(tmp_path / "model.npz", fitted)
    finally:
        os.umask(old)
    assert (tmp_path / "model.npz").stat().st_mode & 0o777 == 0o640


def test_loaded_model_predicts_finitely_on_new_users(fitted, tmp_path, ratings):
    save_model(tmp_path / "model.npz", fitted)
    loaded, _ = load_model(tmp_path / "model.npz")
    new = sp.csr_array(ratings[:3].toarray())
    np.testing.assert_array_equal(loaded.transform(new), fitted.transform(new))
    items, scores = loaded.recommend(users=[0, 1], X=ratings[[0, 1]], n=5)
    assert np.array_equal(items, fitted.recommend(users=[0, 1], X=ratings[[0, 1]], n=5)[0])
