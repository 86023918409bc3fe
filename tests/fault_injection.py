"""Fault injection: does the test suite catch the bugs that matter? Run by hand, not by pytest.

Each named fault below is a small, realistic bug. For each, the script copies the
repository's ``funksgd/`` (with its built kernels) and ``tests/`` into a temporary
folder, injects the fault there through a ``sitecustomize`` module on ``PYTHONPATH``
(so pytest, and the CLI and fuzzing child processes the tests start, all import the
faulty package), and runs ``pytest -x -q -p no:cacheprovider -m "not slow"`` on each
test file relevant to that fault, one file at a time, with a timeout. It prints, per
fault, the tests that failed; a fault no test catches is reported as MISSED and the
script exits with status 1.

    python setup.py build_ext --inplace -q
    python tests/fault_injection.py                # every fault (about 10 minutes, 2 cores)
    python tests/fault_injection.py --list
    python tests/fault_injection.py adagrad-skips-1pct recommend-new-users-keeps-rated

The faults are applied by wrapping functions (kernels included: an extension
module's functions are plain attributes), never by editing the package in place.
Importing this module has no side effects (pytest's ``--doctest-modules`` imports it).
"""

import argparse
import functools
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = {}  # name -> (description, test files, function applying the fault)


def fault(name, description, files):
    def register(apply):
        FAULTS[name] = (description, files, apply)
        return apply

    return register


# ------------------------------------------------------------------------ helpers
def _kernel_modules():
    from funksgd import _kernels

    return [m for m in (_kernels.generic, _kernels.avx2) if m is not None]


def _wrap(owner, name, make_wrapper):
    original = getattr(owner, name)
    setattr(owner, name, functools.wraps(original)(make_wrapper(original)))


# positions of the arguments of the epoch kernels (they are called positionally)
EPOCH_ARGS = {
    # name: (position of the first of the per-rating arrays, of block_ptr, of n_threads)
    "sgd_epoch": dict(ratings=(0, 1, 2), block_ptr=3, schedule=4, P=5, n_threads=13),
    "adagrad_epoch": dict(ratings=(0, 1, 2), block_ptr=3, schedule=4, P=5, n_threads=15),
    "funk_epoch": dict(ratings=(0, 1, 2, 3), block_ptr=4, schedule=5, P=7, n_threads=19),
}


def _resample_ratings(kernel_name, share_mode):
    """A wrapper making kernel ``kernel_name`` skip ('skip') or visit twice ('double') every
    100th rating of the epoch, its cell's boundaries adjusted."""
    import numpy as np

    where = EPOCH_ARGS[kernel_name]

    def make(original):
        def wrapper(*args):
            args = list(args)
            block_ptr = np.asarray(args[where["block_ptr"]])
            n = int(block_ptr[-1])
            picked = np.arange(n) % 100 == 0
            repeats = np.where(picked, 0 if share_mode == "skip" else 2, 1)
            cell = np.searchsorted(block_ptr, np.arange(n), side="right") - 1
            counts = np.bincount(np.repeat(cell, repeats), minlength=len(block_ptr) - 1)
            new_ptr = np.zeros(len(block_ptr), dtype=np.int64)
            np.cumsum(counts, out=new_ptr[1:])
            args[where["block_ptr"]] = new_ptr
            for pos in where["ratings"]:
                args[pos] = np.ascontiguousarray(np.repeat(np.asarray(args[pos][:n]), repeats))
            return original(*args)

        return wrapper

    for module in _kernel_modules():
        _wrap(module, kernel_name, make)


