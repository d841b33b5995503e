"""PyTorch reference implementations of the registry's layers, keyed by case id.

A reference takes our params and state converted to tensors *by key* (``"0.w"`` is the weight of
the first ``nn.Linear``, ``"scale"`` a batch norm's ``weight``), the input, and the training flag,
and returns the output. Batch norm references update the running-statistics tensors in place, as
PyTorch does, so the test can compare them with ``layer.buffers_of(cache)``.

``TERM_SCALES`` holds, for the cases that can drive ``tanh`` or ``sigmoid`` deep into saturation,
the same network with those activations given slope 1 in the backward pass: the scale of the
terms their derivatives are computed from (see ``TERM_SCALES``).

Import only after ``pytest.importorskip("torch")``; without torch, ``tests/conftest.py`` keeps
--doctest-modules from collecting this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

Tensors = dict[str, torch.Tensor]
TorchRef = Callable[[Tensors, torch.Tensor, Tensors, bool], torch.Tensor]


def to_torch(arrays: Mapping[str, np.ndarray], requires_grad: bool) -> Tensors:
    """Float64 tensors with the same keys (copies, so torch may update them in place)."""
    return {
        k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=requires_grad) for k, v in arrays.items()
    }


def rel_diff(ours: np.ndarray, theirs: np.ndarray, floor: float = 0.0) -> float:
    """``max |ours - theirs| / max(max |theirs|, floor)`` (absolute when both scales are zero)."""
    theirs = np.asarray(theirs, dtype=np.float64)
    diff = float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - theirs), initial=0.0))
    scale = max(float(np.max(np.abs(theirs), initial=0.0)), floor)
    return diff / scale if scale > 0 else diff


def _linear(p: Tensors, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
    return F.linear(x, p[prefix + "w"], p.get(prefix + "b"))


def _batch_norm(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    return F.batch_norm(
        x,
        s["running_mean"],
        s["running_var"],
        p.get("scale"),
        p.get("bias"),
        training=train,
        momentum=0.1,
        eps=1e-5,
    )


def _unit_slope(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """``f(z)`` (up to rounding) in the forward pass, slope exactly 1 in the backward pass."""
    return z + (f(z) - z).detach()


class Saturating(NamedTuple):
    """The saturating activations a reference uses: PyTorch's own, or with unit slope."""

    tanh: Callable[[torch.Tensor], torch.Tensor]
    sigmoid: Callable[[torch.Tensor], torch.Tensor]


TORCH = Saturating(torch.tanh, torch.sigmoid)
UNIT_SLOPE = Saturating(partial(_unit_slope, torch.tanh), partial(_unit_slope, torch.sigmoid))


def _mlp(p: Tensors, x: torch.Tensor, s: Tensors, train: bool, act: Saturating = TORCH) -> torch.Tensor:
    h = torch.relu(_linear(p, x, "0."))
    h = act.tanh(_linear(p, h, "2."))
    return act.sigmoid(_linear(p, h, "4."))


