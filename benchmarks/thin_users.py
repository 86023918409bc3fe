"""Whole fit versus epochs, and accuracy by ratings per user, on the peers harness' data.

Fits funksgd on the peers harness' Netflix-like ``synth`` data (log-normal user
activity: most users are light) and prints, in one run:

- the whole ``fit`` time against the time of its epochs (from the epoch callback),
  as M ratings/s, for each ``n_jobs`` given (with ``--repeats N``, N fits each, taken
  in turn, and the medians of their whole fits compared);
- the test RMSE by ratings per user (1-4, 5-19, 20-99, 100+) of the fitted model (the
  final user solve with the learnt prior ``beta_``), of the same solve without the
  prior (``beta=0``) and of the SGD user factors of the last epoch;
- on data with no learnable signal (``no_signal_ratings``: rating = 3.5 + a weak
  rank-10 term + noise, rounded to 1..5), the test RMSE of the global mean, of the
  defaults, of ``early_stopping=True`` and of the peers harness' Numba loop (needs
  ``numba``, in the ``bench`` extra).

Run from the repository root after building in place::

    PYTHONPATH=. python benchmarks/thin_users.py --n-ratings 10000000 --jobs 1,2
"""

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from funksgd import FunkSVD, _inference

PEERS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "peers.py"
BUCKETS = [(1, 4), (5, 19), (20, 99), (100, None)]


def load_peers(path=PEERS):
    """The peers harness as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def no_signal_ratings(n_users=20_000, n_items=2_000, n_ratings=400_000, seed=0):
    """Train and test triplets with (almost) nothing to learn: 3.5 + weak rank-10 + noise."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_ratings)
    items = rng.integers(0, n_items, n_ratings)
    key = np.unique(users * n_items + items)
    users, items = key // n_items, key % n_items
    P = rng.normal(0, 0.1, (n_users, 10))
    Q = rng.normal(0, 0.1, (n_items, 10))
    noise = rng.normal(0, 0.65, len(users))
    ratings = np.clip(np.round(3.5 + np.einsum("ij,ij->i", P[users], Q[items]) + noise), 1, 5)
    test = rng.random(len(users)) < 0.1
    return (users[~test], items[~test], ratings[~test], users[test], items[test],
            ratings[test], n_users, n_items)  # fmt: skip


def to_csr(users, items, ratings, n_users, n_items):
    return sp.csr_array((ratings, (users, items)), shape=(n_users, n_items))


def rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def by_bucket(pred, truth, counts):
    """RMSE per ratings-per-user bucket, then overall."""
    out = []
    for low, high in BUCKETS:
        mask = (counts >= low) & (counts <= (high or counts.max()))
        out.append(rmse(pred[mask], truth[mask]) if mask.any() else float("nan"))
    return out + [rmse(pred, truth)]


def timed_fit(X, n_jobs, test_pairs, **params):
    """Fit; return the model, whole-fit seconds, epoch seconds and the test predictions of
    the last epoch's SGD factors (taken in the callback of the last epoch: the final
    solve then overwrites those arrays in place). The whole fit's time leaves out those
    predictions (0.2-0.3 s at 10M), which are the benchmark's, not the fit's."""
    epochs = []
    last = {}

    def on_epoch(info):
        epochs.append(info.seconds)
        if info.epoch == params["max_iter"]:
            started = time.perf_counter()
            last["sgd"] = info.predict(*test_pairs)
            last["seconds"] = time.perf_counter() - started

    model = FunkSVD(**params, n_jobs=n_jobs, random_state=0)
    start = time.perf_counter()
    model.fit(X, callback=on_epoch)
    whole = time.perf_counter() - start - last["seconds"]
    return model, whole, sum(epochs), last["sgd"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-ratings", type=int, default=10_000_000)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="fits per n_jobs, in turn (1, 2, 1, 2, ...); medians compared",
    )
    args = parser.parse_args()
    peers = load_peers()
    tu, ti, tr, vu, vi, vr, nu, ni = peers.load_synth(480_189, 17_770, args.n_ratings)
    X = to_csr(tu, ti, tr, nu, ni)
    counts = np.diff(X.indptr)[vu]
    print(f"synth: {X.nnz} training ratings, k={args.k}, {args.epochs} epochs")
    print("| n_jobs | whole fit s | epochs s | whole fit M/s | epochs M/s | whole/epochs |")
    print("|---:|---:|---:|---:|---:|---:|")
    model = sgd_pred = None
    jobs = [int(n) for n in args.jobs.split(",")]
    wholes = {n_jobs: [] for n_jobs in jobs}
    for _ in range(args.repeats):
        for n_jobs in jobs:
            model, whole, epochs, sgd_pred = timed_fit(
                X, n_jobs, (vu, vi), n_components=args.k, max_iter=args.epochs
            )
            wholes[n_jobs].append(whole)
            n = X.nnz * args.epochs / 1e6
            print(f"| {n_jobs} | {whole:.2f} | {epochs:.2f} | {n / whole:.2f} | {n / epochs:.2f} "
                  f"| {epochs / whole:.2f} |")  # fmt: skip
    if args.repeats > 1:
        medians = {n_jobs: float(np.median(s)) for n_jobs, s in wholes.items()}
        print("\nwhole fit, median of", args.repeats, "fits:",
              ", ".join(f"n_jobs={n} {s:.2f} s ({medians[jobs[0]] / s:.2f}x n_jobs={jobs[0]})"
                        for n, s in medians.items()))  # fmt: skip
    fitted = model._fitted
    W, b = _inference.solve_users(
        X.astype(np.float32), fitted.item_factors, fitted.item_bias, fitted.global_mean,
        fitted.alpha, fitted.biased, 1, 0.0,
    )  # fmt: skip
    no_prior = _inference.predict_pairs(fitted, W, b, vu.astype(np.int32), vi.astype(np.int32), 1)
    print(f"\nlearnt beta = {fitted.beta:.3f}")
    print("| user factors | 1-4 | 5-19 | 20-99 | 100+ | all |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [
        ("final solve, learnt prior (the fit)", model.predict_ratings(vu, vi)),
        ("final solve, beta=0", no_prior),
        ("SGD user factors, last epoch", sgd_pred),
    ]
    for name, pred in rows:
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in by_bucket(pred, vr, counts)) + " |")
    tu, ti, tr, vu, vi, vr, nu, ni = no_signal_ratings()
    X = to_csr(tu, ti, tr, nu, ni)
    print(f"\nno signal: {X.nnz} training ratings")
    print("| model | test RMSE | vs global mean |")
    print("|---|---:|---:|")
    base = rmse(np.full(len(vr), tr.mean()), vr)
    print(f"| global mean | {base:.4f} | 1.0000 |")
    for name, params in [("defaults", {}), ("early_stopping=True", {"early_stopping": True})]:
        model = FunkSVD(**params, random_state=0).fit(X)
        score = rmse(model.predict_ratings(vu, vi), vr)
        print(f"| {name} | {score:.4f} | {score / base:.4f} |")
    # the peers' Numba loop (plain SGD, rate 0.005, regularization 0.02, k=100, 20 epochs)
    settings = argparse.Namespace(k=100, epochs=20, lr=0.005, reg=0.02)
    score = peers.run_numba((tu, ti, tr, vu, vi, vr, nu, ni), settings)[1]
    print(f"| Numba loop (peers harness) | {score:.4f} | {score / base:.4f} |")


if __name__ == "__main__":
    main()
