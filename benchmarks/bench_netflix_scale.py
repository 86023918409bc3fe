"""Netflix-prize scale on one machine: generate, split, fit and evaluate, with time and memory.

Generates ratings of the Netflix prize shape (480,189 users x 17,770 movies; 100,480,507
ratings by default) with :func:`funksgd.datasets.make_ratings`, holds out 1.5% of them
(the size of the prize's probe set), fits :class:`funksgd.FunkSVD` for a few epochs and
scores the held-out ratings against a bias-only baseline. Prints, per phase, the seconds
taken, the resident memory at its start and its peak resident memory (Linux: VmHWM, reset
between phases), so that the fit's own peak is not hidden by the split's.

Optionally (``--text``) also writes the ratings as Netflix prize text and times reading
them back, to measure the parser.

Usage::

    python benchmarks/bench_netflix_scale.py --n-ratings 100480507 --max-iter 3

``--profile`` runs the fit under cProfile and prints where its time goes; every run
prints the epochs' seconds and what the rest of ``fit`` costs, in epochs.
"""

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from funksgd import FunkSVD, train_test_split_ratings
from funksgd.datasets import make_ratings, read_ratings

N_USERS, N_ITEMS, N_RATINGS = 480_189, 17_770, 100_480_507
GIB = 1 << 30


def memory_status(field):
    """VmRSS (resident now) or VmHWM (peak since the last reset) in bytes; Linux only."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss():
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class Phases:
    """Seconds, resident memory at the start and peak resident memory of each phase.

    Resetting the peak between phases also resets what getrusage (and so /usr/bin/time)
    reports, so the peak of the whole run is taken as the largest peak of a phase.
    """

    def __init__(self):
        self.peaks = []

    def run(self, name, function, *args, **kwargs):
        reset_peak_rss()
        before = memory_status("VmRSS")
        start = time.perf_counter()
        result = function(*args, **kwargs)
        seconds = time.perf_counter() - start
        peak = memory_status("VmHWM")
        self.peaks.append(peak)
        print(
            f"{name}: {seconds:.1f} s, RSS {before / GIB:.2f} GiB at the start, "
            f"peak {peak / GIB:.2f} GiB (+{(peak - before) / GIB:.2f})",
            flush=True,
        )
        return result


def write_netflix_text(X, folder):
    """The ratings as Netflix prize combined_data text, one movie block after the other."""
    C = X.tocsc()
    path = Path(folder) / "combined_data_1.txt"
    with open(path, "w") as f:
        for movie in range(C.shape[1]):
            start, stop = C.indptr[movie], C.indptr[movie + 1]
            users = (C.indices[start:stop] + 1).tolist()
            stars = C.data[start:stop].astype(int).tolist()
            f.write(f"{movie + 1}:\n")
            f.write("".join(f"{u},{r},2005-09-06\n" for u, r in zip(users, stars, strict=True)))
    return path


def baseline_rmse(X_train, test):
    """RMSE of the global mean plus regularised user and item biases (one ALS sweep)."""
    mean = X_train.data.mean(dtype=np.float64)
    rows = np.repeat(np.arange(X_train.shape[0], dtype=np.int32), np.diff(X_train.indptr))
    residual = X_train.data - np.float32(mean)
    item_bias = np.bincount(X_train.indices, residual, X_train.shape[1]) / (
        10 + np.bincount(X_train.indices, minlength=X_train.shape[1])
    )
    residual -= item_bias[X_train.indices].astype(np.float32)
    user_bias = np.bincount(rows, residual, X_train.shape[0]) / (15 + np.diff(X_train.indptr))
    predicted = mean + user_bias[test.row] + item_bias[test.col]
    return float(np.sqrt(np.mean((predicted - test.data) ** 2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-ratings", type=int, default=N_RATINGS)
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--max-iter", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--text", action="store_true", help="also time the text reader")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the fit: where its time outside the epochs goes",
    )
    args = parser.parse_args(argv)
    phases = Phases()

    X = phases.run("generate", make_ratings, N_USERS, N_ITEMS, args.n_ratings, random_state=0)
    print(f"  {X.nnz:,} ratings, index dtype {X.indices.dtype}, data {X.dtype}")
    if args.text:
        with tempfile.TemporaryDirectory() as folder:
            path = phases.run("write Netflix text", write_netflix_text, X, folder)
            print(f"  {path.stat().st_size / 1e9:.2f} GB of text")
            columns = phases.run("read Netflix text", read_ratings, path, cache=False)
            assert len(columns[2]) == X.nnz
            del columns
    X_train, X_test = phases.run(
        "split", train_test_split_ratings, X, test_size=0.015, random_state=0
    )
    del X
    model = FunkSVD(
        n_components=args.n_components, max_iter=args.max_iter, random_state=0,
        n_jobs=args.n_jobs, verbose=1,
    )  # fmt: skip
    epochs = []
    fit = partial(model.fit, callback=lambda info: epochs.append(info.seconds))
    profile = cProfile.Profile() if args.profile else None
    if profile:
        fit = partial(profile.runcall, fit, X_train)
    else:
        fit = partial(fit, X_train)
    start = time.perf_counter()
    phases.run("fit", fit)
    whole = time.perf_counter() - start
    print(f"  epochs {sum(epochs):.1f} s ({', '.join(f'{s:.1f}' for s in epochs)}), "
          f"everything else {whole - sum(epochs):.1f} s = "
          f"{(whole - sum(epochs)) / (sum(epochs) / len(epochs)):.2f} epochs")  # fmt: skip
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    test = X_test.tocoo()
    predicted = phases.run("predict held-out", model.predict_ratings, test.row, test.col)
    rmse = float(np.sqrt(np.mean((predicted - test.data) ** 2)))
    print(f"held-out RMSE {rmse:.4f}, bias-only baseline {baseline_rmse(X_train, test):.4f}")
    print(f"peak RSS of the whole run: {max(phases.peaks) / GIB:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
