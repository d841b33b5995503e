"""Hypothesis configurations of the recurrent layers, shared by their own tests and the PyTorch ones.

A :class:`RecurrentConfig` is a layer (kind, hidden size, layers, directions, bias) and a batch
(shape, lengths, whether an initial state is given); :func:`draw_inputs` makes the arrays from a
seed, so hypothesis chooses shapes and the values' seed while the values stay smooth random
normals (no ReLU pre-activation lands on its kink).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L

KINDS = ("rnn_tanh", "rnn_relu", "gru", "lstm")


class RecurrentConfig(NamedTuple):
    kind: str
    hidden: int
    num_layers: int
    bidirectional: bool
    bias: bool
    batch: int
    steps: int
    features: int
    lengths: tuple[int, ...] | None  # None: every step valid, no lengths given
    with_state: bool
    seed: int

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


def make_layer(cfg: RecurrentConfig, *, return_state: bool, dtype: Any = np.float64) -> fdl.Layer[Any]:
    kw: dict[str, Any] = {
        "num_layers": cfg.num_layers,
        "bidirectional": cfg.bidirectional,
        "bias": cfg.bias,
        "return_state": return_state,
        "dtype": dtype,
    }
    if cfg.kind.startswith("rnn"):
        return L.rnn(cfg.hidden, nonlinearity="relu" if cfg.kind == "rnn_relu" else "tanh", **kw)
    return (L.gru if cfg.kind == "gru" else L.lstm)(cfg.hidden, **kw)


@st.composite
def recurrent_configs(
    draw: st.DrawFn, *, kinds: tuple[str, ...] = KINDS, max_steps: int = 4, max_layers: int = 2
) -> RecurrentConfig:
    """Short sequences, batch 1 and time 1 included, uneven lengths (zero lengths too)."""
    batch = draw(st.integers(1, 3))
    steps = draw(st.integers(1, max_steps))
    lengths = draw(st.none() | st.tuples(*[st.integers(0, steps)] * batch))
    return RecurrentConfig(
        kind=draw(st.sampled_from(kinds)),
        hidden=draw(st.integers(1, 3)),
        num_layers=draw(st.integers(1, max_layers)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        batch=batch,
        steps=steps,
        features=draw(st.integers(1, 3)),
        lengths=lengths,
        with_state=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def state_of(cfg: RecurrentConfig, dtype: Any = np.float64) -> Any:
    """A random initial state: ``h0``, or ``(h0, c0)`` for the LSTM."""
    shape = (cfg.num_layers * cfg.directions, cfg.batch, cfg.hidden)
    keys = fdl.random.split(fdl.random.key(cfg.seed + 1), 2)
    h0, c0 = (fdl.random.normal(k, shape, np.float64).astype(dtype) for k in keys)
    return (h0, c0) if cfg.kind == "lstm" else h0


def draw_inputs(cfg: RecurrentConfig, dtype: Any = np.float64) -> tuple[Any, ...]:
    """``(x, state, lengths)``: the state ``None`` unless ``with_state``, lengths ``None`` unless given."""
    x = fdl.random.normal(fdl.random.key(cfg.seed), (cfg.batch, cfg.steps, cfg.features), np.float64)
    lengths = None if cfg.lengths is None else np.array(cfg.lengths, dtype=np.int64)
    return x.astype(dtype), state_of(cfg, dtype) if cfg.with_state else None, lengths
