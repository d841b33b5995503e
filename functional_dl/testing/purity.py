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
from functional_dl._flow import Leaf, Path, differentiable, leaf_name, leaves, map_leaves
from functional_dl.types import EVAL, Array, Context, Flow, Key, Layer, Params

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


def _entries(flow: object, root: str) -> dict[str, Array]:
    """The arrays of a flow by name (``"y"``, ``"y[1]"``); ``None`` entries are left out."""
    return {leaf_name(path, root): v for path, v in leaves(flow) if v is not None}  # type: ignore[arg-type, misc]


def _random_cotangent(y: object, key: Key) -> Flow | None:
    """A cotangent of ``y``'s dtypes for each float output, ``None`` for the others."""
    paths = [path for path, _ in leaves(y)]  # type: ignore[arg-type]
    keys = dict(zip(paths, random.split(key, len(paths)), strict=True))

    def draw(path: Path, v: Leaf) -> Leaf:
        return random.normal(keys[path], v.shape, v.dtype) if differentiable(v) else None

    if not isinstance(y, tuple):
        return random.normal(key, y.shape, y.dtype)  # type: ignore[attr-defined]
    return map_leaves(draw, y)


def check_purity(
    layer: Layer[Any],
    params: Params,
    x: Array | Flow,
    *,
    ctx: Context = EVAL,
    key: Key | None = None,
) -> None:
    """Assert that ``forward`` and ``backward`` are pure on these inputs.

    Checks that ``params``, ``x``, ``ctx.buffers`` and the cotangent are unchanged by the calls, and
    that two runs agree bit for bit on ``y``, ``dx``, every gradient and the new state. ``x`` may
    be a tuple for a layer with several inputs (every entry is checked, integer ones included);
    a layer with several outputs gets a cotangent for each float output.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random
        >>> layer = L.dense(2)
        >>> _, params = layer.init(random.key(0), (None, 3))
        >>> check_purity(layer, params, np.ones((4, 3), np.float32))
    """
    before_params, before_state = snapshot(params), snapshot(ctx.buffers)
    before_x = snapshot(_entries(x, "x"))
    results = []
    for _ in range(2):
        y, cache = layer.forward(params, x, ctx)  # type: ignore[arg-type]  # a tuple for several inputs
        dy = _random_cotangent(y, key if key is not None else random.key(1))
        dy_before = snapshot(_entries(dy, "dy"))
        dx, grads = layer.backward(params, cache, dy)  # type: ignore[arg-type]
        state = layer.buffers_of(cache)
        if not all(_same_bits(v, dy_before[k]) for k, v in _entries(dy, "dy").items()):
            raise AssertionError("backward modified its cotangent dy")
        results.append(
            {
                **_entries(y, "y"),
                **_entries(dx, "dx"),
                **{f"grad:{k}": v for k, v in grads.items()},
                **{f"state:{k}": v for k, v in state.items()},
            }
        )
    assert_bitwise_equal(params, before_params, "params were modified")
    assert_bitwise_equal(_entries(x, "x"), before_x, "input was modified")
    assert_bitwise_equal(ctx.buffers, before_state, "state was modified")
    assert_bitwise_equal(results[0], results[1], "repeated calls disagree")
