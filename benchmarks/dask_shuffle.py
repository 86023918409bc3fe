"""The Dask ingest and shuffle: their time, and how much memory each worker adds.

Writes Netflix-shaped ratings as Parquet files (``bench_dask.netflix_frame``), reads
them with ``dask.dataframe.read_parquet`` and fits ``DaskFunkSVD(max_iter=1)`` on a
``LocalCluster`` of ``--workers`` processes x 1 thread, ``--repeats`` times. From the
start of the ingest (``_ingest.ingest``: the Parquet files are read then) until every
cell exists (``_dsgd.make_cells``), a thread in each worker samples its resident memory
every millisecond; printed: the ingest's and the shuffle's seconds and, per worker, the
most its memory grew, in MB and against its share of the ratings (12 bytes each in
float32). Run from the repository root::

    PYTHONPATH=. python benchmarks/dask_shuffle.py --n-ratings 10000000
"""

import argparse
import tempfile
import time

from bench_dask import netflix_frame


def start_sampling(dask_worker=None):
    import threading

    import psutil

    process = psutil.Process()
    state = {"start": process.memory_info().rss, "peak": 0, "stop": False}
    dask_worker._shuffle_rss = state

    def sample():
        while not state["stop"]:
            state["peak"] = max(state["peak"], process.memory_info().rss)
            time.sleep(0.001)

    threading.Thread(target=sample, daemon=True).start()


def stop_sampling(dask_worker=None):
    state = dask_worker._shuffle_rss
    state["stop"] = True
    return state["peak"] - state["start"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-ratings", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import dask.dataframe as dd
    from distributed import Client, LocalCluster, wait

    from funksgd.dask import DaskFunkSVD, _dsgd, _estimator

    ingest, make_cells = _estimator.ingest, _dsgd.make_cells
    seen = {}

    def timed_ingest(*args, **kwargs):
        client.run(start_sampling)
        seen["started"] = time.perf_counter()
        data = ingest(*args, **kwargs)
        seen["ingest"] = time.perf_counter() - seen["started"]
        return data

    def timed(executor, data, *rest):
        started = time.perf_counter()
        cells, reports = make_cells(executor, data, *rest)
        wait([segment for row in cells for cell in row for segment in cell])
        seen["shuffle"] = time.perf_counter() - started
        seen["growth"] = client.run(stop_sampling)
        return cells, reports

    _estimator.ingest, _dsgd.make_cells = timed_ingest, timed
    share = 12 * args.n_ratings / args.workers
    with (
        tempfile.TemporaryDirectory() as directory,
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
        as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        netflix_frame(args.n_ratings, directory, args.files)
        df = dd.read_parquet(directory)
        print(f"{args.n_ratings:,} ratings in {args.files} files, {args.workers} workers; "
              f"a worker's share {share / 1e6:.0f} MB")  # fmt: skip
        for _ in range(args.repeats):
            DaskFunkSVD(n_components=100, max_iter=1, n_blocks=args.workers, random_state=0,
                        client=client).fit(df)  # fmt: skip
            growth = ", ".join(f"{g / 1e6:.0f} MB ({g / share:.2f}x)"
                               for g in seen["growth"].values())  # fmt: skip
            print(f"ingest {seen['ingest']:.2f} s, shuffle {seen['shuffle']:.2f} s; memory "
                  f"added per worker: {growth}")  # fmt: skip


if __name__ == "__main__":
    main()
