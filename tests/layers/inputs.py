"""Drawing a registry case's inputs: a layer, params, an input batch and a context.

Shared by the contract tests and the PyTorch comparisons so both see the same kind of inputs.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functional_dl as fdl
from functional_dl.testing import strategies as fst
from tests.layers.cases import LayerCase


def _elements(case: LayerCase) -> st.SearchStrategy[float]:
    """Input entries in ``[-bound, bound]``, kept away from 0 (``min_magnitude``) and from kinks."""
    elements = st.floats(-case.bound, case.bound, allow_nan=False, allow_infinity=False, width=32)
    if case.min_magnitude > 0:
        elements = elements.filter(lambda v: abs(v) >= case.min_magnitude)
    if case.kinks:
        elements = elements.filter(lambda v: all(abs(v - k) >= 1e-3 for k in case.kinks))
    return elements


def _random_state(state: fdl.Buffers, key: fdl.Key) -> fdl.Buffers:
    """Positive random values in place of the initial state (running means and variances)."""
    keys = fdl.random.split(key, len(state))
    return fdl.params.freeze(
        {
            name: fdl.random.uniform(k, v.shape, np.float64, 0.5, 1.5).astype(v.dtype)
            for k, (name, v) in zip(keys, sorted(state.items()), strict=True)
        }
    )


def draw_case(
    case: LayerCase, data: st.DataObject, dtype: Any
) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray, fdl.Context, fdl.Shape]:
    """Build ``case``'s layer and draw float ``dtype`` params, input and context for it.

    The input is float ``dtype`` too, or integer ids for a case with ``ids``.
    """
    layer = case.make()
    features = data.draw(case.features)
    batch = data.draw(st.integers(case.min_batch, max(case.min_batch, 4)))
    if case.ids:
        x = data.draw(hnp.arrays(np.int64, (batch, *features), elements=st.integers(0, case.ids - 1)))
    else:
        x = data.draw(hnp.arrays(np.dtype(dtype), (batch, *features), elements=_elements(case)))
    key = data.draw(fst.keys())
    init_key, ctx_key = fdl.random.split(key)
    out_shape, params, state = layer.init_with_buffers(init_key, (None, *features))
    if case.random_state:
        state = _random_state(state, ctx_key)
    params = fdl.params.cast(params, dtype)
    state = fdl.params.cast(state, dtype)
    ctx = fdl.Context(train=case.train, key=ctx_key if case.train else None, buffers=state)
    return layer, params, x, ctx, out_shape


def example_case(case: LayerCase) -> tuple[fdl.Layer[Any], fdl.Params, Any, fdl.Context]:
    """The case's layer with params, an input and a context of its example shape (no hypothesis)."""
    layer = case.make()
    _, params, buffers = layer.init_with_buffers(fdl.random.key(0), (None, *case.example_features))
    shape = (2, *case.example_features)
    if case.ids:
        x: Any = np.arange(math.prod(shape)).reshape(shape) % case.ids
    else:
        x = fdl.random.normal(fdl.random.key(1), shape, np.float32)
    return layer, params, x, fdl.Context(train=case.train, key=fdl.random.key(2), buffers=buffers)


def moved_params(
    layer: fdl.Layer[Any], in_shape: Any, seed: int, scale: float, dtype: Any
) -> tuple[fdl.Params, np.random.Generator]:
    """``layer``'s params from ``key(seed)`` plus ``scale`` times normal noise (biases off zero, norm
    scales off one), in ``dtype``, and the generator that drew the noise, for the test's inputs."""
    _, params = layer.init(fdl.random.key(seed), in_shape)
    rng = np.random.default_rng(seed)
    return {k: (v + scale * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}, rng


def _sequence_output(layer: fdl.Layer[Any], params: fdl.Params, mask: Any, x: np.ndarray) -> Any:
    """The output sequence of ``layer`` fed ``(x, mask)`` (the first entry if it returns a tuple)."""
    y: object = layer.forward(params, (x, mask), fdl.EVAL)[0]  # type: ignore[arg-type]  # a tuple input
    return y[0] if isinstance(y, tuple) else y


def assert_causal(
    layer: fdl.Layer[Any],
    params: fdl.Params,
    x: np.ndarray,
    mask: Any,
    t: int,
    *,
    seed: int,
    later_change: bool,
) -> None:
    """A causal sequence layer fed ``(x, mask)`` gives, for ``x`` changed after step ``t``, bit-identical
    outputs up to ``t``; with ``later_change``, different ones after it (not when padding can leave a
    later step seeing only unchanged keys). ``x`` is ``(batch, time, features)``."""
    later = x.copy()
    later[:, t + 1 :] += np.random.default_rng(seed).standard_normal(later[:, t + 1 :].shape)
    f = partial(_sequence_output, layer, params, mask)
    y, y2 = f(x), f(later)
    assert np.array_equal(y[:, : t + 1], y2[:, : t + 1])
    if later_change and t + 1 < x.shape[1]:
        assert not np.array_equal(y[:, t + 1 :], y2[:, t + 1 :])
