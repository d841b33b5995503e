"""Data-parallel fit on a real 2-worker LocalCluster equals single-process fit."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

import functional_dl as fdl
from functional_dl import checkpoint, losses, metrics, optim, train
from functional_dl.distributed import fit, local_cluster
from functional_dl.distributed._shards import Share, run_share, share_bounds, tree_combine
from functional_dl.errors import ClusterError, LabelError, NotPicklableError
from functional_dl.train import Batch, FitResult, TrainState, ValueAndGrad
from functional_dl.types import EVAL, Array, Context, Layer, Params
from tests.distributed import runs

LOSS = losses.softmax_cross_entropy
OPT = optim.adam(0.01)
KW: dict[str, Any] = {"key": fdl.random.key(2), "epochs": 2, "batch_size": 24, "progress": "none"}
ACC = {"accuracy": metrics.accuracy}


def rel_diff(a: Params, b: Params) -> float:
    """The largest ``max|a - b| / max|b|`` over the entries."""
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k])) / max(float(np.max(np.abs(b[k]))), 1e-300)) for k in a)


def setup(kind: str, dropout: float) -> tuple[Layer[Any], TrainState[Any], Batch]:
    shape: tuple[int | None, ...]
    if kind == "mlp":
        net, data, shape = runs.mlp(dropout), runs.blobs(), (None, 6)
    else:
        net, data, shape = runs.conv_bn(dropout), runs.images(), (None, 1, 6, 6)
    params, buffers = runs.init64(net, shape)
    return net, train.init_train_state(OPT, params, buffers), data


def assert_same(a: FitResult[Any], b: FitResult[Any]) -> None:
    assert a.train_state.step == b.train_state.step
    for k in a.train_state.params:
        np.testing.assert_array_equal(a.train_state.params[k], b.train_state.params[k])
    assert a.train_state.buffers.keys() == b.train_state.buffers.keys()
    for k in a.train_state.buffers:
        np.testing.assert_array_equal(a.train_state.buffers[k], b.train_state.buffers[k])
    assert a.history == b.history


@pytest.mark.parametrize(("kind", "dropout"), [("mlp", 0.0), ("mlp", 0.3), ("conv", 0.0), ("conv", 0.25)])
def test_one_share_is_single_process_fit_bit_for_bit(client: Client, kind: str, dropout: float) -> None:
    net, ts, data = setup(kind, dropout)
    ref = train.fit(net, LOSS, OPT, ts, data, **KW)
    assert_same(fit(net, LOSS, OPT, ts, data, client=client, shares=1, **KW), ref)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_two_workers_equal_single_process_fit_and_each_other(client: Client, dropout: float) -> None:
    net, ts, data = setup("mlp", dropout)
    ref = train.fit(net, LOSS, OPT, ts, data, **KW, metrics=ACC)
    first = fit(net, LOSS, OPT, ts, data, client=client, **KW, metrics=ACC)
    again = fit(net, LOSS, OPT, ts, data, client=client, **KW, metrics=ACC)
    assert ref.train_state.step == first.train_state.step == 8
    assert rel_diff(first.train_state.params, ref.train_state.params) <= 1e-12
    assert rel_diff(first.train_state.params, ts.params) > 1e-3  # training moved the params
    np.testing.assert_allclose(first.history["loss"], ref.history["loss"], rtol=1e-12)
    assert first.history["accuracy"] == ref.history["accuracy"]
    assert_same(again, first)


DATA_BN = runs.images()


def _local_shares(
    params: Params, x: Array, y: Any, ctx: Context = EVAL, /, *, net: Layer[Any], shares: int
) -> ValueAndGrad:
    # The data-parallel arithmetic in one process: the reference for per-share batch norm.
    ids = x[:, 0].astype(np.int64)
    parts = [
        run_share(params, ctx.buffers, DATA_BN, share, net=net, loss=LOSS)
        for share in (
            Share(ids[a:b], (a, len(ids)), ctx.key, ctx.train) for a, b in share_bounds(len(ids), shares)
        )
    ]
    out = tree_combine(parts)
    return ValueAndGrad(out.loss, out.grads, fdl.params.freeze(out.buffers), out.pred)


def test_batch_norm_with_two_shares_uses_each_shares_statistics(client: Client) -> None:
    net, ts, data = setup("conv", 0.25)
    got = fit(net, LOSS, OPT, ts, data, client=client, **KW)
    ids = np.arange(len(data[0]), dtype=np.float64)[:, None]
    local = partial(_local_shares, net=net, shares=2)
    assert_same(got, train.fit(net, LOSS, OPT, ts, (ids, data[1]), **KW, grad_fn=local))
    whole = train.fit(net, LOSS, OPT, ts, data, **KW)  # what it is not: global batch statistics
    assert rel_diff(got.train_state.params, whole.train_state.params) > 1e-9
    # running_mean is exactly the share-weighted mean, so it follows single-process fit closely.
    for k in got.train_state.buffers:
        if k.endswith("running_mean"):
            np.testing.assert_allclose(got.train_state.buffers[k], whole.train_state.buffers[k], rtol=0.2)


def test_callbacks_and_checkpoints_are_those_of_fit(client: Client, tmp_path: Path) -> None:
    net, ts, data = setup("mlp", 0.3)
    val = runs.blobs(30, seed=5)

    def callbacks(name: str) -> list[train.Callback]:
        return [train.validation(net, LOSS, val), train.save_checkpoints(os.path.join(tmp_path, name))]

    ref = train.fit(net, LOSS, OPT, ts, data, **KW, callbacks=callbacks("ref.npz"))
    got = fit(net, LOSS, OPT, ts, data, client=client, shares=1, **KW, callbacks=callbacks("got.npz"))
    assert_same(got, ref)
    assert "val_loss" in got.history
    template = train.init_fit_checkpoint(ts, callbacks("unused"))
    saved = checkpoint.load(os.path.join(tmp_path, "got.npz"), template=template)
    for k in got.train_state.params:
        np.testing.assert_array_equal(saved.train_state.params[k], got.train_state.params[k])


def test_a_bad_batch_raises_the_library_error_from_the_worker(client: Client) -> None:
    net, ts, (x, y) = setup("mlp", 0.0)
    with pytest.raises(LabelError, match=r"softmax_cross_entropy: "):
        fit(net, LOSS, OPT, ts, (x, y + 5), client=client, **KW)


def test_an_unpicklable_loss_is_refused_before_anything_is_sent(client: Client) -> None:
    net, ts, data = setup("mlp", 0.0)

    def closure_loss(pred: Array, target: Any) -> tuple[Array, Array]:
        return LOSS(pred, target)

    with pytest.raises(NotPicklableError, match=r"distributed.fit: loss .*does not pickle.*partial"):
        fit(net, closure_loss, OPT, ts, data, client=client, **KW)


def _shut_down(state: object, end: train.EpochEnd, /, *, client: Client) -> train.CallbackResult:
    client.shutdown()  # type: ignore[no-untyped-call]  # the scheduler and its workers go away after the first epoch
    return train.CallbackResult(None, {})


def test_a_cluster_that_goes_away_raises_cluster_error() -> None:
    net, ts, data = setup("mlp", 0.0)
    with local_cluster(1) as c:
        shut_down = train.Callback(lambda ts: None, partial(_shut_down, client=c))
        with pytest.raises(ClusterError, match=r"^distributed: .*(went away|no workers)"):
            fit(net, LOSS, OPT, ts, data, client=c, timeout=10.0, callbacks=[shut_down], **KW)
        with pytest.raises(ClusterError, match=r"^distributed: "):  # and a client that lost it already
            fit(net, LOSS, OPT, ts, data, client=c, timeout=10.0, **KW)
