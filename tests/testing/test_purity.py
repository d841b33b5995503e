"""The purity checker must catch mutation and non-determinism."""

from __future__ import annotations

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.testing import check_purity


def _mutating_value(x: fdl.Array, /) -> fdl.Array:
    x *= 2  # mutates the caller's input
    return x


def _grad(x: fdl.Array, y: fdl.Array, dy: fdl.Array, /) -> fdl.Array:
    return dy


_CALLS: list[int] = []


def _impure_value(x: fdl.Array, /) -> fdl.Array:
    _CALLS.append(1)  # depends on hidden state
    out: fdl.Array = x + len(_CALLS)
    return out


def test_pure_layer_passes() -> None:
    layer = fdl.serial(L.dense(3), L.tanh())
    _, params = layer.init(fdl.random.key(0), (None, 2))
    check_purity(layer, params, np.ones((4, 2), np.float32))


def test_detects_input_mutation() -> None:
    layer: fdl.Layer[ElementwiseCache] = elementwise("bad", _mutating_value, _grad)
    with pytest.raises(AssertionError, match="input was modified"):
        check_purity(layer, {}, np.ones((2, 2)))


def test_detects_hidden_state() -> None:
    layer: fdl.Layer[ElementwiseCache] = elementwise("bad", _impure_value, _grad)
    with pytest.raises(AssertionError, match="repeated calls disagree"):
        check_purity(layer, {}, np.ones((2, 2)))
