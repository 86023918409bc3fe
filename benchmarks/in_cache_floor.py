"""funksgd's plain-SGD epoch against the bare C loop of ``row_update_floor.c``, in one run.

Compiles ``benchmarks/row_update_floor.c`` (gcc, AVX2+FMA), then three rounds of: the
bare loop (its ``full`` line: p.q, the error and both row updates, no biases, no loss
checks), and a 20-epoch plain-SGD fit on MovieLens-100k u1.base at k=100, whose best and
median epoch (from the epoch callback) are printed in M ratings/s with their share of the
bare loop. Run from the repository root after building in place::

    PYTHONPATH=. python benchmarks/in_cache_floor.py
"""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from accuracy_ml100k import DEFAULT_DATA, N_ITEMS, N_USERS, load

from funksgd import FunkSVD

FLAGS = "-O3 -mavx2 -mfma -fno-math-errno -fassociative-math -fno-signed-zeros -fno-trapping-math"


def floor(binary):
    """M ratings/s of the bare loop's ``full`` line."""
    out = subprocess.run([binary, "100"], capture_output=True, text=True, check=True).stdout
    return float(next(line for line in out.splitlines() if line.startswith("full")).split()[1])


def epoch_seconds(X):
    """Seconds of each epoch of a 20-epoch plain-SGD fit at k=100."""
    seconds = []
    FunkSVD(
        n_components=100, learning_rate="constant", eta0=0.005, alpha=0.02, max_iter=20,
        tol=None, random_state=0, popularity_weight=0.0,
    ).fit(X, callback=lambda info: seconds.append(info.seconds))  # fmt: skip
    return seconds


def main():
    u, i, r = load(DEFAULT_DATA / "u1.base")
    X = sp.csr_array((r, (u, i)), shape=(N_USERS, N_ITEMS))
    with tempfile.TemporaryDirectory() as folder:
        binary = str(Path(folder) / "floor")
        source = Path(__file__).with_name("row_update_floor.c")
        subprocess.run(["gcc", *FLAGS.split(), str(source), "-o", binary], check=True)
        for _ in range(3):
            bare = floor(binary)
            seconds = epoch_seconds(X)
            best, median = X.nnz / min(seconds) / 1e6, X.nnz / np.median(seconds) / 1e6
            print(f"bare loop {bare:.1f}, funksgd best epoch {best:.1f} ({best / bare:.0%}), "
                  f"median {median:.1f} ({median / bare:.0%}) M ratings/s")  # fmt: skip


if __name__ == "__main__":
    main()
