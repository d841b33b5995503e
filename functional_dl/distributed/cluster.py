"""A Dask cluster on this machine, for trying things out, tests and examples.

On a real cluster, connect with ``distributed.Client("tcp://scheduler:8786")`` instead; everything
else in :mod:`functional_dl.distributed` takes the client either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_executor", "local_cluster"]


@contextmanager
def local_cluster(n_workers: int = 2, *, threads_per_worker: int = 1) -> Iterator[Client]:
    """A client of a new ``LocalCluster`` of worker *processes* on 127.0.0.1, closed on exit.

    No dashboard is served, and the scheduler's HTTP routes listen on a free loopback port, so
    several clusters (parallel test runs) do not compete for port 8787. One thread per worker by
    default: each worker's NumPy then uses one core, as a share of the batch should.

    Example::

        with local_cluster(2) as client:
            result = distributed.fit(net, loss, opt, start, (x, y), client=client, ...)

    Raises:
        ModuleNotFoundError: Dask is not installed (``pip install functional_dl[distributed]``).
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n_workers,
        processes=True,
        threads_per_worker=threads_per_worker,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=50,  # a lost worker is reported through the results, not logged as news
    )
    try:
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
    finally:
        cluster.close()


def dask_executor(client: Client) -> Executor:
    """The cluster as a ``concurrent.futures.Executor``, for :func:`~functional_dl.distributed.sweep`.

    Every submission is a new task (``pure=False``): a trial submitted again after its worker was
    lost must run again, not be answered with the failed attempt's result.
    """
    executor: Executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]
    return executor
