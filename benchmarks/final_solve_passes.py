"""What `fit`'s final users' solve costs, pass by pass, against an epoch.

Generates Netflix-shaped ratings as ``bench_netflix_scale.py`` does (``make_ratings``,
seed 0, 1.5% held out), fits ``FunkSVD(n_components=100, random_state=0)`` with
``--n-jobs`` threads, and keeps a copy of what the final solve starts from (the SGD user
factors, in the ids' order). Then, on one thread, it solves the users again from that
start with at most 0, 1, 2 and 3 conjugate-gradient steps per row and without a limit:
``max_steps=0`` is the first pass alone (each row's residual from its start, which reads
every rating's item row; rows light enough for the direct solve are solved whatever the
limit), each next limit adds a step. Prints the seconds of each, the steps taken, the
seconds of one epoch on one thread (a warm-started epoch after the fit), and how the
ratings spread over users (the share of ratings held by users with more than ``n``
ratings: those whose item rows outgrow a core's cache for the solve's later passes).

Usage (from the repository root, extension built in place)::

    PYTHONPATH=. python benchmarks/final_solve_passes.py --n-ratings 100480507
"""

import argparse
import time

import numpy as np
from bench_netflix_scale import N_ITEMS, N_USERS

from funksgd import FunkSVD, _inference, train_test_split_ratings
from funksgd._kernels import sgd as _sgd
from funksgd.datasets import make_ratings


def fit_and_keep_start(X, n_jobs):
    """The fitted model and the final solve's start ``(factors, bias)`` in ids' order."""
    kept = {}
    solve = _inference.solve_users

    def spy(X, *args, in_place=False):
        if in_place:  # args: items (5), n_threads, beta, start, tol
            factors, bias, rows = args[7]
            kept["start"] = factors[rows].copy(), bias[rows].copy()
            kept["args"] = args
        return solve(X, *args, in_place=in_place)

    _inference.solve_users = spy
    try:
        model = FunkSVD(n_components=100, random_state=0, n_jobs=n_jobs).fit(X)
    finally:
        _inference.solve_users = solve
    return model, kept


def main(n_ratings, n_jobs):
    X = make_ratings(N_USERS, N_ITEMS, n_ratings, random_state=0)
    X, _ = train_test_split_ratings(X, test_size=0.015, random_state=0)
    model, kept = fit_and_keep_start(X, n_jobs)
    epoch = []
    model.set_params(warm_start=True, max_iter=1, n_jobs=1)
    model.fit(X, callback=lambda info: epoch.append(info.seconds))  # one epoch, one thread
    Q, qb, mu, alpha, biased, _, beta, _, tol = kept["args"]
    indptr = X.indptr.astype(np.int64)
    P, b = np.empty_like(kept["start"][0]), np.empty_like(kept["start"][1])
    print(f"{X.nnz:,} ratings; one epoch on one thread: {epoch[0]:.2f} s; beta {beta:g}")
    for max_steps in (0, 1, 2, 3, 2 * (Q.shape[1] + 1)):
        P[:], b[:] = kept["start"]
        start = time.perf_counter()
        steps, _, _ = _sgd.fold_in(indptr, X.indices, X.data, Q, qb, mu, alpha, beta, biased,
                                   max_steps, tol, 1, P, b, P, b)  # fmt: skip
        seconds = time.perf_counter() - start
        print(f"at most {max_steps} steps a row: {seconds:.2f} s = {seconds / epoch[0]:.2f} "
              f"epochs, {steps / X.shape[0]:.2f} steps a row")  # fmt: skip
    counts = np.sort(np.diff(X.indptr))
    for n in (100, 1000, 2500):
        share = counts[counts > n].sum() / X.nnz
        print(f"ratings of users with more than {n} ratings: {share:.0%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratings", type=int, default=100_480_507)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    main(args.n_ratings, args.n_jobs)
