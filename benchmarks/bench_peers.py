"""funksgd and the installed peers, side by side, on the same ratings in one process.

Every trainer gets the same training and held-out triplets, the same number of
factors and epochs, and one (or two) threads. For each one the script prints the
epoch throughput, the held-out RMSE, the time to reach a held-out RMSE target,
the peak memory added during training, and its settings; it can draw held-out
RMSE against wall time to a PNG file. See benchmarks/README.md for the figures.

The trainers:

- ``funksgd`` (``-2t``: ``n_jobs=2``; ``-f64``: ``dtype="float64"``): ``FunkSVD.fit``
  with its defaults (AdaGrad rates per row), ``tol=None`` so that every trainer runs
  the same epochs. Its held-out RMSE is also read after every epoch, with the SGD
  user factors, off the clock (see :func:`epoch_probe`).
- ``reference-adagrad``: the same model, schedule and settings in a textbook loop:
  float64, a fresh random permutation of all ratings every epoch, compiled with Numba.
- ``funksgd-sgd``: ``FunkSVD(learning_rate="constant")`` with ``--eta0``,
  ``--alpha``, and ``reference`` the textbook loop of that plain SGD (also "a Numba
  loop" as a peer).
- ``libmf`` (``-2t``: two threads): the LIBMF PyPI binding (``pip install libmf``),
  with LIBMF's own learning-rate scheme and its usual settings (no biases in its
  model).
- ``surprise``: ``surprise.SVD``, the plain SGD model and settings of ``reference``.

Examples
--------
From the repository root, after ``python setup.py build_ext --inplace``::

    PYTHONPATH=. python benchmarks/bench_peers.py --data ml100k --plot ml100k.png
    PYTHONPATH=. python benchmarks/bench_peers.py --data netflix-shape \\
        --trainers funksgd,funksgd-2t,libmf --plot netflix.png
"""

import argparse
import contextlib
import io
import os
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ALL_TRAINERS = (
    "funksgd",
    "funksgd-2t",
    "funksgd-f64",
    "reference-adagrad",
    "funksgd-sgd",
    "reference",
    "libmf",
    "libmf-2t",
    "surprise",
)
REPO = Path(__file__).resolve().parents[1]
ML100K = Path(os.environ.get("FUNKSGD_ML100K_DIR", REPO.parent / "shared/data/ml-100k"))


# ------------------------------------------------------------------------------ data
@dataclass
class Ratings:
    """Training and held-out (user, item, rating) triplets: int32, int32, float32."""

    name: str
    train: tuple
    test: tuple
    n_users: int
    n_items: int

    @property
    def n_train(self):
        return len(self.train[2])


def load_ml100k(directory=ML100K):
    """MovieLens-100k's u1.base / u1.test split, 0-based ids."""

    def read(name):
        path = Path(directory) / name
        if not path.exists():
            sys.exit(f"MovieLens-100k not found at {directory} (set FUNKSGD_ML100K_DIR).")
        a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
        ids = a[:, :2].astype(np.int32) - 1
        return ids[:, 0].copy(), ids[:, 1].copy(), a[:, 2].astype(np.float32)

    return Ratings("MovieLens-100k u1", read("u1.base"), read("u1.test"), 943, 1682)


