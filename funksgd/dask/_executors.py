"""Where the tasks of a DSGD fit run: on a Dask cluster, or one by one in this process.

Both run the same pure task functions with the same arguments in the same order, so a
fit gives bit-identical factors on any cluster and in process.
"""

import asyncio
import operator
from concurrent.futures import CancelledError
from contextlib import contextmanager

import numpy as np

# seconds a fit waits for a first worker when the cluster has none (and timeout is None)
NO_WORKERS_WAIT = 30


class WorkerLost(RuntimeError):
    """The cluster lost a worker, and with it data that Dask cannot recompute."""


class InProcess:
    """Run each task at once, in this process (``client="sync"``)."""

    workers = (None,)

    def owner(self, block):
        return None

    def n_threads(self):
        return 1

    def submit(self, fn, *args, worker=None, priority=0):
        return _Done(fn(*_resolve(args)))

    def part(self, handle, index, priority=0):
        return _Done(handle.value[index])

    def holders(self, handles):
        return [None] * len(handles)

    def scatter(self, value, broadcast=False, worker=None):
        return _Done(value)

    def gather(self, handles):
        return [handle.value for handle in handles]

    def compute(self, delayed_parts):
        import dask

        return [_Done(dask.compute(part, scheduler="sync")[0]) for part in delayed_parts]


class OnCluster:
    """Run the tasks on the workers of a ``distributed.Client``.

    Block ``b``'s tasks prefer worker ``b % n_workers`` (a loose restriction: if that
    worker dies, the scheduler runs them, and recomputes what was lost, elsewhere).
    """

    def __init__(self, client, timeout):
        self.client = client
        self.timeout = timeout
        if not client.nthreads():  # starting, scaling up, or replacing a lost worker
            wait_s = NO_WORKERS_WAIT if timeout is None else timeout
            try:
                client.wait_for_workers(1, timeout=wait_s)
            except TimeoutError as error:
                raise RuntimeError(
                    f"The Dask cluster has no workers, and none joined within {wait_s:g} s: "
                    "start some (e.g. LocalCluster(n_workers=2)) before fitting."
                ) from error
        self.workers = tuple(sorted(client.nthreads()))

    def owner(self, block):
        return self.workers[block % len(self.workers)]

    def n_threads(self):
        return sum(self.client.nthreads().values())

    def submit(self, fn, *args, worker=None, priority=0):
        """``fn(*args)`` on ``worker`` if it is alive; higher ``priority`` runs first."""
        if worker is None:
            return self.client.submit(fn, *args, pure=False, priority=priority)
        return self.client.submit(
            fn, *args, pure=False, priority=priority, workers=[worker], allow_other_workers=True
        )

    def part(self, handle, index, priority=0):
        # no restriction: the scheduler runs it where ``handle`` lives, so only the part moves
        return self.client.submit(operator.getitem, handle, index, pure=False, priority=priority)

    def holders(self, handles):
        """A worker that holds each of ``handles`` (results that exist), or None.

        A task that reads one of them and a value sent to every worker should run there:
        the scheduler would otherwise count every worker as holding its data, and spread
        such tasks by how busy the workers look, moving the data to them."""
        holders = self.client.who_has(handles)
        return [(holders.get(handle.key) or [None])[0] for handle in handles]

    def scatter(self, value, broadcast=False, worker=None):
        """``value`` on the cluster (on ``worker``, or with ``broadcast`` on every worker),
        within ``timeout``: a worker lost while the value is sent can stall Dask's scatter."""
        workers = None if worker is None else [worker]

        async def send():
            sent = self.client.scatter([value], broadcast=broadcast, workers=workers,
                                       hash=False, asynchronous=True)  # fmt: skip
            return await asyncio.wait_for(sent, self.timeout)

        try:
            with _lost_workers():
                return self.client.sync(send)[0]
        except (TimeoutError, asyncio.TimeoutError) as error:
            raise TimeoutError(
                f"The Dask cluster did not take data for the fit within timeout="
                f"{self.timeout} s ({len(self.client.nthreads())} workers now): it may have "
                "lost workers, or the timeout is too short for the data."
            ) from error
        except KeyError as error:  # the scheduler no longer knows ``worker``
            if worker is None:
                raise
            raise WorkerLost(f"worker {worker} left the cluster") from error

    def gather(self, handles):
        from distributed import wait

        try:
            # wait() asks the default client; this one need not be it
            with _lost_workers(), self.client.as_current():
                wait(handles, timeout=self.timeout)
                return self.client.gather(handles)
        except TimeoutError as error:
            raise TimeoutError(
                f"The Dask cluster did not finish a step of the fit within timeout="
                f"{self.timeout} s ({len(self.client.nthreads())} workers now): it may have "
                "lost its workers, or the timeout is too short for the data."
            ) from error

    def compute(self, delayed_parts):
        return self.client.compute(list(delayed_parts))


@contextmanager
def _lost_workers():
    """Turn the errors of a lost worker into ``WorkerLost``.

    Dask recomputes lost results only while their inputs are still known; DSGD's chain of
    states over the epochs is released as it goes, so the fit restarts instead.
    """
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker

    try:
        yield
    except (CancelledError, KilledWorker, CommClosedError) as error:
        summary = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise WorkerLost(f"{type(error).__name__}: {summary}") from error


class _Done:
    """The result of a task run in process."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _resolve(value):
    if isinstance(value, _Done):
        return value.value
    if isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray):
        return type(value)(_resolve(v) for v in value)
    return value


def tree_reduce(executor, handles, combine):
    """Combine the handles pairwise, in a fixed order, on the workers."""
    handles = list(handles)
    while len(handles) > 1:
        pairs = range(0, len(handles) - 1, 2)
        merged = [executor.submit(combine, handles[i], handles[i + 1]) for i in pairs]
        handles = merged + handles[len(handles) - len(handles) % 2 :]
    return handles[0]
