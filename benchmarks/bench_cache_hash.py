"""What keying the parse cache by content costs: hashing a ratings file vs parsing it.

``read_ratings(path, cache=...)`` hashes every file (SHA-256 of its bytes) before it
looks for a cache entry, and hashes again, for free, the blocks it parses on a miss.
This script writes a MovieLens-style ``ratings.csv`` of N ratings (once, kept in the
folder given), then times, each ``--repeat`` times, best of:

- hash: ``_cache.file_digest``, the SHA-256 of the file (file in the page cache);
- hash algorithms: the same loop with blake2b, sha1 and md5, for comparison;
- parse: ``read_ratings(path, cache=False)``;
- cache hit: ``read_ratings(path, cache=folder)`` when the entry exists (hash + mmap).

Usage::

    PYTHONPATH=. python benchmarks/bench_cache_hash.py --n-ratings 10000000 --folder /tmp/hash
"""

import argparse
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from funksgd.datasets import _cache, read_ratings


def write_ratings(path, n_ratings, seed=0):
    """userId,movieId,rating,timestamp lines, like MovieLens-25M's ratings.csv."""
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_ratings, chunk):
            n = min(chunk, n_ratings - start)
            users = rng.integers(1, 162_541, n)
            items = rng.integers(1, 209_171, n)
            ratings = rng.integers(1, 11, n) / 2
            times = rng.integers(789_652_009, 1_574_327_703, n)
            f.writelines(
                f"{u},{i},{r:g},{t}\n"
                for u, i, r, t in zip(
                    users.tolist(), items.tolist(), ratings.tolist(), times.tolist(), strict=True
                )  # fmt: skip
            )


def best(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def digest(path, name):
    h = hashlib.new(name)
    with open(path, "rb") as f:
        while chunk := f.read(_cache._HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratings", type=int, default=10_000_000)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"ratings-{args.n_ratings}.csv"
    if not path.exists():
        start = time.perf_counter()
        write_ratings(path, args.n_ratings)
        print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    size = path.stat().st_size
    print(f"{args.n_ratings:,} ratings, {size / 1e6:.0f} MB")
    _cache.file_digest(path)  # into the page cache
    rows = {"sha256 (the cache's key)": best(lambda: _cache.file_digest(path), args.repeat)}
    for name in ["blake2b", "sha1", "md5"]:
        rows[name] = best(lambda name=name: digest(path, name), args.repeat)
    rows["parse (cache=False)"] = best(lambda: read_ratings(path, cache=False), args.repeat)
    cache = args.folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    rows["parse + write entry (miss)"] = best(
        lambda: (shutil.rmtree(cache, ignore_errors=True), read_ratings(path, cache=cache)), 1
    )
    rows["cache hit (hash + mmap)"] = best(lambda: read_ratings(path, cache=cache), args.repeat)
    parse = rows["parse (cache=False)"]
    for name, seconds in rows.items():
        print(f"{name:<28} {seconds:7.2f} s  {size / seconds / 1e9:5.2f} GB/s  "
              f"{seconds / parse:6.1%} of parsing")  # fmt: skip


if __name__ == "__main__":
    main()
