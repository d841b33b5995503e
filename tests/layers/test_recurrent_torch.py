"""rnn, gru and lstm against ``torch.nn.RNN/GRU/LSTM`` in float64, weights copied by key.

Two layers and bidirectional among the hypothesis configurations, lengths through
``pack_padded_sequence`` (PyTorch refuses zero lengths, so they start at 1 here), an initial
state when drawn, and the final state. The output sequence, the final state and every gradient
(input, initial state, each parameter) must agree to 1e-10 relative to the largest entry of
PyTorch's result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

import functional_dl as fdl
from tests.layers.multi_io import backward_flow, forward_flow
from tests.layers.recurrent_cases import RecurrentConfig, draw_inputs, make_layer, recurrent_configs

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

RTOL = 1e-10


def _rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    diff = float(np.max(np.abs(ours - theirs), initial=0.0))
    scale = float(np.max(np.abs(theirs), initial=0.0))
    return diff / scale if scale > 0 else diff


def _torch_module(cfg: RecurrentConfig) -> Any:
    kw: dict[str, Any] = {
        "num_layers": cfg.num_layers,
        "bidirectional": cfg.bidirectional,
        "bias": cfg.bias,
        "batch_first": True,
        "dtype": torch.float64,
    }
    if cfg.kind.startswith("rnn"):
        return torch.nn.RNN(cfg.features, cfg.hidden, nonlinearity=cfg.kind[4:], **kw)
    return (torch.nn.GRU if cfg.kind == "gru" else torch.nn.LSTM)(cfg.features, cfg.hidden, **kw)


def _parts(cfg: RecurrentConfig, state: Any) -> tuple[Any, ...]:
    return tuple(state) if cfg.kind == "lstm" else (state,)


@given(cfg=recurrent_configs())
def test_matches_torch(cfg: RecurrentConfig) -> None:
    _check_against_torch(cfg)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("with_state", [False, True])
def test_two_bidirectional_layers_with_lengths_match_torch(kind: str, with_state: bool) -> None:
    _check_against_torch(RecurrentConfig(kind, 3, 2, True, True, 4, 6, 2, (6, 1, 3, 5), with_state, 11))


def _check_against_torch(cfg: RecurrentConfig) -> None:
    if cfg.lengths is not None:  # PyTorch's packed sequences need every length >= 1
        cfg = cfg._replace(lengths=tuple(max(n, 1) for n in cfg.lengths))
    layer = make_layer(cfg, return_state=True)
    _, params = layer.init(fdl.random.key(cfg.seed + 2), (None, cfg.steps, cfg.features))
    params = fdl.params.cast(params, np.float64)
    x, state, lengths = draw_inputs(cfg)

    module = _torch_module(cfg)
    with torch.no_grad():
        for name, p in module.named_parameters():  # weights copied by key
            p.copy_(torch.from_numpy(np.array(params[name])))
    assert {n for n, _ in module.named_parameters()} == set(params)
    x_t = torch.tensor(x, requires_grad=True)
    state_t = None
    if state is not None:
        state_t = tuple(torch.tensor(s, requires_grad=True) for s in _parts(cfg, state))
    seq: Any = x_t
    if lengths is not None:
        seq = torch.nn.utils.rnn.pack_padded_sequence(
            x_t, torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
    out_t, final_t = module(seq, None if state_t is None else (state_t if cfg.kind == "lstm" else state_t[0]))
    if lengths is not None:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True, total_length=cfg.steps)

    (y, final), cache = forward_flow(layer, params, (x, state, lengths))
    assert _rel_diff(y, out_t.detach().numpy()) <= RTOL
    for ours, theirs in zip(_parts(cfg, final), _parts(cfg, final_t), strict=True):
        assert _rel_diff(ours, theirs.detach().numpy()) <= RTOL

    dy = fdl.random.normal(fdl.random.key(cfg.seed + 3), y.shape, np.float64)
    parts = _parts(cfg, final)
    keys = fdl.random.split(fdl.random.key(cfg.seed + 4), len(parts))
    dfinal = tuple(fdl.random.normal(k, f.shape, np.float64) for k, f in zip(keys, parts, strict=True))
    loss = (out_t * torch.from_numpy(dy)).sum() + sum(
        (f * torch.from_numpy(d)).sum() for f, d in zip(_parts(cfg, final_t), dfinal, strict=True)
    )
    loss.backward()
    dx, grads = backward_flow(layer, params, cache, (dy, dfinal if cfg.kind == "lstm" else dfinal[0]))
    assert _rel_diff(dx[0], x_t.grad.numpy()) <= RTOL
    if state_t is not None:
        for ours, theirs in zip(_parts(cfg, dx[1]), state_t, strict=True):
            assert _rel_diff(ours, theirs.grad.numpy()) <= RTOL
    else:
        assert dx[1] is None
    assert dx[2] is None
    for name, p in module.named_parameters():
        assert _rel_diff(grads[name], p.grad.numpy()) <= RTOL, name
