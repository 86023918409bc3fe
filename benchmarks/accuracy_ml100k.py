"""Test RMSE on MovieLens-100k's official folds u1..u5: funksgd against Surprise.

Every method is fitted on ``uN.base`` and scored on ``uN.test``, N = 1..5; the
table gives each fold's RMSE, their mean and the mean fit time (one thread).
The tuned funksgd row searches at most 50 candidates with ``GridSearchCV`` and
the estimator's own ``score`` on each fold's training part only, then refits
the best candidate on it. Run from the repository root after building in place::

    PYTHONPATH=. python benchmarks/accuracy_ml100k.py            # everything, ~15 min
    PYTHONPATH=. python benchmarks/accuracy_ml100k.py --no-svdpp --no-search

MovieLens-100k is read from ``../shared/data/ml-100k`` (or ``--data``); its
licence forbids copying it into this repository.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV, KFold

from funksgd import FunkSVD

N_USERS, N_ITEMS = 943, 1682
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
# 3 x 5 x 3 = 45 candidates: capacity, regularisation and epochs; eta0 stays at its default
SEARCH_GRID = {
    "n_components": [100, 200, 300],
    "alpha": [0.06, 0.08, 0.1, 0.12, 0.15],
    "max_iter": [30, 60, 100],
}


def load(path):
    """(users, items, ratings) of one MovieLens-100k file, 0-based ids."""
    a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
    return a[:, 0] - 1, a[:, 1] - 1, a[:, 2].astype(np.float64)


def funksgd_fit(params, search=False):
    """A fit function for ``run``: train triplets -> (predict, note, fit s, search s)."""

    def fit(train):
        X = sp.csr_array((train[2], (train[0], train[1])), shape=(N_USERS, N_ITEMS))
        model = FunkSVD(random_state=0, **params)
        note, search_seconds = "", 0.0
        start = time.perf_counter()
        if search:
            cv = KFold(3, shuffle=True, random_state=0)
            grid = GridSearchCV(model, SEARCH_GRID, cv=cv).fit(X)
            note = " ".join(f"{k}={v}" for k, v in grid.best_params_.items())
            search_seconds = time.perf_counter() - start - grid.refit_time_
            model, seconds = grid.best_estimator_, grid.refit_time_
        else:
            model.fit(X)
            seconds = time.perf_counter() - start
            if model.early_stopping or model.algorithm == "funk":
                note = f"{model.n_iter_} ep."
        return (
            lambda users, items: model.predict_ratings(users, items),
            note,
            seconds,
            search_seconds,
        )

    return fit


def surprise_fit(algo_class, **params):
    def fit(train):
        import pandas as pd
        from surprise import Dataset, Reader

        frame = pd.DataFrame({"user": train[0], "item": train[1], "rating": train[2]})
        trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
        start = time.perf_counter()
        algo = algo_class(**params).fit(trainset)
        seconds = time.perf_counter() - start

        def predict(users, items):
            return [algo.predict(u, i).est for u, i in zip(users, items, strict=True)]

        return predict, "", seconds, 0.0

    return fit


def run(name, fit, folds, data_dir):
    """Fit on each fold's base, RMSE on its test; print one Markdown table row."""
    errors, seconds, search_seconds, notes = [], [], [], []
    for fold in folds:
        train = load(data_dir / f"u{fold}.base")
        users, items, ratings = load(data_dir / f"u{fold}.test")
        predict, note, fit_seconds, search = fit(train)
        seconds.append(fit_seconds)
        search_seconds.append(search)
        pred = np.asarray(predict(users, items), dtype=np.float64)
        errors.append(np.sqrt(np.mean((pred - ratings) ** 2)))
        notes.append(note)
    cells = " | ".join(f"{e:.4f}" for e in errors)
    note = notes[0] if len(set(notes)) == 1 else " / ".join(notes)
    search = f"{np.mean(search_seconds):.0f}" if any(search_seconds) else ""
    print(f"| {name} | {cells} | **{np.mean(errors):.4f}** | {np.mean(seconds):.2f} | {search} "
          f"| {note} |", flush=True)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--no-svdpp", action="store_true", help="skip SVD++ (~11 s a fit)")
    parser.add_argument("--no-search", action="store_true", help="skip the grid search")
    args = parser.parse_args()
    from surprise import SVD, BaselineOnly, SVDpp

    warnings.simplefilter("ignore", UserWarning)
    header = " | ".join(f"u{f}" for f in args.folds)
    print(f"| method | {header} | mean | fit s | search s | notes |")  # s: mean over the folds
    print("|---" * (len(args.folds) + 5) + "|")
    rows = [
        ("bias only (Surprise BaselineOnly)", surprise_fit(BaselineOnly, verbose=False)),
        ("Surprise SVD, defaults", surprise_fit(SVD, random_state=0)),
        ("funksgd, defaults", funksgd_fit({})),
        ("funksgd, defaults + early_stopping", funksgd_fit({"early_stopping": True})),
        ("funksgd funk, defaults", funksgd_fit({"algorithm": "funk"})),
        ("funksgd funk, defaults + early_stopping",
         funksgd_fit({"algorithm": "funk", "early_stopping": True})),
    ]  # fmt: skip
    if not args.no_svdpp:
        rows.insert(2, ("Surprise SVD++, defaults", surprise_fit(SVDpp, random_state=0)))
    tuned = {"n_components": 300, "alpha": 0.1, "max_iter": 30}  # u1's search result
    rows += [
        ("funksgd, k=300 alpha=0.1 max_iter=30", funksgd_fit(tuned)),
        ("funksgd funk, k=300 alpha=0.1 max_iter=30", funksgd_fit({**tuned, "algorithm": "funk"})),
        ("funksgd funk, k=300 alpha=0.1 + early_stopping",
         funksgd_fit({**tuned, "algorithm": "funk", "early_stopping": True})),
    ]  # fmt: skip
    if not args.no_search:
        rows.append((f"funksgd, best of {_n_candidates()} (GridSearchCV, own score)",
                     funksgd_fit({}, search=True)))  # fmt: skip
    for name, fit in rows:
        run(name, fit, args.folds, args.data)


def _n_candidates():
    return int(np.prod([len(v) for v in SEARCH_GRID.values()]))


if __name__ == "__main__":
    main()