def make_netflix_shape(n_users=480_189, n_items=17_770, n_train=10_000_000, test_fraction=0.1,
                       rank=10, seed=0, chunk=1 << 21):  # fmt: skip
    """Ratings shaped like Netflix's, generated in chunks.

    Item popularity follows a power law (weight ``1 / rank**0.8``), user activity a
    log-normal; each (user, item) pair occurs once. A rating is a noisy
    rank-``rank`` model with biases, rounded to 1..5 stars (mean about 3.6, standard
    deviation about 1, like Netflix's). ``test_fraction`` of the pairs are held out.
    """
    rng = np.random.default_rng(seed)
    n_total = int(round(n_train / (1 - test_fraction)))
    item_weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_cdf = np.cumsum(rng.permutation(item_weights))
    user_cdf = np.cumsum(rng.lognormal(0.0, 1.0, n_users))
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_total:  # duplicates are dropped, so draw until there are enough
        parts = [keys]
        for _ in range(0, int((n_total - len(keys)) * 1.05) + 1, chunk):
            users = np.searchsorted(user_cdf, rng.random(chunk) * user_cdf[-1])
            items = np.searchsorted(item_cdf, rng.random(chunk) * item_cdf[-1])
            parts.append(users * np.int64(n_items) + items)
        keys = np.unique(np.concatenate(parts))
    keys = keys[np.sort(rng.choice(len(keys), n_total, replace=False))]
    keys = keys[rng.permutation(n_total)]
    users = (keys // n_items).astype(np.int32)
    items = (keys % n_items).astype(np.int32)
    del keys
    user_part = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank)).astype(np.float32)
    item_part = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank)).astype(np.float32)
    user_bias = rng.normal(0, 0.4, n_users).astype(np.float32)
    item_bias = rng.normal(0, 0.4, n_items).astype(np.float32)
    ratings = np.empty(n_total, dtype=np.float32)
    for start in range(0, n_total, chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        noise = rng.normal(0, 0.7, len(u))
        value = 3.6 + user_bias[u] + item_bias[i] + noise
        value += np.einsum("ij,ij->i", user_part[u], item_part[i])
        ratings[start : start + chunk] = np.clip(np.round(value), 1, 5)
    n_test = n_total - n_train
    return Ratings(
        f"Netflix-shaped, generated ({n_train / 1e6:g}M training ratings)",
        (users[n_test:], items[n_test:], ratings[n_test:]),
        (users[:n_test], items[:n_test], ratings[:n_test]),
        n_users,
        n_items,
    )


def rmse(predicted, truth):
    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - truth) ** 2)))


def biased_mf_rmse(test, mean, user_bias, item_bias, user_factors, item_factors, chunk=1 << 14):
    """Held-out RMSE of ``mean + b_u + b_i + p_u . q_i``; rows are the test users and items.

    In small chunks: the per-epoch evaluations run inside the memory measurements.
    """
    users, items, truth = test
    total = 0.0
    for start in range(0, len(truth), chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        dot = np.einsum("ij,ij->i", user_factors[u], item_factors[i], dtype=np.float64)
        error = mean + user_bias[u] + item_bias[i] + dot - truth[start : start + chunk]
        total += float(np.square(error).sum())  # not np.dot: idle BLAS threads spin
    return float(np.sqrt(total / len(truth)))


# --------------------------------------------------------------------------- results
@dataclass
class Result:
    """What one trainer did: settings, timings, held-out RMSE, memory."""

    name: str
    settings: str
    fit_seconds: float = float("nan")
    epoch_seconds: list = field(default_factory=list)
    curve: list = field(default_factory=list)  # (seconds since fit started, held-out RMSE)
    rmse: float = float("nan")
    cores: float = float("nan")  # CPU time / wall time during the fit
    peak_bytes: float = float("nan")  # resident memory added (see PeakMemory)
    traced_bytes: float = float("nan")  # tracemalloc's peak, where measured
    note: str = ""

    def ratings_per_second(self, n_train):
        """Training ratings processed per second of epoch time (not setup, not evaluation)."""
        if not self.epoch_seconds:
            return float("nan")
        return n_train * len(self.epoch_seconds) / sum(self.epoch_seconds)

    def time_to(self, target):
        """Seconds (training only) until the held-out RMSE first reached ``target``."""
        return next((t for t, error in self.curve if error <= target), float("nan"))


class PeakMemory:
    """Peak memory added while the ``with`` block runs, two ways.

    ``added``: resident memory (Linux ``VmHWM``, reset on entry, less ``VmRSS`` on
    entry); sees everything, but memory the allocator kept from earlier work is
    reused without showing. ``traced`` (with ``trace=True``): tracemalloc's peak,
    exact for NumPy buffers and Python objects, blind to C and C++ allocations;
    tracing slows Python-heavy code, so only the trainers that run in compiled
    loops use it.
    """

    def __init__(self, trace=False):
        self.trace = trace
        self.traced = float("nan")

    def __enter__(self):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the kernel's high-water mark of resident memory
        self.base = self._status("VmRSS")
        if self.trace:
            tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.added = self._status("VmHWM") - self.base
        if self.trace:
            self.traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    @staticmethod
    def _status(key):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(key + ":"))
        return int(line.split()[1]) * 1024


