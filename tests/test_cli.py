"""The funksgd command line, end to end in a subprocess (and in-process for bench)."""

import io
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from funksgd import _cli, train_test_split_ratings
from funksgd.datasets import make_ratings

from .conftest import ML100K, default_sigint

REPO = Path(__file__).resolve().parents[1]


def run(*args, cwd):
    """``python -m funksgd ARGS`` with this checkout importable and a private cache."""
    env = dict(os.environ, FUNKSGD_CACHE_DIR=str(Path(cwd) / "cache"), OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "funksgd", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def scores(stdout):
    """{model name: (RMSE, MAE)} from the table that demo and evaluate print."""
    rows = re.findall(r"^(FunkSVD|bias only \(baseline\))\s+([\d.]+)\s+([\d.]+)$", stdout, re.M)
    return {name: (float(rmse), float(mae)) for name, rmse, mae in rows}


def assert_clean_error(result, *patterns):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for pattern in patterns:
        assert re.search(pattern, result.stderr), result.stderr


def write_u_data(path, X):
    """Ratings as MovieLens u.data lines, ids starting at 1 as there."""
    coo = X.tocoo()
    rows = zip(coo.row + 1, coo.col + 1, coo.data.astype(int), strict=True)
    lines = (f"{u}\t{i}\t{r}\t0\n" for u, i, r in rows)
    path.write_text("".join(lines))
    return path


def test_demo(tmp_path):
    result = run("demo", "--n-jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "epoch 1: training RMSE" in out and "epoch 20: training RMSE" in out
    assert re.search(r"[\d.]+M ratings/s", out)
    found = scores(out)
    assert found["FunkSVD"][0] < found["bias only (baseline)"][0] - 0.05
    assert len(re.findall(r"^  user \d+ \(\d+ ratings\): items", out, re.M)) == 3


@pytest.fixture(scope="module")
def generated_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generated")
    X = make_ratings(n_users=400, n_items=150, n_ratings=12_000, random_state=0)
    train, test = train_test_split_ratings(X, test_size=0.2, random_state=0)
    return tmp, write_u_data(tmp / "train.data", train), write_u_data(tmp / "test.data", test)


def test_fit_evaluate_recommend(generated_files):
    tmp, train, test = generated_files
    model = tmp / "model.joblib"
    fitted = run("fit", train, "-o", model, "--format", "tab", "--n-components", "10",
                 "--max-iter", "30", cwd=tmp)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    assert "epoch 30: training RMSE" in fitted.stdout and model.is_file()
    assert re.search(r"Read 9,600 ratings of 400 users x 150 items", fitted.stdout)

    evaluated = run("evaluate", model, test, "--format", "tab", cwd=tmp)
    assert evaluated.returncode == 0, evaluated.stderr
    found = scores(evaluated.stdout)
    assert found["FunkSVD"][0] < found["bias only (baseline)"][0]
    assert all(0 < mae < rmse < 1.5 for rmse, mae in found.values())

    rated = {int(line.split("\t")[1]) for line in train.read_text().splitlines()
             if line.startswith("5\t")}  # fmt: skip
    recommended = run("recommend", model, "5", "-n", "4", cwd=tmp)
    assert recommended.returncode == 0, recommended.stderr
    items = [int(m) for m in re.findall(r"^\s+\d\. item\s+(\d+)", recommended.stdout, re.M)]
    assert len(items) == 4 and not rated & set(items)
    assert f"({len(rated)} rated items left out)" in recommended.stdout


def test_clear_errors_in_a_subprocess(tmp_path):
    result = run("fit", tmp_path / "absent.csv", "-o", "m.joblib", cwd=tmp_path)
    assert_clean_error(result, r"^funksgd fit: error: no such ratings file.*absent\.csv$")


def test_clear_errors(generated_files, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    tmp, train, _ = generated_files

    def error(*args):
        assert _cli.main([str(arg) for arg in args]) == 2
        return capsys.readouterr().err

    garbage = tmp_path / "ratings.csv"
    garbage.write_text("userId,movieId,rating\n1,2,4\n1,two,5\n")
    assert ("ratings.csv, line 3: expected 'userId,movieId,rating', got '1,two,5' (the item id "
            "is not an integer)") in error("fit", garbage, "-o", "m")  # fmt: skip
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    assert re.search("cannot tell the format.*--format", error("fit", unknown, "-o", "m"))
    assert "no such model file" in error("evaluate", tmp_path / "none.joblib", train)
    assert "is not a funksgd model file (not a .npz archive)" in error("recommend", train, "1")
    model = tmp_path / "model.joblib"
    assert _cli.main(["fit", str(train), "-o", str(model), "--max-iter", "1", "-q"]) == 0
    assert "unknown user id 99999" in error("recommend", model, "99999")
    assert "unknown user id 'ann'" in error("recommend", model, "ann")
    with pytest.raises(SystemExit, match="2"):  # argparse: missing arguments
        _cli.main(["fit"])
    assert "required" in capsys.readouterr().err


def test_bench_is_not_a_subcommand(capsys):
    # the side-by-side benchmark is benchmarks/bench_peers.py of a checkout, not the package's
    with pytest.raises(SystemExit, match="2"):
        _cli.main(["bench"])
    assert "invalid choice: 'bench'" in capsys.readouterr().err


def test_movielens_100k(tmp_path):
    if not (ML100K / "u1.base").exists():
        pytest.skip(f"MovieLens-100k not found at {ML100K}")
    model = tmp_path / "ml.joblib"
    fitted = run("fit", ML100K / "u1.base", "-o", model, "--n-components", "100", "--max-iter",
                 "20", "-q", cwd=tmp_path)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    evaluated = run("evaluate", model, ML100K / "u1.test", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    # u1.test rates 32 items that no one rates in u1.base: those ratings are skipped.
    assert "19,968 scored, 32 skipped" in evaluated.stdout
    found = scores(evaluated.stdout)
    assert found["FunkSVD"][0] < found["bias only (baseline)"][0] < 0.97
    recommended = run("recommend", model, "196", "--items", ML100K / "u.item", cwd=tmp_path)
    assert recommended.returncode == 0, recommended.stderr
    titles = re.findall(r"^\s+\d+\. item\s+\d+\s+[\d.]+\s+(.+\(\d{4}\))$", recommended.stdout, re.M)
    assert len(titles) == 10
    users = np.loadtxt(ML100K / "u1.base", dtype=int, usecols=0)
    assert 196 in users


# ----------------------------------------------------------------------------- issue 16
def fit_small(train, model, cwd, *more):
    fitted = run("fit", train, "-o", model, "--format", "tab", "--n-components", "3",
                 "--max-iter", "2", "--no-cache", "-q", *more, cwd=cwd)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    return model


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["recommend", "evaluate"])
def test_a_pickled_model_is_refused_without_running_it(generated_files, tmp_path, command):
    import joblib

    _, _, test = generated_files
    marker = tmp_path / "code-ran"
    model = tmp_path / "model.joblib"
    joblib.dump({"model": RunsCode(marker), "mapping": None}, model)
    args = [test, "--format", "tab"] if command == "evaluate" else ["5"]
    result = run(command, model, *args, cwd=tmp_path)
    assert_clean_error(result, r"is a pickle .*can run any code.*fit the model again")
    assert not marker.exists()


def in_process(capsys, *args):
    """(exit status, stdout, stderr) of ``funksgd ARGS`` run by _cli.main in this process."""
    status = _cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_model_files_that_are_not_from_fit_are_refused_clearly(generated_files, tmp_path,
                                                               capsys):  # fmt: skip
    from funksgd import FunkSVD
    from funksgd._model_file import save_model

    _, train, _ = generated_files
    estimator = FunkSVD(n_components=2, max_iter=1).fit(make_ratings(20, 10, 60, random_state=0))
    save_model(tmp_path / "bare.npz", estimator)  # no ids, no baseline, no rated items
    status, _, err = in_process(capsys, "recommend", tmp_path / "bare.npz", "1")
    assert status == 2 and "not one written by 'funksgd fit': it holds no user and item" in err
    good = fit_small(train, tmp_path / "good.npz", tmp_path)
    with np.load(good) as archive:
        arrays = dict(archive)
    for name, value in [("extra/rated_indptr", None), ("extra/baseline_user_bias", None),
                        ("extra/rated_indices", np.array([10**6])),
                        ("model/item_factors_", np.array(["a"]))]:  # fmt: skip
        broken = dict(arrays)
        broken.pop(name) if value is None else broken.__setitem__(name, value)
        path = tmp_path / "broken.npz"
        with open(path, "wb") as f:
            np.savez(f, **broken)
        status, _, err = in_process(capsys, "recommend", path, "1")
        assert status == 2 and name.split("/")[1] in err, err
        assert "error: rated" not in err and len(err.splitlines()) == 1  # before: a KeyError


def test_evaluate_accepts_the_duplicates_option_it_suggests(generated_files, tmp_path, capsys,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    _, train, test = generated_files
    model = tmp_path / "model.npz"
    assert _cli.main(["fit", str(train), "-o", str(model), "--max-iter", "2", "-q"]) == 0
    twice = tmp_path / "twice.data"
    twice.write_text(test.read_text() + test.read_text().splitlines()[0] + "\n")
    status, _, err = in_process(capsys, "evaluate", model, twice, "--format", "tab")
    assert status == 2 and "more than once" in err and "--duplicates last" in err
    for how in ("last", "mean"):
        status, out, err = in_process(capsys, "evaluate", model, twice, "--format", "tab",
                                      "--duplicates", how)  # fmt: skip
        assert status == 0, err
        assert scores(out)["FunkSVD"][0] < 1.5


@pytest.mark.parametrize("sizes", [(1, 1, 1), (2, 2, 2), (3, 1, 3), (5, 4, 10), (1, 3, 3)])
def test_demo_of_tiny_sizes(tmp_path, sizes):
    # before: "slice step cannot be zero" below 6 users
    n_users, n_items, n_ratings = map(str, sizes)
    result = run("demo", "--n-users", n_users, "--n-items", n_items, "--n-ratings", n_ratings,
                 "--max-iter", "2", "--n-jobs", "1", cwd=tmp_path)  # fmt: skip
    if result.returncode == 2:
        assert_clean_error(result, "at least 2")  # one rating cannot be split
        return
    assert result.returncode == 0, result.stderr
    assert "-1" not in result.stdout.split("Top 5")[1]  # no padding shown as items


def test_a_closed_pipe_does_not_lose_the_model(generated_files, tmp_path):
    # 'funksgd fit ... | head -1': the reader goes away, the fit writes its model anyway
    _, train, _ = generated_files
    model = tmp_path / "model.npz"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "funksgd", "fit", str(train), "-o", str(model), "--format", "tab",
         "--n-components", "3", "--max-iter", "20", "--no-cache"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    child.stdout.close()  # before it printed anything: every line it prints hits the closed pipe
    # (block-buffered: the first write to the pipe may come only with the flush at the end)
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=300) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert model.is_file() and run("recommend", model, "5", cwd=tmp_path).returncode == 0
    # a few buffered lines: the pipe breaks only in the last flush, which must not complain
    env = {name: value for name, value in env.items() if name != "PYTHONUNBUFFERED"}
    short = subprocess.Popen([sys.executable, "-m", "funksgd", "recommend", str(model), "5"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    short.stdout.close()
    stderr = short.stderr.read().decode()
    assert short.wait(timeout=300) == 0 and stderr == "", stderr


def test_pipe_safe_stream_swallows_broken_pipes():
    class Broken(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    stream = _cli._PipeSafe(Broken())
    assert stream.write("hello") == 5
    stream.flush()


def test_ctrl_c_during_fit_is_one_line(tmp_path):
    ratings = tmp_path / "u.data"
    write_u_data(ratings, make_ratings(n_users=3000, n_items=1000, n_ratings=150_000,
                                       random_state=0))  # fmt: skip
    model = tmp_path / "model.npz"
    model.write_bytes(b"the previous model")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "funksgd", "fit", str(ratings), "-o", str(model), "--no-cache",
         "--max-iter", "1000", "--n-components", "20", "--n-jobs", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    for line in child.stdout:
        if "epoch 1:" in line:
            break
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "funksgd fit: interrupted"
    assert model.read_bytes() == b"the previous model"


def test_a_failed_model_write_keeps_the_previous_model(generated_files, tmp_path):
    # the disk fills up (here: a file-size limit) while the model is written
    _, train, _ = generated_files
    model = fit_small(train, tmp_path / "model.npz", tmp_path)
    before = model.read_bytes()

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="2")
    result = subprocess.run(
        [sys.executable, "-m", "funksgd", "fit", str(train), "-o", str(model), "--format",
         "tab", "--n-components", "30", "--max-iter", "2", "--no-cache", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=limit_file_size,
    )  # fmt: skip
    assert_clean_error(result, "File too large")
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_columns_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FUNKSGD_CACHE_DIR", str(tmp_path / "cache"))
    ratings = tmp_path / "stars.csv"
    rows = [f"9,{(u * i) % 5 + 1},{u},{i}" for u in range(1, 30) for i in range(1, 20)]
    ratings.write_text("when,stars,who,what\n" + "\n".join(rows) + "\n")
    model = tmp_path / "model.npz"
    status, _, err = in_process(capsys, "fit", ratings, "-o", model, "-q")
    assert status == 2 and "has no user column" in err and "--columns" in err
    status, _, err = in_process(capsys, "fit", ratings, "-o", model, "-q", "--columns",
                                "who,what,stars", "--max-iter", "2")  # fmt: skip
    assert status == 0, err
    status, out, err = in_process(capsys, "evaluate", model, ratings, "--columns", "2,3,1")
    assert status == 0 and "551 ratings; 551 scored." in out, err
    with pytest.raises(SystemExit, match="2"):
        _cli.main(["fit", str(ratings), "-o", str(model), "--columns", "who,what"])
    assert "USER,ITEM,RATING" in capsys.readouterr().err


def test_out_of_memory_is_one_line(monkeypatch, capsys, tmp_path):
    def too_big(args):
        raise MemoryError("Unable to allocate 8.00 TiB for an array")

    monkeypatch.setattr(_cli, "_demo", too_big)
    status, _, err = in_process(capsys, "demo")
    assert status == 2
    assert err == "funksgd demo: error: out of memory (Unable to allocate 8.00 TiB for an array)\n"
