"""conv1d, conv2d, conv_transpose1d and conv_transpose2d against ``torch.nn.functional`` in float64.

Forward output and every gradient (input, weight, bias) must agree to 1e-10 relative (measured
against the largest entry of PyTorch's result) over the hypothesis configurations of
``test_conv.py``. Asymmetric padding is given to PyTorch through ``F.pad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl.layers._conv_gemm import SHALLOW_DEPTH
from tests.layers.test_conv import ConvConfig, conv_configs, transpose_configs

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

RTOL = 1e-10


def rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    """``max |ours - theirs| / max |theirs|`` (absolute when ``theirs`` is all zero)."""
    diff = float(np.max(np.abs(ours - theirs), initial=0.0))
    scale = float(np.max(np.abs(theirs), initial=0.0))
    return diff / scale if scale > 0 else diff


def _assert_all_close(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    for name, value in theirs.items():
        assert ours[name].shape == value.shape, name
        assert rel_diff(ours[name], value) <= RTOL, (name, rel_diff(ours[name], value))


def _torch_pad(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    # F.pad takes the last axis first.
    return tuple(p for pair in reversed(pads) for p in pair)


def _compare_with_torch(
    layer: fdl.Layer[Any], params: fdl.Params, x: np.ndarray, seed: int, torch_fn: Callable[..., Any]
) -> None:
    """Run ``layer`` and ``torch_fn(x, w, b)`` forward and backward; compare output and gradients."""
    y, cache = layer.forward(params, x)
    dy = fdl.random.normal(fdl.random.key(seed + 1), y.shape, np.float64)
    dx, grads = layer.backward(params, cache, dy)
    xt = torch.tensor(x, requires_grad=True)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    yt = torch_fn(xt, tensors["w"], tensors.get("b"))
    yt.backward(torch.tensor(dy))
    theirs = {"y": yt.detach().numpy(), "x": xt.grad.numpy()} | {
        k: t.grad.numpy() for k, t in tensors.items()
    }
    _assert_all_close({"y": y, "x": dx, **grads}, theirs)


@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_matches_torch(cfg: ConvConfig, seed: int) -> None:
    _check_conv_against_torch(cfg, seed)


def _check_conv_against_torch(cfg: ConvConfig, seed: int) -> None:
    params, x = cfg.params_and_input(seed)
    conv = F.conv1d if cfg.nd == 1 else F.conv2d

    def reference(xt: Any, wt: Any, bt: Any) -> Any:
        padded = F.pad(xt, _torch_pad(cfg.pads))
        return conv(padded, wt, bt, stride=cfg.stride, dilation=cfg.dilation, groups=cfg.groups)

    _compare_with_torch(cfg.layer(), params, x, seed, reference)


@pytest.mark.parametrize(
    "cfg",
    [
        ConvConfig(2, 2, 8, 3, (5, 6), (3, 3), (1, 2), ((1, 1), (0, 2)), (1, 1), 1, True),
        ConvConfig(1, 3, 48, 4, (9,), (3,), (2,), ((1, 1),), (2,), 2, False),
    ],
)
def test_deep_conv_matches_torch(cfg: ConvConfig) -> None:
    """Products deeper than ``SHALLOW_DEPTH`` take the channels-major GEMM (the drawn ones are shallow)."""
    assert cfg.in_channels // cfg.groups * int(np.prod(cfg.kernel)) > SHALLOW_DEPTH
    _check_conv_against_torch(cfg, 0)


# PyTorch warns that an even kernel needs a padded copy; that is its performance note, not ours.
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [(3, 3), (4, 2), (1, 1)])
def test_same_padding_matches_torch(kernel: tuple[int, int], dilation: int) -> None:
    layer = fdl.layers.conv2d(3, kernel, padding="same", dilation=dilation, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 2, 7, 6))
    x = fdl.random.normal(fdl.random.key(1), (2, 2, 7, 6), np.float64)
    y, _ = layer.forward(params, x)
    yt = F.conv2d(
        torch.tensor(x),
        torch.tensor(params["w"]),
        torch.tensor(params["b"]),
        padding="same",
        dilation=dilation,
    )
    assert rel_diff(y, yt.numpy()) <= RTOL


@pytest.mark.parametrize("nd", [1, 2])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_conv_transpose_matches_torch(nd: int, data: st.DataObject, seed: int) -> None:
    """Strides, paddings, output_padding, dilation, groups and bias drawn together, in 1-D and 2-D."""
    cfg = data.draw(transpose_configs(nd))
    params, x = cfg.params_and_input(seed)
    torch_fn = F.conv_transpose1d if nd == 1 else F.conv_transpose2d

    def reference(xt: Any, wt: Any, bt: Any) -> Any:
        return torch_fn(
            xt,
            wt,
            bt,
            stride=cfg.stride,
            padding=cfg.padding,
            output_padding=cfg.output_padding,
            groups=cfg.groups,
            dilation=cfg.dilation,
        )

    _compare_with_torch(cfg.layer(), params, x, seed, reference)


@pytest.mark.parametrize("train", [True, False])
def test_conv_net_with_batch_norm_matches_torch(train: bool) -> None:
    """conv -> batch_norm2d -> relu -> max_pool -> strided conv -> global pool -> dense, in both modes."""
    L = fdl.layers
    net = fdl.serial(
        # No bias before batch norm: its exact gradient is 0 in training mode, so only rounding
        # noise would be compared.
        L.conv2d(4, 3, padding=1, use_bias=False, dtype=np.float64),
        L.batch_norm2d(dtype=np.float64),
        L.relu(),
        L.max_pool2d(2),
        L.conv2d(3, 3, stride=2, padding=1, dtype=np.float64),
        L.global_avg_pool(),
        L.dense(2, dtype=np.float64),
    )
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 2, 8, 8))
    # A non-trivial running state, so evaluation mode does more than divide by sqrt(1 + eps).
    state = {"1.running_mean": np.full(4, 0.3), "1.running_var": np.full(4, 1.7)}
    x = fdl.random.normal(fdl.random.key(1), (5, 2, 8, 8), np.float64)
    y, cache = net.forward(params, x, fdl.Context(train=train, buffers=state))
    dy = fdl.random.normal(fdl.random.key(2), y.shape, np.float64)
    dx, grads = net.backward(params, cache, dy)
    new_state = net.buffers_of(cache)

    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    s = {k: torch.tensor(v) for k, v in state.items()}
    xt = torch.tensor(x, requires_grad=True)
    h = F.conv2d(xt, p["0.w"], padding=1)
    h = F.batch_norm(h, s["1.running_mean"], s["1.running_var"], p["1.scale"], p["1.bias"], training=train)
    h = F.max_pool2d(torch.relu(h), 2)
    h = F.conv2d(h, p["4.w"], p["4.b"], stride=2, padding=1).mean(dim=(2, 3))
    yt = F.linear(h, p["6.w"], p["6.b"])
    yt.backward(torch.tensor(dy))
    _assert_all_close(
        {"y": y, "x": dx, **grads, **new_state},
        {"y": yt.detach().numpy(), "x": xt.grad.numpy()}
        | {k: t.grad.numpy() for k, t in p.items()}
        | {k: t.numpy() for k, t in s.items()},
    )
