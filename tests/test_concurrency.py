"""One estimator used from several threads at once: refits of other shapes, predictions.

The mix runs in a subprocess (a crash must fail the test, not end the run), several
times. Every result must be whole: exactly what one of the two fitted models gives, or a
clear ValueError about the number of items; never a crash, a hang or a mixture.
"""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import threading
    import numpy as np
    from funksgd import FunkSVD
    from funksgd.datasets import make_ratings

    X = {
        "small": make_ratings(n_users=40, n_items=30, n_ratings=600, random_state=0),
        "wide": make_ratings(n_users=300, n_items=900, n_ratings=20000, random_state=1),
    }
    params = dict(n_components=6, max_iter=3, random_state=0)
    expected = {}
    for name, ratings in X.items():
        model = FunkSVD(**params).fit(ratings)
        expected[name] = {
            "transform": model.transform(ratings),
            "pairs": model.predict_ratings([0, 1, 2], [0, 1, 2]),
            "recommend": model.recommend(users=[0, 1], X=ratings[[0, 1]], n=3)[0],
            "score": model.score(ratings),
        }
    shared = FunkSVD(**params).fit(X["small"])
    failures, stop = [], threading.Event()

    def fitter():
        for i in range(ROUNDS):
            shared.fit(X["wide" if i % 2 == 0 else "small"])
        stop.set()

    def check(name, what, result):
        if not any(
            np.array_equal(result, expected[other][what]) for other in expected
            if np.shape(result) == np.shape(expected[other][what])
        ):
            failures.append(f"{what} on {name}: a result of neither model")

    def reader():
        while not stop.is_set():
            for name, ratings in X.items():
                calls = {
                    "transform": lambda: shared.transform(ratings),
                    "recommend": lambda: shared.recommend(users=[0, 1], X=ratings[[0, 1]], n=3)[0],
                    "score": lambda: shared.score(ratings),
                    "pairs": lambda: shared.predict_ratings([0, 1, 2], [0, 1, 2]),
                }
                for what, call in calls.items():
                    try:
                        result = call()
                    except ValueError as exc:
                        if "features" not in str(exc) and "out of range" not in str(exc):
                            failures.append(f"{what} on {name}: {exc}")
                        continue
                    if what == "pairs":
                        check(name, what, result)
                    elif what == "score":
                        if result not in (expected[name]["score"],):
                            failures.append(f"score on {name}: {result}")
                    else:
                        check(name, what, result)

    threads = [threading.Thread(target=fitter)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    assert not failures, failures[:5]
    print("ok")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_refits_and_predictions_from_several_threads(run):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("ROUNDS", "30")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "ok" in result.stdout, (
        f"exit status {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