class Clock:
    """Wall time since start, less the time spent evaluating (``paused``)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self.paused = 0.0

    def now(self):
        return time.perf_counter() - self.start - self.paused

    def cores(self):
        """CPU time of all threads over wall time since start: below n_jobs if the
        machine's other work took cores away (the evaluation pauses count here)."""
        return (time.process_time() - self.cpu_start) / (time.perf_counter() - self.start)

    @contextlib.contextmanager
    def pause(self):
        began = time.perf_counter()
        yield
        self.paused += time.perf_counter() - began


# -------------------------------------------------------------------------- trainers
def epoch_probe(test, clock, result):
    """An epoch callback for ``FunkSVD.fit``: records the epoch's time and, off the clock,
    the held-out RMSE of the epoch's SGD factors (``EpochInfo.predict``)."""

    def on_epoch(info):
        result.epoch_seconds.append(info.seconds)
        now = clock.now()
        with clock.pause():
            users, items, truth = test
            result.curve.append((now, rmse(info.predict(users, items), truth)))

    return on_epoch


def run_funksgd(data, args, n_jobs=1, dtype="float32", constant=False):
    """``FunkSVD.fit``: its defaults, or (``constant``) the reference's plain SGD settings."""
    from funksgd import FunkSVD, _kernels
    from funksgd._blocks import choose_n_blocks

    users, items, ratings = data.train
    X = sp.csr_array((ratings, (users, items)), shape=(data.n_users, data.n_items))
    params = dict(n_components=args.k, max_iter=args.epochs, tol=None, dtype=dtype, n_jobs=n_jobs)
    if constant:
        params.update(learning_rate="constant", eta0=args.eta0, alpha=args.alpha)
    model = FunkSVD(**params, random_state=0)
    model.set_params(max_iter=1).fit(X[:50])  # load what fit loads, start the threads
    model.set_params(max_iter=args.epochs)
    n_blocks = choose_n_blocks(*X.shape, X.nnz, args.k, np.dtype(dtype).itemsize)
    name = "funksgd" + ("-sgd" if constant else "") + ("-2t" if n_jobs == 2 else "")
    name += "-f64" if dtype == "float64" else ""
    shown = ("learning_rate", "eta0", "alpha", "max_iter", "tol", "dtype", "n_jobs")
    result = Result(
        name,
        f"FunkSVD(n_components={args.k}, "
        + ", ".join(f"{key}={model.get_params()[key]!r}" for key in shown)
        + f"); {n_blocks}x{n_blocks} blocks; {_kernels.sgd.__name__} build; "
        "ends with the exact user fold-in",
    )
    clock = Clock()
    with PeakMemory(trace=True) as memory:
        model.fit(X, callback=epoch_probe(data.test, clock, result))
    result.fit_seconds = clock.now()
    result.cores = clock.cores()
    result.peak_bytes, result.traced_bytes = memory.added, memory.traced
    result.rmse = rmse(model.predict_ratings(data.test[0], data.test[1]), data.test[2])
    result.curve.append((result.fit_seconds, result.rmse))  # after the final fold-in
    budget = 1.5 * 12 * data.n_train + model.item_factors_.nbytes + model.user_factors_.nbytes
    result.note = (
        f"traced peak {memory.traced / budget:.2f}x the budget 1.5 x 12 B/rating + factors "
        f"({budget / 2**20:.0f} MiB)"
    )
    return result