#: Cases whose output is normalised to unit scale. A group of equal values (hypothesis draws them
#: often) makes ``x - mean`` exactly 0 here but rounding noise in PyTorch's fused kernels, and that
#: noise (about 1e-14) reaches the output and the gradients; so these cases compare each array
#: relative to ``max(max |torch|, 1)``, the scale a normalised output and its gradients have.
def _residual_mlp(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    h = _linear(p, x, "0.")
    h = h + torch.tanh(_linear(p, h, "1.0."))
    return h + torch.sigmoid(_linear(p, h, "2.0."))


def _branches_concat(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    return torch.cat([_linear(p, x, "1.0."), torch.tanh(_linear(p, x, "1.1.0."))], dim=-1)


def _branches_sum(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    h = x + _linear(p, x, "1.1.") + (x + _linear(p, x, "1.2."))
    return _linear(p, h, "3.")


def _encoder_decoder(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    h = _linear(p, torch.tanh(_linear(p, x, "encoder.0.")), "encoder.2.")
    return _linear(p, h, "decoder.")


def _bn_at(p: Tensors, x: torch.Tensor, s: Tensors, prefix: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        s[prefix + "running_mean"],
        s[prefix + "running_var"],
        p[prefix + "scale"],
        p[prefix + "bias"],
        training=False,
        eps=0.1,
    )


def _eval_everything(p: Tensors, x: torch.Tensor, s: Tensors, train: bool) -> torch.Tensor:
    h = x + torch.tanh(_bn_at(p, _linear(p, x, "0.0."), s, "0.1."))
    h = _bn_at(p, h, s, "1.1.0.0.") + h
    return _bn_at(p, _linear(p, h, "2.head.0."), s, "2.head.1.")


NORMALISED = frozenset(
    {
        "batch_norm1d_train",
        "batch_norm1d_ncl_train",
        "batch_norm2d_train",
        "batch_norm_no_affine_train",
        "layer_norm",
        "layer_norm_2axes",
        "layer_norm_no_affine",
        "group_norm",
        "group_norm_instance",
        "group_norm_one_group",
    }
)

TORCH_REFS: dict[str, TorchRef] = {
    "dense": lambda p, x, s, t: _linear(p, x),
    "dense_no_bias": lambda p, x, s, t: _linear(p, x),
    "dense_3d_input": lambda p, x, s, t: _linear(p, x),
    "identity": lambda p, x, s, t: x.clone(),
    "relu": lambda p, x, s, t: torch.relu(x),
    "sigmoid": lambda p, x, s, t: torch.sigmoid(x),
    "tanh": lambda p, x, s, t: torch.tanh(x),
    "serial_mlp": _mlp,
    "dropout_eval": lambda p, x, s, t: F.dropout(x, 0.3, training=False),
    "batch_norm1d_train": _batch_norm,
    "batch_norm1d_eval": _batch_norm,
    "batch_norm1d_ncl_train": _batch_norm,
    "batch_norm2d_train": _batch_norm,
    "batch_norm2d_eval": _batch_norm,
    "batch_norm_no_affine_train": _batch_norm,
    "leaky_relu": lambda p, x, s, t: F.leaky_relu(x),
    "leaky_relu_0.2": lambda p, x, s, t: F.leaky_relu(x, 0.2),
    "elu": lambda p, x, s, t: F.elu(x),
    "elu_0.5": lambda p, x, s, t: F.elu(x, 0.5),
    "selu": lambda p, x, s, t: F.selu(x),
    "gelu": lambda p, x, s, t: F.gelu(x),
    "gelu_tanh": lambda p, x, s, t: F.gelu(x, approximate="tanh"),
    "softplus": lambda p, x, s, t: F.softplus(x),
    "softplus_beta2": lambda p, x, s, t: F.softplus(x, beta=2.0),
    "silu": lambda p, x, s, t: F.silu(x),
    # F.hardsigmoid's backward multiplies by 1/6 rounded to float32 even in float64 (a relative
    # error of 3e-8, see test_activations.py); its defining formula through autograd is exact.
    "hard_sigmoid": lambda p, x, s, t: F.relu6(x + 3) / 6,
    "hard_tanh": lambda p, x, s, t: F.hardtanh(x),
    "hard_tanh_asym": lambda p, x, s, t: F.hardtanh(x, -2.0, 0.5),
    "relu6": lambda p, x, s, t: F.relu6(x),
    "hard_swish": lambda p, x, s, t: F.hardswish(x),
    "mish": lambda p, x, s, t: F.mish(x),
    "prelu": lambda p, x, s, t: F.prelu(x, p["a"]),
    "prelu_channels": lambda p, x, s, t: F.prelu(x, p["a"]),
    "glu": lambda p, x, s, t: F.glu(x, dim=-1),
    "glu_dim1": lambda p, x, s, t: F.glu(x, dim=1),
    "softmax": lambda p, x, s, t: torch.softmax(x, dim=-1),
    "softmax_axis1": lambda p, x, s, t: torch.softmax(x, dim=1),
    "log_softmax": lambda p, x, s, t: torch.log_softmax(x, dim=-1),
    "log_softmax_axis1": lambda p, x, s, t: torch.log_softmax(x, dim=1),
    "flatten": lambda p, x, s, t: torch.flatten(x, start_dim=1),
    "reshape": lambda p, x, s, t: x.reshape(x.shape[0], 3, -1),
    "layer_norm": lambda p, x, s, t: F.layer_norm(x, p["scale"].shape, p["scale"], p["bias"]),
    "layer_norm_2axes": lambda p, x, s, t: F.layer_norm(x, p["scale"].shape, p["scale"], p["bias"]),
    "layer_norm_no_affine": lambda p, x, s, t: F.layer_norm(x, x.shape[-1:]),
    "group_norm": lambda p, x, s, t: F.group_norm(x, 2, p["scale"], p["bias"]),
    "group_norm_instance": lambda p, x, s, t: F.group_norm(x, 3, p["scale"], p["bias"]),
    "group_norm_one_group": lambda p, x, s, t: F.group_norm(x, 1),
    "residual_mlp": _residual_mlp,
    "branches_concat": _branches_concat,
    "branches_sum": _branches_sum,
    "encoder_decoder": _encoder_decoder,
    "named_block": lambda p, x, s, t: torch.sigmoid(_linear(p, x, "block.0.")),
    "eval_everything": _eval_everything,
    "adaptive_avg_pool1d": lambda p, x, s, t: F.adaptive_avg_pool1d(x, 3),
    "conv_transpose1d": lambda p, x, s, t: F.conv_transpose1d(
        x, p["w"], p["b"], stride=2, padding=1, output_padding=1
    ),
}

#: The scale of the terms behind each gradient, for cases whose ``tanh`` or ``sigmoid`` saturates.
#: Both libraries compute these derivatives from the rounded output ``y``: ``1 - y*y`` and
#: ``y * (1 - y)``. Deep in saturation (``tanh`` at -8.6: ``1 - y*y = 1.5e-7``) that subtraction
#: cancels, and NumPy's and PyTorch's ``tanh``, which may differ by one unit in the last place,
#: give derivatives that differ by ``2.2e-16 / 1.5e-7 ~ 1e-9`` relative; each is that far from the
#: exact ``1 / cosh(z)^2`` too. In ``serial_mlp`` the relu-dense pre-activations of the ``tanh`` reach
#: such values, and when every unit that carries gradient is saturated, all of ``dx`` and the
#: ``0.*`` and ``2.*`` grads are that small and that uncertain (6e-10 relative was seen). The rounding
#: error is absolute at the scale of the terms ``1`` and ``y*y``, so these arrays are compared
#: relative to the gradient the network has with those slopes set to 1 (when that is larger).
TERM_SCALES: dict[str, TorchRef] = {"serial_mlp": partial(_mlp, act=UNIT_SLOPE)}
