"""DaskFunkSVD (DSGD on a LocalCluster) against in-process FunkSVD, per epoch.

Generates Netflix-shaped ratings (480,189 users x 17,770 items, ``--n-ratings`` of them)
with :func:`funksgd.datasets.make_ratings`, writes them as Parquet files and reads them
back with ``dask.dataframe.read_parquet``. Then, with k=``--n-components``:

- in-process ``FunkSVD(n_jobs=2)``;
- ``DaskFunkSVD`` on a ``LocalCluster`` of ``--workers`` processes x 1 thread;
- ``DaskFunkSVD(client="sync")``: the same cell tasks one after another in this process
  (the kernel and copying cost without Dask).

Each is fitted for 1 + ``--epochs`` epochs with ``verbose=1``; the median of the epoch
times it prints is the cost of an epoch (best of ``--repeats`` fits each), without
the set-up, the shuffle and the final user solve. Bytes moved per epoch come from the
workers' own records (``Worker.transfer_incoming_log``: what each worker fetched from a
peer between the first and the last training task), and are set against the model's
prediction: each stratum moves every item block whose next cell lies on another worker.
The task stream gives the time the workers spent inside the training tasks; what is left
of the training's wall time (first to last training task), per stratum, is the task
overhead. Last, one cell of the same size is timed in this process: its training task
(which copies the two blocks), then the kernel alone.

Usage::

    python benchmarks/bench_dask.py --n-ratings 10000000 --epochs 3
    python benchmarks/bench_dask.py --n-ratings 10000000 --epochs 3 --keep-freed-memory
    python benchmarks/bench_dask.py --n-ratings 10000000 --epochs 19 --fresh-memory
"""

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

N_USERS, N_ITEMS = 480_189, 17_770