def _numba_epoch():
    from numba import njit

    @njit(fastmath=True)
    def epoch(users, items, ratings, order, mean, user_bias, item_bias, P, Q, eta, alpha,
              user_g, item_g, adagrad):  # fmt: skip
        k = P.shape[1]
        eta_u = eta_i = eta
        for n in order:
            u, i = users[n], items[n]
            dot = 0.0
            for f in range(k):
                dot += P[u, f] * Q[i, f]
            err = ratings[n] - (mean + user_bias[u] + item_bias[i] + dot)
            if adagrad:  # funksgd's (and LIBMF's) rate per row, from the sums so far
                eta_u, eta_i = eta / np.sqrt(user_g[u]), eta / np.sqrt(item_g[i])
            user_bias[u] += eta_u * (err - alpha * user_bias[u])
            item_bias[i] += eta_i * (err - alpha * item_bias[i])
            sum_u = sum_i = 0.0
            for f in range(k):
                p, q = P[u, f], Q[i, f]
                gp, gq = err * q - alpha * p, err * p - alpha * q
                P[u, f] += eta_u * gp
                Q[i, f] += eta_i * gq
                sum_u += gp * gp
                sum_i += gq * gq
            if adagrad:  # each row's sum grows by its factors' mean squared gradient
                user_g[u] += sum_u / k
                item_g[i] += sum_i / k

    return epoch


def run_reference(data, args, adagrad=False):
    """Float64, every rating once per epoch in a fresh random order: the textbook SGD.

    With ``adagrad``, funksgd's default schedule and settings: a rate per user and
    per item, ``eta0 * sqrt(s) / sqrt(G)``, ``G`` starting at ``s**3`` and growing by
    the row's mean squared gradient, ``s`` the ratings' standard deviation (floored
    as funksgd does); else a constant rate ``--eta0`` with ``--alpha``.
    """
    from funksgd import FunkSVD

    epoch = _numba_epoch()
    index, ones = np.zeros(1, dtype=np.int32), np.ones(1)
    # compile for these argument types before the clock starts
    epoch(index, index, np.zeros(1), np.zeros(1, dtype=np.int64), 0.0, np.zeros(1), np.zeros(1),
          np.zeros((1, 1)), np.zeros((1, 1)), 0.0, 0.0, ones, ones, adagrad)  # fmt: skip
    users, items, ratings = data.train
    defaults = FunkSVD().get_params()
    init_std = defaults["init_std"]
    eta0, alpha = (defaults["eta0"], defaults["alpha"]) if adagrad else (args.eta0, args.alpha)
    scale = max(float(ratings.std(dtype=np.float64)), np.sqrt(args.k) * init_std**2, 1e-4)
    result = Result(
        "reference" + ("-adagrad" if adagrad else ""),
        f"Numba @njit loop, float64, k={args.k}, "
        + (f"AdaGrad rows, eta0={eta0}" if adagrad else f"constant eta0={eta0}")
        + f", alpha={alpha}, a fresh permutation of all ratings each epoch, "
        f"init N(0, {init_std})",
    )
    rng = np.random.default_rng(0)
    ratings = ratings.astype(np.float64)
    clock = Clock()
    with PeakMemory(trace=True) as memory:
        P = rng.normal(0, init_std, (data.n_users, args.k))
        Q = rng.normal(0, init_std, (data.n_items, args.k))
        user_bias, item_bias = np.zeros(data.n_users), np.zeros(data.n_items)
        user_g, item_g = np.full(data.n_users, scale**3), np.full(data.n_items, scale**3)
        eta = eta0 * np.sqrt(scale) if adagrad else eta0
        mean = float(ratings.mean())
        for _ in range(args.epochs):
            started = time.perf_counter()
            order = rng.permutation(len(ratings))
            epoch(users, items, ratings, order, mean, user_bias, item_bias, P, Q, eta, alpha,
                  user_g, item_g, adagrad)  # fmt: skip
            result.epoch_seconds.append(time.perf_counter() - started)
            now = clock.now()
            with clock.pause():
                error = biased_mf_rmse(data.test, mean, user_bias, item_bias, P, Q)
                result.curve.append((now, error))
    result.fit_seconds = clock.now()
    result.cores = clock.cores()
    result.peak_bytes, result.traced_bytes = memory.added, memory.traced
    result.rmse = result.curve[-1][1]
    return result


