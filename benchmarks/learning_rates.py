"""How sensitive each learning-rate schedule is to eta0, on five data sets.

For every schedule and every ``eta0`` of a grid, fits ``FunkSVD`` (defaults
otherwise, ``early_stopping=True``, ``max_iter=300``) and prints its held-out
RMSE divided by the best RMSE any schedule reached on that data set, with the
epochs run (``inf`` marks a fit that diverged). The data sets: MovieLens-100k
folds u1 and u2 with ratings multiplied by 0.25, 1, 4 and 20 (``alpha`` scaled
alike, so the best model is the same up to scale), a sparse power-law
synthetic set, and a dense low-noise planted rank-5 matrix. Run from the
repository root after building in place::

    PYTHONPATH=. python benchmarks/learning_rates.py      # ~5 min on one core
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from funksgd import FunkSVD, train_test_split_ratings

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
GRIDS = {
    "constant": [0.00125, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08],
    "invscaling": [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16],
    "adaptive": [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08],
    "adagrad": [0.0125, 0.025, 0.05, 0.1, 0.2, 0.4],
}


def movielens(data_dir, fold, scale):
    def load(name):
        a = np.loadtxt(data_dir / name, dtype=np.int64, usecols=(0, 1, 2))
        return a[:, 0] - 1, a[:, 1] - 1, scale * a[:, 2].astype(np.float64)

    u, i, r = load(f"u{fold}.base")
    return sp.csr_array((r, (u, i)), shape=(943, 1682)), load(f"u{fold}.test")


def split(X, seed=0):
    train, test = train_test_split_ratings(X, test_size=0.1, random_state=seed)
    test = test.tocoo()
    return train, (test.row, test.col, test.data)


def power_law(n_users=4000, n_items=2000, n_ratings=200_000, rank=10, seed=0):
    """Integer ratings 1..5 from a rank-10 model plus noise; item popularity ~ 1/rank^0.8."""
    rng = np.random.default_rng(seed)
    popularity = 1 / np.arange(1, n_items + 1) ** 0.8
    users = rng.integers(0, n_users, n_ratings)
    items = rng.choice(n_items, n_ratings, p=popularity / popularity.sum())
    P = rng.normal(0, rank**-0.5, (n_users, rank))
    Q = rng.normal(0, rank**-0.5, (n_items, rank))
    r = 3.5 + np.einsum("ij,ij->i", P[users], Q[items]) + rng.normal(0, 0.5, n_ratings)
    keys, first = np.unique(users * n_items + items, return_index=True)  # one rating a pair
    ratings = np.clip(np.round(r[first]), 1, 5)
    return split(sp.csr_array((ratings, divmod(keys, n_items)), shape=(n_users, n_items)))


def planted(n_users=300, n_items=200, rank=5, density=0.3, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    truth = 3 + rng.normal(0, 1, (n_users, rank)) @ rng.normal(0, 1, (rank, n_items)) / rank**0.5
    rows, cols = np.nonzero(rng.random(truth.shape) < density)
    ratings = truth[rows, cols] + rng.normal(0, noise, len(rows))
    return split(sp.csr_array((ratings, (rows, cols)), shape=truth.shape))


def relative_errors(folds, scale):
    """{(schedule, eta0): (mean test RMSE / scale, mean epochs)}."""
    out = {}
    for schedule, etas in GRIDS.items():
        for eta0 in etas:
            errors, epochs = [], []
            for X, (users, items, ratings) in folds:
                model = FunkSVD(learning_rate=schedule, eta0=eta0, alpha=0.05 * scale,
                                early_stopping=True, max_iter=300, random_state=0)  # fmt: skip
                try:
                    pred = model.fit(X).predict_ratings(users, items)
                except ValueError:  # diverged
                    errors.append(np.inf)
                    continue
                errors.append(np.sqrt(np.mean((pred - ratings) ** 2)) / scale)
                epochs.append(model.n_iter_)
            out[schedule, eta0] = np.mean(errors), np.mean(epochs) if epochs else 0
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarning of the slowest rates
    sets = {
        f"MovieLens-100k x {scale}": ([movielens(args.data, f, scale) for f in (1, 2)], scale)
        for scale in (0.25, 1, 4, 20)
    }
    sets["power-law synthetic"] = ([power_law()], 1)
    sets["planted rank 5"] = ([planted()], 1)
    for name, (folds, scale) in sets.items():
        results = relative_errors(folds, scale)
        best = min(rmse for rmse, _ in results.values())
        print(f"\n{name}: best RMSE {best:.4f}; RMSE / best (epochs) for each eta0")
        for schedule, etas in GRIDS.items():
            cells = [f"{eta0:g}: {results[schedule, eta0][0] / best:.3f} "
                     f"({results[schedule, eta0][1]:.0f})" for eta0 in etas]  # fmt: skip
            print(f"  {schedule:10s} " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