def _thread_dependent(kernel_names):
    """Kernels whose result changes in the last bits when a second thread really runs (a
    race): a stratum of at least 2 x MIN_RATINGS_PER_THREAD ratings and n_threads > 1."""
    import numpy as np

    def make_for(kernel_name):
        where = EPOCH_ARGS[kernel_name]

        def make(original):
            def wrapper(*args):
                result = original(*args)
                per_stratum = int(args[where["block_ptr"]][-1]) // args[where["schedule"]].shape[0]
                if min(args[where["n_threads"]], per_stratum // 20000) > 1:
                    P = args[where["P"]]
                    P[0, 0] = np.nextafter(P[0, 0], np.inf) * (1 + 1e-5)
                return result

            return wrapper

        return make

    for module in _kernel_modules():
        for name in kernel_names:
            _wrap(module, name, make_for(name))


def _schedule_rate_off(learning_rate, factor=1.1):
    from funksgd import _engine

    if learning_rate == "adagrad":  # AdaGrad's base rate reaches the kernel as kernel_rate
        _wrap(
            _engine.Schedule,
            "kernel_rate",
            lambda original: (
                lambda self, eta, per_row: original(self, eta, per_row) * (factor if per_row else 1)
            ),
        )
        return

    def make(original):
        def rate(self, settings):
            value = original(self, settings)
            return value * factor if settings.learning_rate == learning_rate else value

        return rate

    _wrap(_engine.Schedule, "rate", make)


# ------------------------------------------------------------------------ the faults
KERNEL_TESTS = ["tests/test_sgd.py", "tests/test_engine.py"]
for _kernel in EPOCH_ARGS:
    for _mode, _what in (("skip", "skips"), ("double", "double-counts")):
        fault(
            f"{_kernel.split('_')[0]}-{_mode}s-1pct",
            f"{_kernel} {_what} every 100th rating",
            KERNEL_TESTS,
        )(functools.partial(_resample_ratings, _kernel, _mode))

for _rate in ("constant", "invscaling", "adaptive", "adagrad"):
    fault(
        f"rate-{_rate}-x1.1",
        f'learning_rate="{_rate}": the rate is 1.1 times too large',
        ["tests/test_engine.py", "tests/test_parameters.py"],
    )(functools.partial(_schedule_rate_off, _rate))

fault(
    "threads-simultaneous",
    "sgd_epoch and adagrad_epoch: results depend on the number of threads",
    ["tests/test_sgd.py", "tests/test_engine.py", "tests/test_funk_svd.py"],
)(functools.partial(_thread_dependent, ["sgd_epoch", "adagrad_epoch"]))

fault(
    "threads-funk",
    'funk_epoch (algorithm="funk"): results depend on the number of threads',
    ["tests/test_sgd.py", "tests/test_engine.py", "tests/test_funk_svd.py"],
)(functools.partial(_thread_dependent, ["funk_epoch"]))


@fault(
    "fold-in-5pct",
    "the fold-in's user factors (and biases) are 5% too large",
    ["tests/test_funk_svd.py", "tests/test_parameters.py"],
)
def _fold_in_off():
    from funksgd import _inference

    def make(original):
        def solve_users(*args, **kwargs):
            W, bias = original(*args, **kwargs)
            return W * W.dtype.type(1.05), bias * bias.dtype.type(1.05)

        return solve_users

    _wrap(_inference, "solve_users", make)


def _recommend_keeps_rated(path):
    from funksgd import _inference

    def make(original):
        signature = inspect.signature(original)

        def recommend(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            if (bound.arguments["users"] is None) == (path == "new"):
                bound.arguments["exclude_rated"] = False
            return original(*bound.args, **bound.kwargs)

        return recommend

    _wrap(_inference, "recommend", make)


fault(
    "recommend-known-users-keeps-rated",
    "recommend(users, X): the items rated in X are not left out",
    ["tests/test_funk_svd.py", "tests/test_cli.py", "tests/test_cli_options.py"],
)(functools.partial(_recommend_keeps_rated, "known"))
fault(
    "recommend-new-users-keeps-rated",
    "recommend(X=X) for new users: the items rated in X are not left out",
    ["tests/test_funk_svd.py", "tests/test_cli.py", "tests/test_cli_options.py"],
)(functools.partial(_recommend_keeps_rated, "new"))


def _reader_drops(which):
    from funksgd.datasets import _readers

    part = slice(1, None) if which == "first" else slice(None, -1)

    def make(original):
        def parse_files(*args, **kwargs):
            result = original(*args, **kwargs)
            if len(result) == 3:  # the three columns
                return tuple(c[part] for c in result)
            return (tuple(c[part] for c in result[0]), *result[1:])  # (columns, digests)

        return parse_files

    if hasattr(_readers, "_parse_files"):
        _wrap(_readers, "_parse_files", make)
    else:  # the readers split by job: the parsing in datasets/_parsing.py
        from funksgd.datasets import _parsing

        _wrap(_parsing, "parse_files", make)


for _which in ("first", "last"):
    fault(
        f"reader-drops-{_which}-line",
        f"read_ratings loses the {_which} rating of the files",
        ["tests/test_datasets.py", "tests/test_cli.py", "tests/test_cli_options.py"],
    )(functools.partial(_reader_drops, _which))


@fault(
    "splitter-leaks-a-test-rating",
    "split_by_mask also puts the first test rating into the training part",
    ["tests/test_model_selection.py", "tests/test_funk_svd.py"],
)
def _splitter_leaks():
    import numpy as np
    import scipy.sparse as sp

    from funksgd import _inference, model_selection

    def make(original):
        def split_by_mask(X, in_test):
            leaked = np.flatnonzero(in_test)[:1]
            X_train, X_test = original(X, in_test)
            if len(leaked):
                row = np.searchsorted(X.indptr, leaked, side="right") - 1
                extra = sp.csr_array((X.data[leaked], (row, X.indices[leaked])), shape=X.shape)
                X_train = sp.csr_array(X_train + extra)
                X_train.sort_indices()
            return X_train, X_test

        return split_by_mask

    _wrap(model_selection, "split_by_mask", make)
    _inference.split_by_mask = model_selection.split_by_mask


@fault(
    "metric-cutoff-off-by-one",
    "the ranking metrics of funksgd.metrics look at k + 1 items instead of k",
    ["tests/test_metrics.py"],
)
def _metric_off_by_one():
    import funksgd

    try:
        from funksgd import metrics
    except ImportError:
        metrics = None
    # (an editable install of another checkout can lend its metrics.py: not this one's)
    if metrics is None or Path(metrics.__file__).parent != Path(funksgd.__file__).parent:
        raise SkipFault("funksgd/metrics.py does not exist on this branch") from None
    wrapped = 0
    for name, function in vars(metrics).items():
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        signature = inspect.signature(function)
        if "k" not in signature.parameters:
            continue

        def make(original, signature=signature):
            def wrapper(*args, **kwargs):
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                if bound.arguments["k"] is not None:
                    bound.arguments["k"] += 1
                return original(*bound.args, **bound.kwargs)

            return wrapper

        _wrap(metrics, name, make)
        wrapped += 1
    if not wrapped:
        raise SkipFault("funksgd.metrics has no public function with a parameter k")


class SkipFault(Exception):
    """The fault cannot apply to this checkout (the code it breaks is absent)."""


# ------------------------------------------------------------------------ the runner
SITECUSTOMIZE = """\
import os, sys
sys.path.insert(0, os.environ["FUNKSGD_FAULT_DIR"])
import fault_injection
fault_injection.apply(os.environ["FUNKSGD_FAULT"])
"""


def apply(name):
    """Apply fault ``name`` in this process (called by the injected sitecustomize)."""
    if name == "none":
        return
    try:
        FAULTS[name][2]()
    except SkipFault:
        pass  # the runner found this out beforehand and reports it


def can_apply(name):
    """None if fault ``name`` applies to this checkout, else why not (run in a child)."""
    code = (
        "import fault_injection as f\n"
        f"try:\n    f.FAULTS[{name!r}][2]()\nexcept f.SkipFault as e:\n    print(e)"
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'tests'}")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        return f"could not apply: {out.stderr.strip().splitlines()[-1]}"
    return out.stdout.strip() or None


def make_copy(workdir):
    """Copy funksgd/ (built kernels included), tests/ and the pytest configuration."""
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "*.html", ".hypothesis")
    shutil.copytree(ROOT / "funksgd", workdir / "funksgd", ignore=ignore)
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    inject = workdir / "_inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    shutil.copy(Path(__file__), inject / "fault_injection.py")
    return inject


def run_file(workdir, inject, name, test_file, timeout):
    """Failed test ids of ``test_file`` under fault ``name`` (pytest -x: the first one)."""
    if not (workdir / test_file).exists():
        return None  # not on this branch
    env = dict(
        os.environ,
        PYTHONPATH=f"{workdir}:{inject}",
        FUNKSGD_FAULT=name,
        FUNKSGD_FAULT_DIR=str(inject),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("CI", None)
    command = [sys.executable, "-m", "pytest", test_file, "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-m", "not slow", "-rf", "--no-header", "-o", "addopts="]
    try:
        out = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return [f"{test_file}: TIMEOUT after {timeout} s"]
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out.stdout, flags=re.M)
    if out.returncode not in (0, 1, 5) or (out.returncode == 1 and not failed):
        failed.append(f"{test_file}: pytest exit status {out.returncode}")
    return failed


def _short(test_id, width=40):
    """A test id with a long parameter part cut short (and no newlines)."""
    name, bracket, params = test_id.partition("[")
    params = params.replace("\n", "\\n")
    if len(params) > width:
        params = params[:width] + "...]"
    return name + bracket + params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", help="names of faults to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per test file")
    parser.add_argument("--baseline", action="store_true", help="also run without a fault")
    args = parser.parse_args(argv)
    if args.list:
        for name, (description, files, _) in FAULTS.items():
            print(f"{name:36} {description}  [{', '.join(files)}]")
        return 0
    names = args.faults or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown faults: {unknown}; see --list")
    if args.baseline:
        names = ["none", *names]
    rows, missed = [], []
    with tempfile.TemporaryDirectory(prefix="funksgd-faults-") as tmp:
        workdir = Path(tmp)
        inject = make_copy(workdir)
        for name in names:
            start = time.perf_counter()
            files = sorted({f for _, fs, _ in FAULTS.values() for f in fs})
            files = files if name == "none" else FAULTS[name][1]
            why_not = None if name == "none" else can_apply(name)
            if why_not:
                rows.append((name, f"skipped: {why_not}", 0.0))
                print(f"{name}: skipped ({why_not})", flush=True)
                continue
            if not any((ROOT / f).exists() for f in files):
                rows.append((name, f"skipped: none of {', '.join(files)} exists", 0.0))
                print(f"{name}: skipped (no test file)", flush=True)
                missed.append(name)
                continue
            failed = []
            for test_file in files:
                result = run_file(workdir, inject, name, test_file, args.timeout)
                failed += result or []
            seconds = time.perf_counter() - start
            caught = "<br>".join(f"`{_short(t)}`" for t in failed) if failed else "**MISSED**"
            if name == "none":
                caught = "all pass" if not failed else "FAIL: " + caught
            elif not failed:
                missed.append(name)
            rows.append((name, caught, seconds))
            verdict = ", ".join(failed) or ("all pass" if name == "none" else "MISSED")
            print(f"{name} ({seconds:.0f} s): {verdict}", flush=True)
    print("\n| Fault | Failing tests (first per file, pytest -x) | Seconds |")
    print("| --- | --- | --- |")
    for name, caught, seconds in rows:
        print(f"| `{name}` | {caught} | {seconds:.0f} |")
    if missed:
        print(f"\nMISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
