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
import json
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

THREAD_TESTS = ["tests/test_sgd.py", "tests/test_engine.py", "tests/test_funk_svd.py"]
fault(
    "threads-simultaneous",
    "sgd_epoch and adagrad_epoch: results depend on the number of threads",
    THREAD_TESTS,
)(functools.partial(_thread_dependent, ["sgd_epoch", "adagrad_epoch"]))

fault(
    "threads-funk",
    'funk_epoch (algorithm="funk"): results depend on the number of threads',
    THREAD_TESTS,
)(functools.partial(_thread_dependent, ["funk_epoch"]))


@fault(
    "fold-in-5pct",
    "the fold-in's user factors (and biases) are 5% too large",
    ["tests/test_funk_svd.py", "tests/test_inference.py", "tests/test_parameters.py"],
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


RECOMMEND_TESTS = [
    "tests/test_funk_svd.py",
    "tests/test_inference.py",
    "tests/test_recommender.py",
    "tests/test_metrics.py",  # the ranking protocol recommends on both paths
    "tests/test_function_options.py",  # the scorer, on new users' known ratings
    "tests/test_cli_options.py",
]
fault(
    "recommend-known-users-keeps-rated",
    "recommend(users, X): the items rated in X are not left out",
    RECOMMEND_TESTS,
)(functools.partial(_recommend_keeps_rated, "known"))
fault(
    "recommend-new-users-keeps-rated",
    "recommend(X=X) for new users: the items rated in X are not left out",
    RECOMMEND_TESTS,
)(functools.partial(_recommend_keeps_rated, "new"))


def _caller_keeps_rated(module_name, owner_name, method):
    """While ``owner.method`` runs (a path that calls ``FunkSVD.recommend``), every
    ``FunkSVD.recommend`` call it makes keeps the rated items (``exclude_rated=False``)."""
    import importlib

    from funksgd import FunkSVD

    owner = importlib.import_module(module_name)
    owner = getattr(owner, owner_name) if owner_name else owner
    active = []

    def make_caller(original):
        def caller(*args, **kwargs):
            active.append(True)
            try:
                return original(*args, **kwargs)
            finally:
                active.pop()

        return caller

    def make_recommend(original):
        def recommend(self, *args, **kwargs):
            if active:
                kwargs["exclude_rated"] = False
            return original(self, *args, **kwargs)

        return recommend

    _wrap(owner, method, make_caller)
    _wrap(FunkSVD, "recommend", make_recommend)


for _name, _what, _path, _files in (
    ("recommender-recommend", "Recommender.recommend(user_id)",
     ("funksgd._recommender", "Recommender", "recommend"),
     ["tests/test_recommender.py", "tests/test_parameters.py"]),
    ("recommender-recommend-new", "Recommender.recommend_new(ratings)",
     ("funksgd._recommender", "Recommender", "recommend_new"),
     ["tests/test_recommender.py", "tests/test_parameters.py"]),
    ("cli-recommend", "funksgd recommend MODEL USER", ("funksgd._cli", None, "_recommend"),
     ["tests/test_cli_options.py", "tests/test_cli.py"]),
):  # fmt: skip
    fault(f"{_name}-keeps-rated", f"{_what}: the user's rated items are not left out", _files)(
        functools.partial(_caller_keeps_rated, *_path)
    )


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
        [
            "tests/test_datasets.py",
            "tests/test_readers_strict.py",
            "tests/test_cli_options.py",
            "tests/test_cli.py",
        ],  # fmt: skip
    )(functools.partial(_reader_drops, _which))


