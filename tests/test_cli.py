"""The funksgd command line, end to end in a subprocess (and in-process for bench)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from funksgd import _cli, train_test_split_ratings
from funksgd.datasets import make_ratings

from .conftest import ML100K

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


def test_bench_runs_the_checkout_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_cli, "_BENCH_SCRIPT", tmp_path / "benchmarks" / "bench_peers.py")
    assert _cli.main(["bench"]) == 2
    assert "source checkout" in capsys.readouterr().err
    script = tmp_path / "benchmarks" / "bench_peers.py"
    script.parent.mkdir()
    script.write_text("def main(argv):\n    print('bench got', argv)\n    return 0\n")
    assert _cli.main(["bench", "--quick", "--size", "10"]) == 0
    assert "bench got ['--quick', '--size', '10']" in capsys.readouterr().out


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