@contextlib.contextmanager
def _lines_written_to_stdout(lines):
    """Collect (time, line) for each line C code writes to file descriptor 1."""
    sys.stdout.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(1)
    os.dup2(write_end, 1)

    def reader():
        with os.fdopen(read_end) as pipe:
            for line in pipe:
                lines.append((time.perf_counter(), line))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(write_end)
        os.close(saved)
        thread.join()


def run_libmf(data, args, n_threads=1):
    """LIBMF's binding; its per-iteration validation RMSE gives the curve."""
    with contextlib.redirect_stdout(io.StringIO()), _lines_written_to_stdout([]):
        from libmf import mf  # prints where it found its library
    settings = dict(k=args.k, nr_threads=n_threads, nr_iters=args.epochs, eta=0.1,
                    lambda_p2=0.05, lambda_q2=0.05, lambda_p1=0.0, lambda_q1=0.0)  # fmt: skip
    name = "libmf" + ("-2t" if n_threads == 2 else "")
    result = Result(name, "libmf.mf.MF(" + ", ".join(f"{k}={v}" for k, v in settings.items()))
    result.settings += ", nr_bins=26 (default)); LIBMF's adaptive learning rates, no biases"
    train = np.column_stack(data.train).astype(np.float32)
    test = np.column_stack(data.test).astype(np.float32)
    model = mf.MF(quiet=False, **settings)
    lines = []
    clock = Clock()
    with PeakMemory() as memory, _lines_written_to_stdout(lines):
        model.mf_train_test(train, test)
    result.fit_seconds = clock.now()
    result.cores = clock.cores()
    result.peak_bytes = memory.added
    # "iter tr_rmse va_rmse obj", one line per iteration, after that iteration
    iterations = [(t - clock.start, line.split()) for t, line in lines]
    iterations = [(t, float(words[2])) for t, words in iterations if words and words[0].isdigit()]
    result.curve = iterations
    times = [0.0] + [t for t, _ in iterations]
    result.epoch_seconds = list(np.diff(times))  # includes LIBMF's own validation pass
    P, Q = model.p_factors(), model.q_factors()
    users, items, truth = data.test
    predicted = np.einsum("ij,ij->i", P[users], Q[items])
    # LIBMF leaves the factors of users and items without ratings NaN and predicts its b
    predicted = np.where(np.isfinite(predicted), predicted, model.model.b)
    result.rmse = rmse(predicted, truth)
    result.note = "epoch times include its validation pass; P.Q used (the binding's predict errs)"
    return result


