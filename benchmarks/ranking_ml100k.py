"""Top-10 ranking on MovieLens-100k u1..u5: predicted rating against popularity and the levers.

Protocol (issue 14): relevant = test rating >= 4; the items a user rated in
training are excluded; users with at least one relevant test item are
evaluated. The model is ``FunkSVD(random_state=0)`` with its defaults. Every
weight marked "learned" is chosen on the training file alone
(:func:`funksgd._ranking.learn_popularity_weight`, an inner hold-out of 20% of
each user's training ratings). Single process; run by hand:

    python benchmarks/ranking_ml100k.py [--data /work/shared/data/ml-100k]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from funksgd import FunkSVD
from funksgd._ranking import (
    empirical_bayes_beta,
    item_counts,
    learn_popularity_weight,
    popularity_offsets,
    ranking_scores,
    shrink_items,
)
from funksgd.metrics import mae, ranking_metrics_at_k, rmse

SHAPE = (943, 1682)
METRICS = ("ndcg", "precision", "recall", "map", "coverage")


def load(path):
    a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
    return sp.csr_array((a[:, 2].astype(np.float64), (a[:, 0] - 1, a[:, 1] - 1)), shape=SHAPE)


def methods(model, X_train):
    """name -> (score function for ranking, (item_bias, item_factors) for predictions or None)."""
    counts = item_counts(X_train)
    W, Q, b = model.user_factors_, model.item_factors_, model.item_bias_
    base = lambda users, Q=Q, b=b, off=None: ranking_scores(W[users], Q, b, off)  # noqa: E731
    out = {
        "predicted rating (today's recommend)": (base, None),
        "popularity (most rated unseen)": (lambda users: counts[None, :].astype(float), None),
    }
    for name, beta in [
        ("empirical Bayes", empirical_bayes_beta(X_train)),
        ("20", 20),
        ("100", 100),
    ]:
        bs, Qs = shrink_items(b, Q, counts, float(beta))
        out[f"shrink n/(n+beta), beta={name}"] = (
            lambda users, Qs=Qs, bs=bs: base(users, Qs, bs),
            (bs, Qs),
        )
    for lam in (0.3, 0.5, 1.0, 2.0):
        off = popularity_offsets(counts, lam)
        out[f"pred + {lam} log(1+n_i)"] = (lambda users, off=off: base(users, off=off), None)
    for m in (10, 30):
        mask = np.where(counts >= m, 0.0, -np.inf)
        out[f"min support n_i >= {m}"] = (lambda users, mask=mask: base(users) + mask, None)
    pop_rank = np.argsort(np.argsort(counts)) / len(counts)

    def blend(users, a=0.5):
        s = base(users)
        pred_rank = np.argsort(np.argsort(s, axis=1), axis=1) / s.shape[1]
        return (1 - a) * pred_rank + a * pop_rank

    out["rank blend 0.5 pred + 0.5 popularity"] = (blend, None)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/ml-100k")
    parser.add_argument("--folds", default="1,2,3,4,5")
    args = parser.parse_args()
    data = Path(args.data)
    rows = {}
    rmse_rows = {}
    learned = []
    fit_weights = []
    betas = []
    for fold in args.folds.split(","):
        X_train, X_test = load(data / f"u{fold}.base"), load(data / f"u{fold}.test")
        start = time.perf_counter()
        model = FunkSVD(random_state=0).fit(X_train)
        weight, inner = learn_popularity_weight(FunkSVD(random_state=0), X_train)
        learn_s = time.perf_counter() - start
        learned.append(weight)
        betas.append(empirical_bayes_beta(X_train))
        print(f"u{fold}: learned weight {weight} (inner NDCG {inner}), fit+learn {learn_s:.1f}s")
        table = methods(model, X_train)
        off = popularity_offsets(item_counts(X_train), weight)
        W, Q, b = model.user_factors_, model.item_factors_, model.item_bias_
        table["pred + learned log(1+n_i) [proposed default]"] = (
            lambda users, W=W, Q=Q, b=b, off=off: ranking_scores(W[users], Q, b, off),
            None,
        )
        fit_off = popularity_offsets(model.item_counts_, model.popularity_weight_)
        table["recommend, defaults (weight learnt by fit)"] = (
            lambda users, W=W, Q=Q, b=b, off=fit_off: ranking_scores(W[users], Q, b, off),
            None,
        )
        fit_weights.append(model.popularity_weight_)
        bs, Qs = shrink_items(b, Q, item_counts(X_train), empirical_bayes_beta(X_train))
        table["pred + learned log(1+n_i), items shrunk (empirical Bayes)"] = (
            lambda users, W=W, Qs=Qs, bs=bs, off=off: ranking_scores(W[users], Qs, bs, off),
            None,
        )
        test = X_test.tocoo()
        for name, (scores, shrunk) in table.items():
            result = ranking_metrics_at_k(scores, X_train, X_test, k=10, relevance_threshold=4)
            rows.setdefault(name, []).append([result[m] for m in METRICS])
            if name.startswith(("popularity", "pred + learned log(1+n_i) [", "recommend")):
                print(
                    f"  u{fold} {name}: NDCG@10 {result['ndcg']:.4f} P@10 {result['precision']:.4f}"
                )
            if shrunk is not None or name.startswith("predicted"):
                bs, Qs = shrunk if shrunk is not None else (b, Q)
                pred = (
                    model.global_mean_ + model.user_bias_[test.row] + bs[test.col]
                    + np.einsum("ij,ij->i", W[test.row], Qs[test.col])
                )  # fmt: skip
                rmse_rows.setdefault(name, []).append((rmse(test.data, pred), mae(test.data, pred)))
                if shrunk is None:
                    lo, hi = X_train.data.min(), X_train.data.max()
                    clipped = np.clip(pred, lo, hi)
                    rmse_rows.setdefault("clipped to training range", []).append(
                        (rmse(test.data, clipped), mae(test.data, clipped))
                    )
    surprise_rows(data, args.folds, rows)
    implicit_rows(data, args.folds, rows)
    print(f"\nlearned weights per fold: {learned}; learnt by fit: {fit_weights}")
    print(f"empirical Bayes beta per fold: {np.round(betas, 2).tolist()}")
    print("\n| method (u1..u5 mean) | NDCG@10 | P@10 | R@10 | MAP@10 | coverage |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        mean = np.mean(values, axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in mean) + " |")
    print("\n| predictions (u1..u5 mean) | RMSE | MAE |")
    print("|---|---|---|")
    for name, values in rmse_rows.items():
        mean = np.mean(values, axis=0)
        print(f"| {name} | {mean[0]:.4f} | {mean[1]:.4f} |")


def surprise_rows(data, folds, rows):
    """Surprise SVD ranked by its predictions, when surprise is importable."""
    try:
        import surprise
    except ImportError:
        print("surprise is not installed: no Surprise SVD row")
        return
    for fold in folds.split(","):
        X_train = load(data / f"u{fold}.base")
        X_test = load(data / f"u{fold}.test")
        reader = surprise.Reader(rating_scale=(1, 5))
        coo = X_train.tocoo()
        import pandas as pd

        frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data})
        trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
        algo = surprise.SVD(random_state=0).fit(trainset)
        P = np.zeros((SHAPE[0], algo.n_factors))
        Qi = np.zeros((SHAPE[1], algo.n_factors))
        bi = np.full(SHAPE[1], -np.inf)
        for inner in range(trainset.n_users):
            P[trainset.to_raw_uid(inner)] = algo.pu[inner]
        for inner in range(trainset.n_items):
            raw = trainset.to_raw_iid(inner)
            Qi[raw], bi[raw] = algo.qi[inner], algo.bi[inner]
        result = ranking_metrics_at_k(
            lambda users, P=P, Qi=Qi, bi=bi: P[users] @ Qi.T + bi,
            X_train,
            X_test,
            k=10,
            relevance_threshold=4,
        )
        rows.setdefault("Surprise SVD (ranked by prediction)", []).append(
            [result[m] for m in METRICS]
        )


def implicit_rows(data, folds, rows):
    """implicit's ALS and BPR on the training ratings as interactions (every rated item is
    a positive, as implicit-feedback libraries use such data), when implicit is importable."""
    try:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking
    except ImportError:
        print("implicit is not installed: no ALS/BPR rows")
        return
    models = {
        "implicit ALS (64 factors, 15 iterations)": lambda: AlternatingLeastSquares(
            factors=64, iterations=15, random_state=0
        ),
        "implicit BPR (64 factors, 100 iterations)": lambda: BayesianPersonalizedRanking(
            factors=64, iterations=100, random_state=0
        ),
    }
    for fold in folds.split(","):
        X_train = load(data / f"u{fold}.base")
        X_test = load(data / f"u{fold}.test")
        interactions = X_train.copy()
        interactions.data = np.ones_like(interactions.data, dtype=np.float32)
        for name, make in models.items():
            model = make()
            model.fit(interactions.tocsr(), show_progress=False)
            U, V = np.asarray(model.user_factors), np.asarray(model.item_factors)
            result = ranking_metrics_at_k(
                lambda users, U=U, V=V: U[users] @ V.T, X_train, X_test, k=10,
                relevance_threshold=4,
            )  # fmt: skip
            rows.setdefault(name, []).append([result[m] for m in METRICS])


if __name__ == "__main__":
    main()
