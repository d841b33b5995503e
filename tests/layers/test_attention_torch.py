"""multi_head_attention against ``torch.nn.MultiheadAttention(batch_first=True)`` in float64.

Weights are copied by key (the state_dict maps unchanged); the key-padding mask and the causal mask
are given to PyTorch as boolean masks. The output, the input gradient and every parameter gradient
must agree to 1e-10 relative to the largest entry of PyTorch's result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

from tests.layers.multi_io import forward_flow
from tests.layers.test_attention import AttentionConfig, attention_configs, build, padding_mask

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

RTOL = 1e-10


def _rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = float(np.max(np.abs(theirs), initial=0.0))
    diff = float(np.max(np.abs(ours - theirs), initial=0.0))
    return diff / scale if scale > 0 else diff


def torch_attention(cfg: AttentionConfig, params: Any) -> Any:
    """The PyTorch module holding ``params``, copied by key."""
    module = torch.nn.MultiheadAttention(cfg.d_model, cfg.heads, batch_first=True, dtype=torch.float64)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})
    return module


def torch_masks(cfg: AttentionConfig) -> dict[str, Any]:
    """PyTorch's keyword masks: True where attention is not allowed."""
    mask = padding_mask(cfg)
    causal = torch.triu(torch.ones(cfg.time, cfg.time, dtype=torch.bool), 1) if cfg.causal else None
    return {"key_padding_mask": None if mask is None else torch.from_numpy(mask), "attn_mask": causal}


@given(cfg=attention_configs(max_time=5))
def test_matches_torch_with_both_masks(cfg: AttentionConfig) -> None:
    layer, params, x = build(cfg)
    y, cache = forward_flow(layer, params, (x, padding_mask(cfg)))
    dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
    (dx, _), grads = layer.backward(params, cache, dy)

    module = torch_attention(cfg, params)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, _ = module(xt, xt, xt, need_weights=False, **torch_masks(cfg))
    yt.backward(torch.from_numpy(dy))
    assert _rel_diff(y, yt.detach().numpy()) <= RTOL
    assert xt.grad is not None and _rel_diff(dx, xt.grad.numpy()) <= RTOL
    for name, p in module.named_parameters():
        assert p.grad is not None and _rel_diff(grads[name], p.grad.numpy()) <= RTOL, name
    assert set(grads) == {name for name, _ in module.named_parameters()}