def netflix_frame(n_ratings, directory, n_files):
    """Write Netflix-shaped ratings as ``n_files`` Parquet files; return their paths."""
    import pandas as pd

    from funksgd.datasets import make_ratings

    X = make_ratings(N_USERS, N_ITEMS, n_ratings, random_state=0).tocoo()
    bounds = np.linspace(0, X.nnz, n_files + 1).astype(int)
    for f, (a, z) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        part = pd.DataFrame({"user": X.row[a:z], "item": X.col[a:z], "rating": X.data[a:z]})
        part.to_parquet(Path(directory) / f"part-{f:03d}.parquet", index=False)
    return X.tocsr()


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def epoch_seconds(fit, n_ratings):
    """Median seconds of an epoch, from the fit's own verbose lines."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model = fit()
    seconds = []
    for line in out.getvalue().splitlines():
        if " s, " in line:  # DaskFunkSVD prints the seconds
            seconds.append(float(line.split(" s, ")[0].rsplit(", ", 1)[1]))
        elif "M ratings/s" in line:  # FunkSVD prints the speed
            seconds.append(n_ratings / 1e6 / float(line.rsplit(", ", 1)[1].split("M")[0]))
    return float(np.median(seconds)), model


def cell_anatomy(n_users, n_items, n_ratings, k, repeats=3):
    """Seconds of one cell in this process: its training task (which copies the two
    blocks), then the AdaGrad kernel alone on blocks copied beforehand."""
    from funksgd.dask import train_cell
    from funksgd.dask._cell import copy_state, train_task
    from funksgd.dask._dsgd import BlockState
    from funksgd.dask._shuffle import SEGMENTS, Cell

    rng = np.random.default_rng(0)
    users = np.sort(rng.integers(0, n_users, n_ratings)).astype(np.int32)
    items = rng.integers(0, n_items, n_ratings).astype(np.int32)
    ratings = rng.integers(1, 6, n_ratings).astype(np.float32)
    # in segments of consecutive users, as the shuffle makes them
    cuts = np.searchsorted(users, np.arange(SEGMENTS + 1) * n_users // SEGMENTS)
    cell = [Cell(users[a:z], items[a:z], ratings[a:z], users[:0], items[:0], ratings[:0])
            for a, z in zip(cuts[:-1], cuts[1:], strict=True)]  # fmt: skip

    def block(n):
        factors = rng.normal(0, 0.1, (n, k)).astype(np.float32)
        return BlockState(factors, np.zeros(n, np.float32), np.ones(n, np.float32), 0.0)

    user, item = block(n_users), block(n_items)
    common = (3.6, 0.05, 0.1, True, "adagrad")
    task_s, kernel_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        train_task(cell, (user, None), item, *common, False, False)
        task_s.append(time.perf_counter() - started)
        (u, _), (i, _) = copy_state(user), copy_state(item)
        started = time.perf_counter()
        train_cell(users, items, ratings, u.factors, i.factors, u.bias, i.bias, u.grad_sq,
                   i.grad_sq, *common)  # fmt: skip
        kernel_s.append(time.perf_counter() - started)
    return min(task_s), min(kernel_s)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-ratings", type=int, default=10_000_000)
    parser.add_argument("--n-components", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-blocks", type=int, default=None)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--keep-freed-memory", action="store_true",
        help="start the workers with glibc keeping the memory it frees (docs/dask.rst)",
    )  # fmt: skip
    parser.add_argument(
        "--fresh-memory", action="store_true",
        help="every training task's output in fresh memory (funksgd.dask._cell.new_array "
        "reusing none)",
    )  # fmt: skip
    return parser.parse_args()


def keep_freed_memory():
    """Have the workers' glibc keep freed memory for the next allocations: Dask's
    default returns it to the system, so each task's fresh output blocks are new pages,
    faulted in (and, with transparent huge pages, compacted) as the kernel writes them."""
    import dask
    import distributed  # noqa: F401 (its settings' defaults)

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.update(MALLOC_TRIM_THRESHOLD_=str(1 << 32), MALLOC_MMAP_THRESHOLD_=str(1 << 30))
    dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


def fresh_memory():
    """No array of a training task's output recycled (``_cell.new_array``), in this process
    or the worker that runs it."""
    from funksgd.dask import _cell

    _cell.SPARE_MIN_BYTES = np.inf


def received(client, window):
    """Bytes the workers fetched from each other during ``window`` (their logs)."""

    def total(start, stop, dask_worker=None):
        log = dask_worker.transfer_incoming_log
        return sum(e["total"] for e in log if start <= e["start"] <= stop)

    return sum(client.run(total, *window).values())


def training_tasks(stream):
    """(start, stop) of every training task in a task stream, and how many each worker ran."""
    training, per_worker = [], {}
    for task in stream.data:
        if not str(task["key"]).startswith("train_task"):
            continue
        per_worker[task["worker"]] = per_worker.get(task["worker"], 0) + 1
        training += [(s["start"], s["stop"]) for s in task["startstops"]
                     if s["action"] == "compute"]  # fmt: skip
    return training, per_worker


def on_cluster(args, X, dask_fit, local_fit, epochs):
    """Best per-epoch seconds of FunkSVD and DaskFunkSVD (on a LocalCluster), and the
    figures of the best DaskFunkSVD fit: its training tasks, their window, bytes moved."""
    from distributed import Client, LocalCluster, get_task_stream

    if args.keep_freed_memory:
        keep_freed_memory()
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        if args.fresh_memory:
            client.run(fresh_memory)
        dask_fit(1, client, verbose=0)  # warm the workers up (imports)
        # best of --repeats each; all FunkSVD fits first: a DaskFunkSVD fit right after a
        # FunkSVD fit in this process ran up to 2x slower (measured, cause not found)
        local, epoch = np.inf, np.inf
        for _ in range(args.repeats):
            seconds, _ = epoch_seconds(local_fit, X.nnz)
            local = min(local, seconds)
            print(f"  FunkSVD {seconds:.3f} s/epoch")
        for _ in range(args.repeats):
            with get_task_stream(client) as stream:
                seconds, model = epoch_seconds(lambda: dask_fit(epochs, client), X.nnz)
            if seconds < epoch:
                epoch, best = seconds, (stream, model)
            print(f"  DaskFunkSVD {seconds:.3f} s/epoch")
        training, per_worker = training_tasks(best[0])
        window = (min(a for a, _ in training), max(z for _, z in training))
        moved = received(client, window) / epochs
    return local, epoch, best[1], training, window, per_worker, moved


def report(args, X, p, local, epoch, figures, epochs):
    """Print the cluster's figures against in-process FunkSVD and the model's bytes."""
    model, training, window, per_worker, moved = figures
    k, W = args.n_components, args.workers
    print(f"in-process FunkSVD n_jobs=2: {local:.3f} s/epoch")
    item_block = (N_ITEMS / p) * (k + 2) * 4  # factors, bias and AdaGrad sums, float32
    predicted = p * p * item_block * (W - 1) / W
    busy = sum(stop - start for start, stop in training)
    busy_per_worker = busy / epochs / W
    wall = (window[1] - window[0]) / epochs
    print(f"DaskFunkSVD {W} workers x 1 thread: {epoch:.3f} s/epoch "
          f"({epoch / local:.2f}x in-process n_jobs=2); mean over the training window "
          f"{wall:.3f} s")  # fmt: skip
    print(
        f"  moved per epoch {moved / 1e6:.1f} MB (workers' logs); predicted "
        f"{predicted / 1e6:.1f} MB = p^2 item blocks x (W-1)/W of {item_block / 1e6:.2f} MB"
    )
    print(f"  training tasks run by each worker: {sorted(per_worker.values())}")
    print(f"  inside training tasks per worker per epoch {busy_per_worker:.3f} s; "
          f"overhead per stratum {(wall - busy_per_worker) / p * 1e3:.1f} ms")  # fmt: skip
    cell = busy / epochs / p / p
    print(
        f"  per cell: {X.nnz / p / p:,.0f} ratings in {cell * 1e3:.1f} ms "
        f"({X.nnz / p / p / cell / 1e6:.1f}M ratings/s per worker, copies included)"
    )
    print(f"  training RMSE after {epochs} epochs {model.loss_curve_[-1]:.4f}")


def main():
    args = parse_args()

    import dask.dataframe as dd

    from funksgd import FunkSVD
    from funksgd.dask import DaskFunkSVD

    k = args.n_components
    n_blocks = args.n_blocks or args.workers  # DaskFunkSVD's default on the cluster
    with tempfile.TemporaryDirectory() as directory:
        X, seconds = timed(lambda: netflix_frame(args.n_ratings, directory, args.files))
        print(f"{X.nnz:,} ratings, {X.shape[0]:,} x {X.shape[1]:,}, generated and written "
              f"in {seconds:.1f} s")  # fmt: skip
        df = dd.read_parquet(directory)
        params = dict(n_components=k, random_state=0, tol=None)
        epochs = 1 + args.epochs

        def dask_fit(epochs, client, verbose=1):
            return DaskFunkSVD(max_iter=epochs, n_blocks=n_blocks, client=client,
                               verbose=verbose, **params).fit(df)  # fmt: skip

        def local_fit():
            return FunkSVD(max_iter=epochs, n_jobs=2, verbose=1, **params).fit(X)

        if args.fresh_memory:
            fresh_memory()
        sync, model = epoch_seconds(lambda: dask_fit(epochs, "sync"), X.nnz)
        p = model.n_blocks_
        print(f"DaskFunkSVD client='sync' ({p} x {p} grid, cells one after another): "
              f"{sync:.3f} s/epoch")  # fmt: skip
        local, epoch, *figures = on_cluster(args, X, dask_fit, local_fit, epochs)
        report(args, X, p, local, epoch, figures, epochs)
    task, kernel = cell_anatomy(N_USERS // p, N_ITEMS // p, X.nnz // (p * p), k)
    print(f"one such cell in this process: its training task {task * 1e3:.1f} ms (copies "
          f"included), the kernel alone {kernel * 1e3:.1f} ms "
          f"({X.nnz / (p * p) / kernel / 1e6:.1f}M ratings/s)")  # fmt: skip


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
