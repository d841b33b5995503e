"""PyTorch ``state_dict`` interop: networks loaded both ways give the same evaluation outputs.

A PyTorch ``Sequential`` (convolution, batch norm with trained running statistics, pooling,
dense) loaded into ours, and ours exported into PyTorch, agree to 1e-6 relative in float32 and
1e-12 in float64 on hypothesis-drawn inputs; every mapped kind round-trips; the strict checks
refuse unknown, missing and wrong-shaped keys by name.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functional_dl as fdl
from functional_dl import interop
from functional_dl import layers as L
from functional_dl.errors import ParamsError, ShapeError

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.torch

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}


def _ours(dtype: Any) -> fdl.Layer[Any]:
    return fdl.serial(
        L.conv2d(3, 3, padding=1, dtype=dtype),
        L.batch_norm2d(dtype=dtype),
        L.relu(),
        L.max_pool2d(2),
        L.flatten(),
        L.dense(4, dtype=dtype),
    )


def _theirs(dtype: Any) -> Any:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 4),
    ).to(torch.float64 if dtype == np.float64 else torch.float32)
    module.train()
    with torch.no_grad():  # running statistics away from their initial zeros and ones
        for _ in range(3):
            module(torch.randn(8, 2, 4, 4, dtype=module[0].weight.dtype) * 2 + 1)
    return module.eval()


def _inputs(dtype: Any) -> st.SearchStrategy[np.ndarray]:
    n = st.integers(1, 4)
    return n.flatmap(
        lambda b: hnp.arrays(dtype, (b, 2, 4, 4), elements=st.floats(-3, 3, allow_nan=False, width=32))
    )


def _rel(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1.0))


def _torch_eval(module: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out: np.ndarray = module(torch.from_numpy(x)).numpy()
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_torch_sequential_loaded_into_ours(dtype: Any, data: st.DataObject) -> None:
    net, module = _ours(dtype), _theirs(dtype)
    _, template, buffers = net.init_with_buffers(fdl.random.key(0), (None, 2, 4, 4))
    params, buffers = interop.from_torch(net, module.state_dict(), template, buffers)
    x = data.draw(_inputs(dtype))
    y, _ = net.forward(params, x, fdl.Context(buffers=buffers))
    assert y.dtype == dtype
    assert _rel(y, _torch_eval(module, x)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_ours_exported_into_torch(dtype: Any, data: st.DataObject) -> None:
    net = _ours(dtype)
    key = data.draw(st.integers(0, 2**16))
    _, params, buffers = net.init_with_buffers(fdl.random.key(key), (None, 2, 4, 4))
    buffers = fdl.params.freeze(
        {
            k: fdl.random.uniform(fdl.random.key(key + 1), v.shape, np.float64, 0.5, 1.5).astype(dtype)
            for k, v in buffers.items()
        }
    )
    module = _theirs(dtype)
    before = module.state_dict()["1.num_batches_tracked"].clone()
    module.load_state_dict(interop.to_torch(net, params, buffers, module.state_dict()))
    assert module.state_dict()["1.num_batches_tracked"] == before  # PyTorch's own count, kept
    x = data.draw(_inputs(dtype))
    y, _ = net.forward(params, x, fdl.Context(buffers=buffers))
    assert _rel(y, _torch_eval(module, x)) <= TOLERANCE[dtype]


def _round_trip(net: fdl.Layer[Any], module: Any, in_shape: fdl.Shape) -> None:
    module = module.double()
    _, template, buffers = net.init_with_buffers(fdl.random.key(0), in_shape)
    params, state = interop.from_torch(net, module.state_dict(), template, buffers)
    exported = interop.to_torch(net, params, state, module.state_dict())
    assert list(exported) == list(module.state_dict())
    for k, v in module.state_dict().items():
        assert torch.equal(exported[k], v), k
    x = fdl.random.normal(fdl.random.key(1), (2, *[s for s in in_shape[1:] if s is not None]), np.float64)
    y, _ = net.forward(params, x, fdl.Context(buffers=state))
    assert _rel(y, _torch_eval(module.eval(), x)) <= 1e-12


@pytest.mark.parametrize(
    ("ours", "theirs", "in_shape"),
    [
        (lambda: L.dense(3, dtype=np.float64), lambda: nn.Linear(4, 3), (None, 4)),
        (
            lambda: L.dense(3, use_bias=False, dtype=np.float64),
            lambda: nn.Linear(4, 3, bias=False),
            (None, 4),
        ),
        (
            lambda: L.conv1d(3, 2, stride=2, dtype=np.float64),
            lambda: nn.Conv1d(2, 3, 2, stride=2),
            (None, 2, 6),
        ),
        (
            lambda: L.conv_transpose1d(
                4, 3, stride=2, padding=1, output_padding=1, groups=2, dtype=np.float64
            ),
            lambda: nn.ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
            (None, 2, 5),
        ),
        (
            lambda: L.conv_transpose2d(3, 2, stride=2, dtype=np.float64),
            lambda: nn.ConvTranspose2d(2, 3, 2, stride=2),
            (None, 2, 3, 3),
        ),
        (lambda: L.batch_norm1d(dtype=np.float64), lambda: nn.BatchNorm1d(3).eval(), (None, 3)),
        (lambda: L.layer_norm(dtype=np.float64), lambda: nn.LayerNorm(5), (None, 5)),
        (lambda: L.group_norm(2, dtype=np.float64), lambda: nn.GroupNorm(2, 4), (None, 4, 3)),
        (lambda: L.prelu(3, dtype=np.float64), lambda: nn.PReLU(3), (None, 3, 2)),
        (
            lambda: fdl.serial(
                L.dense(3, dtype=np.float64), L.tanh(), fdl.residual(L.dense(3, dtype=np.float64))
            ),
            lambda: nn.ModuleDict({"a": nn.Linear(4, 3), "b": nn.Linear(3, 3)}),
            None,
        ),
    ],
    ids=[
        "dense",
        "dense_no_bias",
        "conv1d",
        "conv_transpose1d",
        "conv_transpose2d",
        "batch_norm1d",
        "layer_norm",
        "group_norm",
        "prelu",
        "nested",
    ],
)
def test_every_kind_round_trips(ours: Any, theirs: Any, in_shape: fdl.Shape | None) -> None:
    if in_shape is None:  # a nested network: pairing in order, checked on the arrays only
        net, module = ours(), theirs().double()
        _, template = net.init(fdl.random.key(0), (None, 4))
        params, _ = interop.from_torch(net, module.state_dict(), template)
        assert np.array_equal(params["2.w"], module["b"].weight.detach().numpy())
        assert np.array_equal(params["0.b"], module["a"].bias.detach().numpy())
        return
    _round_trip(ours(), theirs(), in_shape)


def test_adaptive_and_global_pools_own_nothing_and_pair_in_order() -> None:
    """The parameter-free pools need no entry in ``KINDS``: the layers around them pair in order."""
    net = fdl.serial(
        L.conv2d(3, 2, dtype=np.float64),
        L.adaptive_max_pool2d((3, 2)),
        L.adaptive_avg_pool2d(2),
        L.flatten(),
        L.dense(4, dtype=np.float64),
    )
    module = nn.Sequential(
        nn.Conv2d(2, 3, 2),
        nn.AdaptiveMaxPool2d((3, 2)),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 4),
    )
    _round_trip(net, module, (None, 2, 7, 6))
    net1d = fdl.serial(
        L.conv1d(3, 2, dtype=np.float64),
        L.adaptive_avg_pool1d(5),
        L.adaptive_max_pool1d(3),
        L.flatten(),
        L.dense(2, dtype=np.float64),
    )
    module1d = nn.Sequential(
        nn.Conv1d(2, 3, 2), nn.AdaptiveAvgPool1d(5), nn.AdaptiveMaxPool1d(3), nn.Flatten(), nn.Linear(9, 2)
    )
    _round_trip(net1d, module1d, (None, 2, 9))
    global_net = fdl.serial(
        L.conv2d(3, 3, dtype=np.float64), L.global_max_pool(), L.dense(2, dtype=np.float64)
    )
    global_module = nn.Sequential(nn.Conv2d(2, 3, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    _round_trip(global_net, global_module, (None, 2, 5, 5))


def _dense_pair() -> tuple[fdl.Layer[Any], fdl.Params, dict[str, Any]]:
    net = fdl.serial(L.dense(3), L.relu(), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 4))
    module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    return net, params, dict(module.state_dict())


def test_key_map_pairs_explicitly() -> None:
    net, params, sd = _dense_pair()
    swapped = {
        "first.weight": sd["0.weight"],
        "first.bias": sd["0.bias"],
        "last.weight": sd["2.weight"],
        "last.bias": sd["2.bias"],
    }
    reordered = {k: swapped[k] for k in ["last.weight", "last.bias", "first.weight", "first.bias"]}
    loaded, _ = interop.from_torch(net, reordered, params, key_map={"0": "first", "2": "last"})
    assert np.array_equal(loaded["0.w"], sd["0.weight"].numpy())
    assert np.array_equal(loaded["2.b"], sd["2.bias"].numpy())


def test_strict_refusals_name_the_keys() -> None:
    net, params, sd = _dense_pair()
    with pytest.raises(ParamsError, match=r"unexpected PyTorch keys \['2.extra'\]"):
        interop.from_torch(net, {**sd, "2.extra": sd["2.bias"]}, params)
    without_bias = {k: v for k, v in sd.items() if k != "2.bias"}
    with pytest.raises(ParamsError, match=r"no PyTorch entry for \['2.b'\]"):
        interop.from_torch(net, without_bias, params)
    loose, _ = interop.from_torch(net, without_bias, params, strict=False)
    assert np.array_equal(loose["2.b"], params["2.b"])
    with pytest.raises(
        ShapeError, match=r"0.dense: PyTorch's '0.weight' has shape \(4, 3\), expected \(3, 4\) for '0.w'"
    ):
        interop.from_torch(net, {**sd, "0.weight": sd["0.weight"].T}, params)
    with pytest.raises(
        ParamsError, match=r"2 parameterised layers \['0', '2'\] cannot be paired in order with 1"
    ):
        interop.from_torch(net, {"weight": sd["0.weight"], "bias": sd["0.bias"]}, params)
    with pytest.raises(ParamsError, match=r"key_map: no entry for layers \['2'\]"):
        interop.from_torch(net, sd, params, key_map={"0": "0"})
    with pytest.raises(ShapeError, match=r"'2.w' has shape \(2, 3\), PyTorch's '2.weight' expects \(5, 3\)"):
        interop.to_torch(net, params, fdl.params.freeze({}), {**sd, "2.weight": torch.zeros(5, 3)})


def test_a_kind_without_a_mapping_is_refused_by_name() -> None:
    net = fdl.serial(L.dense(2), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 2))
    sd = dict(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).state_dict())
    with pytest.raises(ParamsError, match=r"0.dense: no PyTorch mapping for layer kind 'dense'"):
        interop.from_torch(net, sd, params, kinds={"conv2d": interop.KINDS["conv2d"]})


def test_inputs_are_not_modified() -> None:
    net, params, sd = _dense_pair()
    before = {k: v.clone() for k, v in sd.items()}
    loaded, _ = interop.from_torch(net, sd, params)
    assert all(torch.equal(before[k], sd[k]) for k in sd)
    assert not loaded["0.w"].flags.writeable
    exported = interop.to_torch(net, loaded, fdl.params.freeze({}), sd)
    exported["0.weight"].add_(1.0)  # a copy: our params are untouched
    assert np.array_equal(loaded["0.w"], sd["0.weight"].numpy())


def test_the_package_imports_without_torch() -> None:
    code = "import sys; sys.modules['torch'] = None; import functional_dl.interop; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