def run_surprise(data, args):
    """surprise.SVD, same model and settings; its verbose output times the epochs."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    users, items, ratings = data.train
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings.astype(np.float64)})
    reader = Reader(rating_scale=(float(ratings.min()), float(ratings.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    del frame
    model = SVD(n_factors=args.k, n_epochs=args.epochs, lr_all=args.eta0, reg_all=args.alpha,
                random_state=0, verbose=True)  # fmt: skip
    result = Result(
        "surprise",
        f"surprise.SVD(n_factors={args.k}, n_epochs={args.epochs}, lr_all={args.eta0}, "
        f"reg_all={args.alpha}), float64, ratings in a fixed order",
    )
    starts = []

    class EpochTimes:
        def write(self, text):
            if text.startswith("Processing epoch"):
                starts.append(time.perf_counter())

        def flush(self):
            pass

    clock = Clock()
    with PeakMemory() as memory, contextlib.redirect_stdout(EpochTimes()):
        model.fit(trainset)
    result.fit_seconds = clock.now()
    result.cores = clock.cores()
    result.peak_bytes = memory.added
    result.epoch_seconds = list(np.diff(starts + [clock.start + result.fit_seconds]))
    test_users, test_items, truth = data.test
    inner_user = np.array([trainset._raw2inner_id_users.get(u, -1) for u in test_users.tolist()])
    inner_item = np.array([trainset._raw2inner_id_items.get(i, -1) for i in test_items.tolist()])
    # unknown users or items: no bias and no factors, as surprise.SVD.estimate does
    user_factors = np.vstack([model.pu, np.zeros(args.k)])
    item_factors = np.vstack([model.qi, np.zeros(args.k)])
    user_bias, item_bias = np.append(model.bu, 0.0), np.append(model.bi, 0.0)
    result.rmse = biased_mf_rmse(
        (inner_user, inner_item, truth), trainset.global_mean, user_bias, item_bias,
        user_factors, item_factors,
    )  # fmt: skip
    result.curve = [(result.fit_seconds, result.rmse)]
    result.note = "held-out RMSE only after the last epoch (no per-epoch hook); not clipped"
    return result


TRAINER_FUNCTIONS = {
    "funksgd": run_funksgd,
    "funksgd-2t": lambda data, args: run_funksgd(data, args, n_jobs=2),
    "funksgd-f64": lambda data, args: run_funksgd(data, args, dtype="float64"),
    "reference-adagrad": lambda data, args: run_reference(data, args, adagrad=True),
    "funksgd-sgd": lambda data, args: run_funksgd(data, args, constant=True),
    "reference": run_reference,
    "libmf": run_libmf,
    "libmf-2t": lambda data, args: run_libmf(data, args, n_threads=2),
    "surprise": run_surprise,
}


# ---------------------------------------------------------------------------- report
def choose_targets(results, slack):
    """Two held-out RMSE targets: a reference's final RMSE plus ``slack`` (relative), and
    the worst of the trainers' best RMSEs, which every trainer with a curve reaches."""
    by_name = {r.name: r for r in results}
    references = [
        by_name[name].rmse for name in ("reference-adagrad", "reference") if name in by_name
    ]
    base = references[0] if references else min(r.rmse for r in results)
    common = max(min(error for _, error in r.curve) for r in results if len(r.curve) > 1)
    return base * (1 + slack), common


def print_table(results, data, args, targets):
    print(f"\n{data.name}: {data.n_train:,} training and {len(data.test[2]):,} held-out "
          f"ratings, {data.n_users:,} users x {data.n_items:,} items, k={args.k}, "
          f"{args.epochs} epochs")  # fmt: skip
    print(
        f"targets: A = {targets[0]:.4f} (a reference's final RMSE + {args.slack:.0%}), "
        f"B = {targets[1]:.4f} (the worst of the trainers' best RMSEs)\n"
    )
    header = ("trainer", "M ratings/s", "s/epoch", "fit s", "cores", "RMSE", "s to A", "s to B")
    header += ("peak MiB traced", "peak MiB RSS")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in results:
        to_target = [r.time_to(target) for target in targets]
        cells = (
            r.name,
            f"{r.ratings_per_second(data.n_train) / 1e6:.2f}",
            f"{np.mean(r.epoch_seconds):.3f}" if r.epoch_seconds else "-",
            f"{r.fit_seconds:.2f}",
            f"{r.cores:.2f}",
            f"{r.rmse:.4f}",
            *(f"{t:.3g}" if np.isfinite(t) else "not reached" for t in to_target),
            f"{r.traced_bytes / 2**20:.0f}" if np.isfinite(r.traced_bytes) else "-",
            f"{r.peak_bytes / 2**20:.0f}",
        )
        print("| " + " | ".join(cells) + " |")
    print("\nSettings and notes:")
    for r in results:
        print(f"- {r.name}: {r.settings}" + (f". {r.note}" if r.note else ""))
    curves = [r for r in results if len(r.curve) > 2]
    if curves:
        print("\nHeld-out RMSE after each epoch:\n")
        print("| epoch | " + " | ".join(r.name for r in curves) + " |")
        print("|---|" + "---|" * len(curves))
        for epoch in range(args.epochs):
            cells = [f"{r.curve[epoch][1]:.4f}" if epoch < len(r.curve) else "-" for r in curves]
            print(f"| {epoch + 1} | " + " | ".join(cells) + " |")


