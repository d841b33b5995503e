"""Purity checks: a function neither mutates its inputs nor depends on anything but them.

``check_purity`` runs a layer's forward and backward twice on private copies of the inputs and
asserts that (1) the inputs are bit-for-bit unchanged afterwards and (2) both runs give bit-for-bit
identical outputs, gradients and state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from functional_dl import random
from functional_dl.types import EVAL, Array, Context, Key, Layer, Params

__all__ = ["assert_bitwise_equal", "check_purity", "snapshot"]


def snapshot(mapping: Mapping[str, npt.ArrayLike]) -> dict[str, Array]:
    """Private copies of every array, for later bit-for-bit comparison."""
    return {k: np.array(v, copy=True) for k, v in mapping.items()}


def _same_bits(a: npt.ArrayLike, b: npt.ArrayLike) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_bitwise_equal(a: Mapping[str, npt.ArrayLike], b: Mapping[str, npt.ArrayLike], what: str) -> None:
    """Raise ``AssertionError`` unless both mappings have the same keys and bit-identical arrays."""
    if a.keys() != b.keys():
        raise AssertionError(f"{what}: keys differ: {sorted(a)} vs {sorted(b)}")
    for k in a:
        if not _same_bits(a[k], b[k]):
            raise AssertionError(f"{what}: {k!r} differs")


def check_purity(
    layer: Layer[Any],
    params: Params,
    x: Array,
    *,
    ctx: Context = EVAL,
    key: Key | None = None,
) -> None:
    """Assert that ``forward`` and ``backward`` are pure on these inputs.

    Checks that ``params``, ``x``, ``ctx.buffers`` and the cotangent are unchanged by the calls, and
    that two runs agree bit for bit on ``y``, ``dx``, every gradient and the new state.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random
        >>> layer = L.dense(2)
        >>> _, params = layer.init(random.key(0), (None, 3))
        >>> check_purity(layer, params, np.ones((4, 3), np.float32))
    """
    before_params, before_x, before_state = snapshot(params), np.array(x, copy=True), snapshot(ctx.buffers)
    results = []
    for _ in range(2):
        y, cache = layer.forward(params, x, ctx)
        dy = random.normal(key if key is not None else random.key(1), y.shape, y.dtype)
        dy_before = dy.copy()
        dx, grads = layer.backward(params, cache, dy)
        state = layer.buffers_of(cache)
        if not _same_bits(dy, dy_before):
            raise AssertionError("backward modified its cotangent dy")
        results.append(
            {
                "y": y,
                "dx": dx,
                **{f"grad:{k}": v for k, v in grads.items()},
                **{f"state:{k}": v for k, v in state.items()},
            }
        )
    assert_bitwise_equal(params, before_params, "params were modified")
    assert_bitwise_equal({"x": x}, {"x": before_x}, "input was modified")
    assert_bitwise_equal(ctx.buffers, before_state, "state was modified")
    assert_bitwise_equal(results[0], results[1], "repeated calls disagree")
