"""A small run through every kernel, for valgrind or AddressSanitizer (see tests/README.md).

Not a test module: run it as a script under the memory checker. It exits non-zero if a
result is not finite.
"""

import numpy as np

from funksgd import FunkSVD, train_test_split_ratings

# one configuration per training kernel: adagrad_epoch, sgd_epoch, funk_epoch
TRAINING = [
    {"learning_rate": "adagrad"},
    {"learning_rate": "constant", "eta0": 0.01, "early_stopping": True},
    {"algorithm": "funk", "learning_rate": "invscaling", "eta0": 0.01},
]


def main():
    from conftest import planted_ratings  # the script's folder is on sys.path

    _, X = planted_ratings(n_users=120, n_items=80, density=0.2)
    X_train, X_test = train_test_split_ratings(X, random_state=0)
    test = X_test.tocoo()
    for dtype in ("float32", "float64"):
        for n_jobs in (1, 2):
            for options in TRAINING:
                model = FunkSVD(n_components=4, max_iter=3, dtype=dtype, n_jobs=n_jobs,
                                random_state=0, **options)  # fmt: skip
                model.fit(X_train)  # group_by_block, the epoch kernel, fold_in
                model.partial_fit(X_test)
                results = [
                    model.transform(X_test),
                    model.complete(X_test[:10]),
                    model.predict_ratings(test.row, test.col),  # predict_pairs
                    model.recommend(X=X_test[:10], n=5)[1][:, :1],
                    model.recommend(np.arange(5), X=X_train[:5], n=5)[1][:, :1],
                    np.array([model.score(X_test)]),
                ]
                assert all(np.isfinite(r).all() for r in results), (dtype, n_jobs, options)
    print("memcheck run: ok")


if __name__ == "__main__":
    main()