@fault(
    "splitter-leaks-a-test-rating",
    "split_by_mask also puts the first test rating into the training part",
    ["tests/test_model_selection.py", "tests/test_funk_svd.py", "tests/test_metrics.py"],
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


def _metric_cutoff_off(shift):
    """``_ranking.per_user_metrics`` (behind every ranking metric of ``funksgd.metrics``,
    the list functions and the protocol alike) cut the lists at ``k + shift`` items."""
    import numpy as np

    try:
        from funksgd import _ranking
    except ImportError:
        raise SkipFault("funksgd/_ranking.py does not exist on this branch") from None
    if not hasattr(_ranking, "per_user_metrics"):
        raise SkipFault("funksgd._ranking has no per_user_metrics")

    def make(original):
        def per_user_metrics(items, relevant, k):
            items = np.asarray(items)
            if shift > 0:  # the (k + 1)-th item counted too (-1, no item, when absent)
                pad = np.full((len(items), max(0, k + shift - items.shape[1])), -1, items.dtype)
                return original(np.hstack([items, pad]), relevant, k + shift)
            items = items[:, :k].copy()  # the k-th item not counted
            items[:, k + shift :] = -1
            return original(items, relevant, k)

        return per_user_metrics

    _wrap(_ranking, "per_user_metrics", make)


for _shift, _what in ((1, "k + 1"), (-1, "k - 1")):
    fault(
        f"metric-cutoff-{'plus' if _shift > 0 else 'minus'}-one",
        f"the ranking metrics (funksgd.metrics, _ranking.per_user_metrics) look at {_what} "
        "items instead of k",
        ["tests/test_metrics.py", "tests/test_ranking.py"],
    )(functools.partial(_metric_cutoff_off, _shift))


class SkipFault(Exception):
    """The fault cannot apply to this checkout (the code it breaks is absent)."""


# ------------------------------------------------------------------------ the probe
def probe():
    """Outputs of the code the faults break, as digests: ``--probe`` compares them with
    and without each fault, so that a fault patching code no longer called shows up as
    changing nothing (a fault that changes nothing proves nothing)."""
    import contextlib
    import hashlib
    import io

    import numpy as np
    import scipy.sparse as sp

    import funksgd
    from funksgd import FunkSVD, KFoldRatings, Recommender, _cli, metrics
    from funksgd import train_test_split_ratings as split
    from funksgd.datasets import make_ratings, ratings_to_csr, read_ratings

    out = {}

    def put(key, *values):
        digest = hashlib.sha256()
        for value in values:
            array = np.asarray(value)
            exact = array.tobytes() if array.dtype != object else b""  # repr rounds floats
            digest.update(exact + repr(value).encode())
        out[key] = digest.hexdigest()[:12]

    X = make_ratings(n_users=300, n_items=120, n_ratings=6000, random_state=0)
    base = dict(n_components=3, max_iter=3, random_state=0, popularity_weight=0.0)
    for rate in ("adagrad", "constant", "invscaling", "adaptive"):
        for algorithm in ("simultaneous", "funk"):
            params = dict(base, learning_rate=rate, algorithm=algorithm, eta0=0.01)
            if rate == "adagrad":
                params["eta0"] = 0.05
            put(f"fit {rate} {algorithm}", FunkSVD(**params).fit(X).item_factors_)
    # thread (in)dependence: three items make at most three blocks, so a stratum holds
    # 40,000 ratings and the kernels really start a second thread
    rng = np.random.RandomState(0)
    big = sp.csr_array(rng.randint(1, 6, size=(40_000, 3)).astype(np.float64))
    for algorithm in ("simultaneous", "funk"):
        for rate in ("adagrad", "constant"):
            params = dict(
                base,
                max_iter=2,
                n_components=2,
                dtype="float64",
                algorithm=algorithm,
                learning_rate=rate,
                eta0=0.01 if rate == "constant" else 0.05,
            )
            fits = [FunkSVD(**params, n_jobs=n).fit(big).item_factors_ for n in (1, 2)]
            put(f"n_jobs 1 == 2 {rate} {algorithm}", np.array_equal(*fits))
    model = FunkSVD(**base).fit(X)
    put("transform", model.transform(X[:20]))
    # every item asked for: the rated ones are left out or not, whatever their rank
    everything = X.shape[1]
    put("recommend known", model.recommend(users=np.arange(20), X=X[:20], n=everything))
    put("recommend new", model.recommend(X=X[:20], n=everything))
    rows, ids = ratings_to_csr(*(lambda c: (c.row + 1, c.col + 1, c.data))(X.tocoo()))
    rec = Recommender(model, ids, rows)
    put("Recommender.recommend", rec.recommend(1, n=everything))
    put("Recommender.recommend_new", rec.recommend_new({1: 5.0, 2: 1.0, 3: 4.0}, n=everything))
    put("train_test_split_ratings", *(p.toarray() for p in split(X, random_state=0)))
    put("KFoldRatings", *(p.toarray() for f in KFoldRatings(3, random_state=0).split(X)
                          for p in f))  # fmt: skip
    put("score", model.score(X[:50]))
    lists, relevant = [[0, 1, 2, 3], [4, 5, 6, 7]], [[2, 3], [4]]
    for k in (2, 3):
        names = ("precision", "recall", "ndcg", "map", "hit_rate")
        put(f"metrics k={k}", [getattr(metrics, f"{m}_at_k")(lists, relevant, k=k) for m in names])
    X_train, X_test = split(X, random_state=1)
    put("ranking_metrics_at_k", metrics.ranking_metrics_at_k(model, X_train, X_test, k=5))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "u.data"
        data.write_text("1\t1\t5\t0\n1\t2\t3\t0\n2\t1\t4\t0\n2\t3\t2\t0\n3\t2\t1\t0\n")
        put("read_ratings", *read_ratings(data, cache=False))
        put("read_ratings cached", *read_ratings(data, cache=Path(tmp) / "cache"))
        write = lambda c: "".join(f"{u}\t{i}\t{int(r)}\t0\n" for u, i, r in c)  # noqa: E731
        coo = X.tocoo()
        data.write_text(write(zip(coo.row + 1, coo.col + 1, coo.data, strict=True)))
        with contextlib.redirect_stdout(io.StringIO()) as text:
            for argv in (["fit", data, "-o", Path(tmp) / "m.npz", "-q", "--no-cache",
                          "--max-iter", "2", "--n-components", "2", "--n-jobs", "1"],
                         ["recommend", Path(tmp) / "m.npz", "1", "-n", everything]):  # fmt: skip
                _cli.main(argv)
        put("funksgd fit + recommend", text.getvalue())
    put("package", funksgd.__file__)
    return out


def fault_env(workdir, inject, name, **extra):
    """The environment of a child process that runs the copy in ``workdir`` under ``name``."""
    return dict(
        os.environ,
        PYTHONPATH=f"{workdir}:{inject}",
        FUNKSGD_FAULT=name,
        FUNKSGD_FAULT_DIR=str(inject),
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )


def run_probe(name, workdir, inject):
    """``probe()`` under fault ``name`` in a child process of the copy in ``workdir``."""
    env = fault_env(workdir, inject, name, OMP_NUM_THREADS="2")
    code = "import json, fault_injection as f; print(json.dumps(f.probe()))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True
    )
    if out.returncode:
        return {"probe failed": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe_all(names):
    """For each fault, the probe's outputs it changes; 1 when a fault changes none."""
    idle = []
    with tempfile.TemporaryDirectory(prefix="funksgd-faults-") as tmp:
        workdir = Path(tmp)
        inject = make_copy(workdir)
        clean = run_probe("none", workdir, inject)
        print(f"none: {len(clean)} outputs", flush=True)
        for name in names:
            why_not = can_apply(name)
            if why_not:
                print(f"{name}: skipped ({why_not})", flush=True)
                continue
            faulty = run_probe(name, workdir, inject)
            changed = [key for key in faulty if faulty[key] != clean.get(key)]
            if not changed:
                idle.append(name)
            print(f"{name}: changes {', '.join(changed) or 'NOTHING'}", flush=True)
    if idle:
        print(f"\nfaults that change nothing: {', '.join(idle)}")
    return 1 if idle else 0


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
    env = fault_env(workdir, inject, name)
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
    parser.add_argument(
        "--probe", action="store_true", help="only check that each fault changes some output"
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, (description, files, _) in FAULTS.items():
            print(f"{name:36} {description}  [{', '.join(files)}]")
        return 0
    names = args.faults or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown faults: {unknown}; see --list")
    if args.probe:
        return probe_all(names)
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
