"""Where a whole ``fit`` spends its time, on the peers harness' Netflix-like data.

cProfile around ``FunkSVD(n_components=100, max_iter=EPOCHS, random_state=0,
n_jobs=N_JOBS).fit(X)`` (one thread by default) on the peers harness' ``synth``
ratings, with an epoch callback that sums the epochs' own seconds; prints the whole fit,
the epochs, their ratio and the 45 most expensive calls by cumulative time. Run from
the repository root after building in place::

    PYTHONPATH=. python benchmarks/profile_fit.py 10000000 20 [N_JOBS]
"""

import cProfile
import pstats
import sys
import time

from thin_users import load_peers, to_csr

from funksgd import FunkSVD


def main(n_ratings=10_000_000, epochs=20, n_jobs=1):
    peers = load_peers()
    tu, ti, tr, _, _, _, nu, ni = peers.load_synth(480_189, 17_770, n_ratings)
    X = to_csr(tu, ti, tr, nu, ni)
    seconds = []
    model = FunkSVD(n_components=100, max_iter=epochs, random_state=0, n_jobs=n_jobs)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    model.fit(X, callback=lambda info: seconds.append(info.seconds))
    profile.disable()
    whole = time.perf_counter() - start
    print(f"whole fit {whole:.2f} s, epochs {sum(seconds):.2f} s, ratio {sum(seconds) / whole:.2f}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:4]))
