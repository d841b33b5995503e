"""transformer_encoder_layer against ``torch.nn.TransformerEncoderLayer(batch_first=True)`` in float64.

Weights are copied by key through the renaming of :mod:`functional_dl.interop` (``linear1.w`` is
``linear1.weight``, ``norm1.scale`` is ``norm1.weight``). PyTorch runs in training mode with
``dropout=0`` (the exact maths, none of evaluation's fused fast path) and in evaluation with
``dropout=0.1`` and gradients on (which also keeps it off the fast path). The output, the input
gradient and every parameter gradient agree to 1e-10 relative, for ``norm_first`` both ways, relu
and gelu, with the key-padding and the causal masks. ``d_model`` is at least 3: a layer norm over
one or two features outputs constants (``xhat = +-1``), so the gradients behind it are exactly zero
and PyTorch's rounding of that zero has no scale to compare against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

import functional_dl as fdl
from tests.layers.multi_io import backward_flow, forward_flow
from tests.layers.test_transformer import EncoderConfig, build, encoder_configs, make, padding

torch = pytest.importorskip("torch")
from tests.layers.torch_refs import rel_diff  # noqa: E402  (it imports torch)

pytestmark = pytest.mark.torch

RTOL = 1e-10


def torch_name(ours: str) -> str:
    """Our key as PyTorch's ``state_dict`` names it."""
    module, _, leaf = ours.rpartition(".")
    renamed = {"w": "weight", "b": "bias", "scale": "weight"}.get(leaf, leaf)
    return f"{module}.{renamed}" if module.startswith(("linear", "norm")) else ours


def torch_layer(cfg: EncoderConfig, params: fdl.Params, dropout: float) -> Any:
    module = torch.nn.TransformerEncoderLayer(
        cfg.d_model,
        cfg.heads,
        cfg.feedforward,
        dropout=dropout,
        activation=cfg.activation,
        norm_first=cfg.norm_first,
        batch_first=True,
        dtype=torch.float64,
    )
    module.load_state_dict({torch_name(k): torch.from_numpy(np.array(v)) for k, v in params.items()})
    return module


@pytest.mark.parametrize(("dropout", "train"), [(0.0, True), (0.1, False)], ids=["train_p0", "eval_p0.1"])
@given(cfg=encoder_configs(max_time=5, min_d_model=3))
def test_matches_torch(cfg: EncoderConfig, dropout: float, train: bool) -> None:
    _, params, x = build(cfg)
    layer = make(cfg, dropout)
    mask = padding(cfg)
    ctx = fdl.Context(train=train, key=fdl.random.key(cfg.seed))
    (y, _), cache = forward_flow(layer, params, (x, mask), ctx)
    dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
    (dx, _), grads = backward_flow(layer, params, cache, (dy, None))

    module = torch_layer(cfg, params, dropout).train(train)
    xt = torch.from_numpy(x).requires_grad_(True)
    causal = torch.triu(torch.ones(cfg.time, cfg.time, dtype=torch.bool), 1) if cfg.causal else None
    kpm = None if mask is None else torch.from_numpy(mask)
    yt = module(xt, src_mask=causal, src_key_padding_mask=kpm, is_causal=cfg.causal)
    yt.backward(torch.from_numpy(dy))
    assert rel_diff(y, yt.detach().numpy()) <= RTOL
    assert xt.grad is not None and rel_diff(dx, xt.grad.numpy()) <= RTOL
    theirs = dict(module.named_parameters())
    assert {torch_name(k) for k in grads} == set(theirs)
    for name, g in grads.items():
        grad = theirs[torch_name(name)].grad
        assert grad is not None and rel_diff(g, grad.numpy()) <= RTOL, name
