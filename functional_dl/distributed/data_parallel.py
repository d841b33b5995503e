"""Data-parallel ``fit`` on a Dask cluster: every worker computes the gradient of its share of each batch.

The loop is :func:`functional_dl.train.fit` itself (its training state, logs, metrics, penalty,
callbacks and checkpoints); only the gradient of each batch is computed elsewhere, through fit's
``grad_fn``::

    once:        the training set (x, y) is scattered to every worker
    each step:   the params (and buffers) are scattered to every worker
                 worker i: loss_i, grads_i of rows [start_i, stop_i) of the batch   (the same pure
                           value_and_grad as fit, in training mode with the step's key)
                 shares combined pairwise on the workers, weighted by n_i / n      (a tree reduction)
                 the driver applies the penalty, the optimizer update and the metrics, once

``fit`` is given the sample *indices* in place of ``x`` (a float64 column, exact for any realistic
data set), so it shuffles and batches exactly as the single-process run; the workers take the rows
they are told from their copy of the data.

Exactness: in float64 the params after N steps equal single-process ``fit`` with the same key up to
the rounding of the weighted sums (about 1e-15 relative per step); with one share they are equal
bit for bit, and every run is bit-identical to every other with the same number of shares (the
shares are always combined in the same order). Dropout masks depend only on each sample's position
in the global batch (``Context.batch_rows``), so they do not depend on the number of workers.

Batch norm is *not* synchronised: each share normalises with the statistics of its own rows (as
PyTorch's ``DistributedDataParallel`` does without ``SyncBatchNorm``), so with more than one share a
network with batch norm trains on slightly different numbers than single-process ``fit`` (with one
share it is the same). The running statistics are the share-weighted means of the shares' updated
ones: exact for ``running_mean`` and, for ``running_var``, the mean of the shares' variances, which
leaves out the spread between the shares' means.

Cost per step: the params go to every worker and each worker's weighted grads come back through
the tree, about twice the parameter bytes per worker, plus one scheduling round trip; see
``benchmarks/data_parallel.py``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

import numpy as np

from functional_dl.distributed._shards import Share, ShareResult, combine, run_share, share_bounds
from functional_dl.errors import ClusterError, NotPicklableError
from functional_dl.losses import LossFn
from functional_dl.optim.base import Optimizer
from functional_dl.params import freeze
from functional_dl.train import loop
from functional_dl.train.callbacks import Callback
from functional_dl.train.progress import Progress
from functional_dl.train.step import Batch, Metric, Penalty, Target, TrainState, ValueAndGrad
from functional_dl.types import EVAL, Array, Context, Key, Layer, Params

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["FitOptions", "check_picklable", "fit", "worker_addresses"]

S = TypeVar("S")
T = TypeVar("T")


class FitOptions(TypedDict, total=False):
    """The keyword options of :func:`functional_dl.train.fit` that :func:`fit` passes on unchanged."""

    shuffle: bool
    drop_last: bool
    metrics: Mapping[str, Metric] | None
    penalty: Penalty | None
    callbacks: Sequence[Callback]
    callback_states: Sequence[object] | None
    progress: Progress


def check_picklable(caller: str, **values: object) -> None:
    """Raise :class:`~functional_dl.errors.NotPicklableError` naming the first value that does not pickle.

    The standard ``pickle`` is the test (not Dask's cloudpickle), so what passes runs on any
    executor: module-level functions and ``functools.partial`` of them pickle, lambdas and
    closures do not.
    """
    for name, value in values.items():
        try:
            pickle.dumps(value)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise NotPicklableError(
                f"{caller}: {name} ({value!r}) does not pickle, so it cannot be sent to a worker: "
                f"{err}. Use module-level functions and functools.partial, not lambdas or closures."
            ) from err


def worker_addresses(client: Client, timeout: float = 60.0) -> tuple[str, ...]:
    """The addresses of the cluster's workers, sorted so shares are placed the same way every run.

    A running cluster with no worker at the moment (one being restarted after it was lost, or
    missed heartbeats on a busy machine) is given ``timeout`` seconds for one to join.
    """
    if client.status != "running":
        raise ClusterError(f"distributed: the client is not connected (status {client.status!r})")
    try:
        workers = client.scheduler_info(n_workers=-1).get("workers")
        if not workers:
            client.wait_for_workers(1, timeout=timeout)
            workers = client.scheduler_info(n_workers=-1).get("workers")
    except (OSError, TimeoutError) as err:
        raise ClusterError(f"distributed: cannot reach the scheduler or no worker joined: {err}") from err
    if not workers:
        raise ClusterError(f"distributed: the cluster has no workers (client status {client.status!r})")
    return tuple(sorted(workers))


def _cluster_call(client: Client, what: str, fn: Callable[[], T]) -> T:
    # Dask reports a lost cluster as a closed client, a closed connection, a timeout or a cancelled
    # future; say so in one library error. Errors raised by the user's code on a worker come back
    # from ``Future.result`` as themselves.
    from distributed import CancelledError
    from distributed.comm.core import CommClosedError

    if client.status != "running":
        raise ClusterError(
            f"distributed: the cluster went away before {what} (client status {client.status!r})"
        )
    try:
        return fn()
    except (CommClosedError, CancelledError, TimeoutError, OSError) as err:
        raise ClusterError(
            f"distributed: the cluster went away while {what}: {type(err).__name__}: {err}"
        ) from err


def _sharded_value_and_grad(
    params: Params,
    x: Array,
    y: Target,
    ctx: Context = EVAL,
    /,
    *,
    client: Client,
    data: Future[Batch],
    workers: tuple[str, ...],
    shares: int,
    net: Layer[Any],
    loss: LossFn,
    timeout: float,
) -> ValueAndGrad:
    ids = x[:, 0].astype(np.int64)  # fit batches the sample indices: see the module docstring
    n = len(ids)
    state = _cluster_call(
        client,
        "sending the params",
        partial(client.scatter, [(params, ctx.buffers)], broadcast=True, hash=False, timeout=timeout),
    )[0]
    task = partial(_run_share_of, net=net, loss=loss)
    level: list[Future[ShareResult]] = [
        client.submit(
            task, state, data, Share(ids[a:b], (a, n), ctx.key, ctx.train),
            workers=[workers[i % len(workers)]], allow_other_workers=True, pure=False,
        )
        for i, (a, b) in enumerate(share_bounds(n, shares))
    ]  # fmt: skip
    while len(level) > 1:  # neighbours first, always in the same order: bit-identical runs
        level = [
            client.submit(combine, *level[i : i + 2], workers=[workers[(i // 2) % len(workers)]],
                          allow_other_workers=True, pure=False) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]  # fmt: skip
    out: ShareResult = _cluster_call(client, "computing a step", partial(level[0].result, timeout=timeout))
    buffers = freeze(out.buffers) if out.buffers else ctx.buffers
    return ValueAndGrad(out.loss, freeze(out.grads), buffers, out.pred)


def _run_share_of(
    state: tuple[Params, Mapping[str, Array]], data: Batch, share: Share, *, net: Layer[Any], loss: LossFn
) -> ShareResult:
    params, buffers = state  # scattered together: one transfer per worker per step
    return run_share(params, buffers, data, share, net=net, loss=loss)


def fit(
    net: Layer[Any],
    loss: LossFn,
    opt: Optimizer[S],
    train_state: TrainState[S],
    data: Batch,
    *,
    client: Client,
    key: Key,
    epochs: int,
    batch_size: int,
    shares: int | None = None,
    timeout: float = 300.0,
    **options: Unpack[FitOptions],
) -> loop.FitResult[S]:
    """:func:`functional_dl.train.fit`, with each batch's gradient computed in shares on a Dask cluster.

    Args:
        net: the network; it and ``loss`` must pickle (module-level functions and partials).
        loss: ``(pred, target) -> (value, dpred)``, a mean over the batch.
        opt: the optimizer whose state ``train_state.opt_state`` holds; it runs on the driver.
        train_state: where to start, as for ``train.fit``.
        data: ``(x, y)``, sent to every worker once.
        client: a ``distributed.Client`` of the cluster (for tests, of a ``LocalCluster``).
        key: the run's key, as for ``train.fit``: the same key gives the same shuffles and masks.
        epochs: how many epochs to run.
        batch_size: samples per step (the *global* batch, split among the workers).
        shares: how many shares each batch is cut into; one per worker by default. The result
            depends on it only through rounding (and batch norm's per-share statistics).
        timeout: seconds to wait for the cluster in any one step before raising ``ClusterError``.
        **options: ``train.fit``'s other keyword options (metrics, penalty, callbacks, ...),
            applied on the driver exactly as ``train.fit`` applies them.

    Returns:
        ``train.fit``'s :class:`~functional_dl.train.FitResult`.

    Raises:
        NotPicklableError: ``net`` or ``loss`` does not pickle.
        ClusterError: the cluster has no workers, or goes away during training.
    """
    check_picklable("distributed.fit", net=net, loss=loss)
    workers = worker_addresses(client, timeout)
    x, y = data
    scattered = _cluster_call(
        client,
        "sending the data",
        partial(client.scatter, [(x, y)], broadcast=True, hash=False, timeout=timeout),
    )[0]
    grad_fn = partial(
        _sharded_value_and_grad,
        client=client,
        data=scattered,
        workers=workers,
        shares=len(workers) if shares is None else shares,
        net=net,
        loss=loss,
        timeout=timeout,
    )
    # fit shuffles and batches these indices exactly as it would the samples themselves.
    ids = np.arange(x.shape[0], dtype=np.float64)[:, None]
    return loop.fit(
        net, loss, opt, train_state, (ids, y), key=key, epochs=epochs, batch_size=batch_size,
        grad_fn=grad_fn, **options,
    )  # fmt: skip