def plot(results, targets, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for r in results:
        times, errors = zip(*r.curve, strict=True)
        (line,) = ax.plot(times, errors, marker="o", markersize=3, label=r.name)
        if r.name.startswith("funksgd"):  # its last point is after the final fold-in
            ax.plot(times[-1], errors[-1], marker="*", markersize=9, color=line.get_color())
    for target, name, style in zip(targets, "AB", ("--", ":"), strict=True):
        ax.axhline(target, color="grey", linestyle=style, linewidth=1, label=f"target {name}")
    ax.set_xscale("log")
    ax.set_xlabel("training wall time, s (log scale)")
    ax.set_ylabel("held-out RMSE")
    best = min(min(e for _, e in r.curve) for r in results)
    first = max(r.curve[0][1] for r in results)
    ax.set_ylim(best * 0.99, min(first * 1.01, best * 1.25))
    ax.set_title(title + "  (* funksgd after its final fold-in)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("ml100k", "netflix-shape"), default="ml100k")
    parser.add_argument("--n-ratings", type=int, default=10_000_000,
                        help="training ratings of --data netflix-shape")  # fmt: skip
    parser.add_argument("--trainers", default=",".join(ALL_TRAINERS),
                        help="comma-separated, from: " + ", ".join(ALL_TRAINERS))  # fmt: skip
    parser.add_argument("-k", type=int, default=100, help="factors")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eta0", type=float, default=0.005,
                        help="constant rate of funksgd-sgd, reference and surprise")  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="regularisation of funksgd-sgd, reference and surprise")  # fmt: skip
    parser.add_argument("--slack", type=float, default=0.01,
                        help="target = reference's final RMSE x (1 + slack)")  # fmt: skip
    parser.add_argument("--plot", help="write held-out RMSE against time to this PNG")
    args = parser.parse_args(argv)
    args.trainers = args.trainers.split(",")
    unknown = set(args.trainers) - set(ALL_TRAINERS)
    if unknown:
        parser.error(f"unknown trainers {sorted(unknown)}; choose from {', '.join(ALL_TRAINERS)}")
    return args


def main(argv=None):
    """Run the benchmark; ``argv`` as on the command line."""
    args = parse_args(argv)
    if args.data == "ml100k":
        data = load_ml100k()
    else:
        data = make_netflix_shape(n_train=args.n_ratings)
    print(f"{data.name}; {os.cpu_count()} CPUs; trainers: {', '.join(args.trainers)}", flush=True)
    results = []
    for name in args.trainers:
        try:
            result = TRAINER_FUNCTIONS[name](data, args)
        except ImportError as error:
            print(f"{name}: skipped, not installed ({error})", flush=True)
            continue
        print(f"{name}: fit {result.fit_seconds:.2f} s, held-out RMSE {result.rmse:.4f}",
              flush=True)  # fmt: skip
        results.append(result)
    if not results:
        return 1
    targets = choose_targets(results, args.slack)
    print_table(results, data, args, targets)
    if args.plot:
        plot(results, targets, f"{data.name}, k={args.k}", args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
