"""The solve from zeros (``transform``, ``score``): time and precision by ratings per row.

Fits ``FunkSVD(n_components=100, random_state=0, n_jobs=2)`` to the peers harness'
``synth`` ratings (10M by default, float32), then solves the users of each bucket of
ratings per row with the fitted items, one thread, as ``transform`` does, for each
``alpha`` asked (the penalty ``alpha * n_u``; the learnt ``beta`` set to 0). Prints the
seconds, nanoseconds per rating, and the largest and median relative error against a
float64 solve (``numpy.linalg.solve``) of 200 sampled rows of the bucket. Run from the
repository root after building in place::

    PYTHONPATH=. python benchmarks/fold_in_buckets.py --alpha 0.1 0.01 0.001
"""

import argparse
import time

import numpy as np
from thin_users import load_peers, to_csr

from funksgd import FunkSVD, _inference

BUCKETS = [(1, 16), (17, 24), (25, 32), (33, 48), (49, 101), (102, None)]


def exact(X, Q, bi, global_mean, alpha, rows):
    """Float64 answers ``[factors, bias]`` of ``rows`` of ``X``, penalty ``alpha * n_u``."""
    out = []
    for u in rows:
        cols = X.indices[X.indptr[u] : X.indptr[u + 1]]
        y = X.data[X.indptr[u] : X.indptr[u + 1]] - global_mean - bi[cols]
        A = np.hstack([Q[cols], np.ones((len(cols), 1))])
        out.append(np.linalg.solve(A.T @ A + alpha * len(cols) * np.eye(A.shape[1]), A.T @ y))
    return np.array(out)


def main(n_ratings, alphas):
    tu, ti, tr, _, _, _, nu, ni = load_peers().load_synth(480_189, 17_770, n_ratings)
    X = to_csr(tu, ti, tr, nu, ni).astype(np.float32)
    model = FunkSVD(n_components=100, random_state=0, n_jobs=2).fit(X)
    Q, bi, mu = model.components_.T.copy(), model.item_bias_, model.global_mean_
    counts = np.diff(X.indptr)
    rng = np.random.default_rng(0)
    for alpha in alphas:
        for lo, hi in BUCKETS:
            rows = np.flatnonzero((counts >= lo) & (counts <= (hi or counts.max())))
            part = X[rows]
            start = time.perf_counter()
            W, b = _inference.solve_users(part, Q, bi, mu, alpha, True, 1)
            seconds = time.perf_counter() - start
            pick = rng.choice(len(rows), min(200, len(rows)), replace=False)
            want = exact(part.astype(np.float64), Q.astype(np.float64),
                         bi.astype(np.float64), mu, alpha, pick)  # fmt: skip
            got = np.column_stack([W[pick], b[pick]]).astype(np.float64)
            error = np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)
            print(
                f"alpha {alpha:g}, {lo}-{hi or ''} ratings: {len(rows)} rows, "
                f"{seconds:.3f} s ({seconds / part.nnz * 1e9:.0f} ns/rating), relative error "
                f"max {error.max():.1e}, median {np.median(error):.1e}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratings", type=int, default=10_000_000)
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.1])
    args = parser.parse_args()
    main(args.n_ratings, args.alpha)
