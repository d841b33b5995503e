"""The non-overlapping max pooling path against the general window path it replaces.

Both must give bit-identical outputs and input gradients (so the same chosen taps, as ``dy`` has no
zeros): the values are copied, never computed. Inputs are drawn from a handful of values
(including zeros, as after a ReLU, and infinities) so that ties, PyTorch's first-maximum rule, are common.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl.layers import _max_tiles, max_pool1d, max_pool2d
from functional_dl.layers._windows import size
from functional_dl.layers.pool import _geometry, _max_forward_windows, _scatter, _spec


@st.composite
def tiled_inputs(draw: st.DrawFn) -> tuple[np.ndarray, tuple[int, ...]]:
    """An ``(N, C, *S)`` input with many ties and a kernel no larger than it (remainders allowed)."""
    nd = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    spatial = tuple(draw(st.integers(k, 3 * k + 2)) for k in kernel)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = st.sampled_from([0.0, 0.0, 1.0, -1.0, 2.5, np.inf, -np.inf])
    x = draw(hnp.arrays(dtype, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial), elements=values))
    return x, kernel


@given(tiled_inputs(), st.integers(0, 2**31 - 1))
def test_tiles_match_the_window_path(inp: tuple[np.ndarray, tuple[int, ...]], seed: int) -> None:
    x, kernel = inp
    layer = (max_pool1d if len(kernel) == 1 else max_pool2d)(kernel)
    spec = _spec(f"max_pool{len(kernel)}d", len(kernel), kernel, None, 0)
    out, pads = _geometry(x.shape[2:], spec)
    assert _max_tiles.applies(spec.kernel, spec.stride, spec.dilation, pads)
    fast = _max_tiles.max_and_picks(x, kernel, out)
    assert fast is not None
    reference, cache = _max_forward_windows(x, spec, out, pads)
    assert cache.argmax is not None
    np.testing.assert_array_equal(fast[0], reference)
    assert fast[0].dtype == x.dtype
    dy = np.random.default_rng(seed).standard_normal(reference.shape).astype(x.dtype)
    dy[dy == 0] = 1  # a zero would hide which tap was chosen
    parts = (np.where(cache.argmax == k, dy, dy.dtype.type(0)) for k in range(size(kernel)))
    expected = _scatter(x.shape, spec, out, pads, parts)
    got = _max_tiles.scatter(fast[1], dy, x.shape, kernel)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == x.dtype
    # The layer takes the fast path and returns the same.
    y, layer_cache = layer.forward({}, x)
    np.testing.assert_array_equal(y, reference)
    np.testing.assert_array_equal(layer.backward({}, layer_cache, dy)[0], expected)


def test_a_nan_falls_back_to_the_window_path_and_its_last_nan_rule() -> None:
    x = np.array([[[[np.nan, 1.0], [np.nan, 0.0]]]])
    assert _max_tiles.max_and_picks(x, (2, 2), (1, 1)) is None
    y, cache = max_pool2d(2).forward({}, x)
    assert np.isnan(y).all()
    assert cache.argmax is not None
    assert cache.argmax.ravel().tolist() == [2]  # PyTorch: a later NaN replaces an earlier one


def test_overlapping_padded_or_dilated_windows_do_not_apply() -> None:
    assert not _max_tiles.applies((2, 2), (1, 2), (1, 1), ((0, 0), (0, 0)))
    assert not _max_tiles.applies((2, 2), (2, 2), (1, 2), ((0, 0), (0, 0)))
    assert not _max_tiles.applies((2, 2), (2, 2), (1, 1), ((0, 1), (0, 0)))
    assert _max_tiles.applies((2, 3), (2, 3), (1, 1), ((0, 0), (0, 0)))
