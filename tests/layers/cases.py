"""The registry of every layer under test. Adding a case here is all it takes to contract-test a layer.

Each :class:`LayerCase` says how to build the layer and which inputs it accepts; the contract tests
in ``test_contract.py`` (shape contract, dtypes, finite differences, purity, pickling) run over all
of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.testing import strategies as fst


class LayerCase(NamedTuple):
    """One layer configuration for the contract tests.

    Attributes:
        id: test id.
        make: builds the layer (default float32 params).
        features: strategy for the input's non-batch shape.
        min_magnitude: keep input entries at least this far from 0 (kinks at 0).
        train: run forward in training mode with a key (layers that sample).
        bound: inputs are drawn from ``[-bound, bound]``.
    """

    id: str
    make: Callable[[], fdl.Layer[Any]]
    features: st.SearchStrategy[tuple[int, ...]]
    min_magnitude: float = 0.0
    train: bool = False
    bound: float = 3.0


def _vector(max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    return fst.shapes(min_dims=1, max_dims=1, max_side=max_side)


def _mlp() -> fdl.Layer[Any]:
    return fdl.serial(L.dense(4), L.relu(), L.dense(3), L.tanh(), L.dense(2), L.sigmoid())


LAYER_CASES: list[LayerCase] = [
    LayerCase("dense", lambda: L.dense(3), _vector()),
    LayerCase("dense_no_bias", lambda: L.dense(2, use_bias=False), _vector()),
    LayerCase("dense_3d_input", lambda: L.dense(2), fst.shapes(min_dims=2, max_dims=2, max_side=3)),
    LayerCase("identity", L.identity, fst.shapes(max_dims=3)),
    LayerCase("relu", L.relu, fst.shapes(max_dims=3), min_magnitude=1e-3),
    LayerCase("sigmoid", L.sigmoid, fst.shapes(max_dims=3)),
    LayerCase("tanh", L.tanh, fst.shapes(max_dims=3)),
    LayerCase("serial_mlp", _mlp, _vector(), min_magnitude=1e-3),
]
