"""Adaptive and global poolings against plain formulas; their bins and errors.

``test_pool_torch.py`` compares them with PyTorch and ``cases.py`` registers them for the contract
tests; here the max poolings are checked against a reference written straight from the
definition (one bin at a time, the first maximum of its row-major scan, the last NaN if any),
including ties, NaNs, overlapping bins and outputs larger than the input.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DomainError, DTypeError, ParamsError, ShapeError
from functional_dl.layers._adaptive_bins import bin_bounds, bin_matrix, bin_taps
from functional_dl.layers.adaptive_max_pool import _bins
from functional_dl.testing import check_gradients
from tests.layers.test_pool import distinct_values


def _bin(n: int, o: int, i: int) -> range:
    """PyTorch's bin ``i`` of ``o`` over ``n`` positions, written from its formula."""
    return range((i * n) // o, -(-((i + 1) * n) // o))


def _chosen(values: np.ndarray) -> int:
    """The position PyTorch's scan keeps: a strictly larger value or a NaN replaces the maximum."""
    best = 0
    for p in range(1, values.size):
        if values[p] > values[best] or np.isnan(values[p]):
            best = p
    return best


def reference_max_pool(x: np.ndarray, out: tuple[int, ...], dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y, dx)`` of adaptive max pooling, one output position (and sample, channel) at a time."""
    spatial = x.shape[2:]
    y = np.empty((*x.shape[:2], *out), x.dtype)
    dx = np.zeros_like(x)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for index in itertools.product(*(range(o) for o in out)):
            cells = list(
                itertools.product(*(_bin(s, o, i) for s, o, i in zip(spatial, out, index, strict=True)))
            )
            values = np.array([x[(n, c, *cell)] for cell in cells])
            cell = cells[_chosen(values)]
            y[(n, c, *index)] = x[(n, c, *cell)]
            dx[(n, c, *cell)] += dy[(n, c, *index)]
    return y, dx


def _max_layer(nd: int, out: tuple[int, ...]) -> fdl.Layer[Any]:
    return L.adaptive_max_pool1d(out[0]) if nd == 1 else L.adaptive_max_pool2d(out)


@st.composite
def _configs(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """An input shape ``(N, C, *S)`` and an output size: divisible, not, equal, larger."""
    nd = draw(st.sampled_from([1, 2]))
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    out = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial), out


def tie_values(shape: tuple[int, ...], seed: int, kind: str) -> np.ndarray:
    """Values of one ``kind``: ``"distinct"``, ``"ties"`` (small integers) or ``"nan"`` (ties and NaNs)."""
    if kind == "distinct":
        return distinct_values(shape, seed)
    key, nan_key = fdl.random.split(fdl.random.key(seed))
    x = np.round(fdl.random.normal(key, shape, np.float64))
    if kind == "nan":
        x[fdl.random.uniform(nan_key, shape, np.float64) < 0.2] = np.nan
    return x


@given(config=_configs(), seed=st.integers(0, 2**16), kind=st.sampled_from(["distinct", "ties", "nan"]))
def test_adaptive_max_pool_is_the_reference(
    config: tuple[tuple[int, ...], tuple[int, ...]], seed: int, kind: str
) -> None:
    shape, out = config
    x = tie_values(shape, seed, kind)
    layer = _max_layer(len(out), out)
    y, cache = layer.forward({}, x)
    dy = fdl.random.normal(fdl.random.key(seed + 1), y.shape, np.float64)
    dx, _ = layer.backward({}, cache, dy)
    y_ref, dx_ref = reference_max_pool(x, out, dy)
    np.testing.assert_array_equal(y, y_ref)  # NaNs in the same places
    np.testing.assert_array_equal(dx, dx_ref)  # the same sums in the same order


@given(config=_configs(), seed=st.integers(0, 2**16))
def test_adaptive_max_pool_finite_differences(
    config: tuple[tuple[int, ...], tuple[int, ...]], seed: int
) -> None:
    shape, out = config
    report = check_gradients(_max_layer(len(out), out), {}, distinct_values(shape, seed))
    assert report.checked == int(np.prod(shape))


@given(
    shape=st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["distinct", "ties", "nan"]),
)
def test_global_max_pool_is_the_reference(shape: tuple[int, ...], seed: int, kind: str) -> None:
    x = tie_values(shape, seed, kind)
    y, cache = L.global_max_pool().forward({}, x)
    dy = fdl.random.normal(fdl.random.key(seed + 1), y.shape, np.float64)
    dx, _ = L.global_max_pool().backward({}, cache, dy)
    y_ref, dx_ref = reference_max_pool(x, (1,) * (x.ndim - 2), dy[(...,) + (None,) * (x.ndim - 2)])
    np.testing.assert_array_equal(y, y_ref.reshape(y.shape))
    np.testing.assert_array_equal(dx, dx_ref)
    if kind == "distinct":
        check_gradients(L.global_max_pool(), {}, x)


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7)),
    out=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool1d_is_the_mean_over_each_bin(
    shape: tuple[int, int, int], out: int, seed: int
) -> None:
    x = fdl.random.normal(fdl.random.key(seed), shape, np.float64)
    layer = L.adaptive_avg_pool1d(out)
    y, _ = layer.forward({}, x)
    expected = np.stack([x[..., list(_bin(shape[2], out, i))].mean(axis=-1) for i in range(out)], axis=-1)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-15)
    check_gradients(layer, {}, x)
    y2, _ = L.adaptive_avg_pool2d((1, out)).forward({}, x[:, :, None, :])  # the 2-D layer on one row
    np.testing.assert_allclose(y, y2[:, :, 0], rtol=1e-14, atol=1e-16)  # other BLAS calls: not bitwise


@pytest.mark.parametrize(("n_in", "n_out"), [(n, o) for n in range(1, 9) for o in range(1, 12)])
def test_bins_are_pytorchs_and_cover_the_input(n_in: int, n_out: int) -> None:
    starts, ends = bin_bounds(n_in, n_out)
    assert [range(s, e) for s, e in zip(starts, ends, strict=True)] == [
        _bin(n_in, n_out, i) for i in range(n_out)
    ]
    assert set(np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])) == set(
        range(n_in)
    )
    taps = bin_taps(n_in, n_out)
    for row, s, e in zip(taps, starts, ends, strict=True):
        assert row[: e - s].tolist() == list(range(s, e)) and set(row[e - s :]) <= {e - 1}
    matrix = bin_matrix(n_in, n_out, np.dtype(np.float64))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-15)
    assert not taps.flags.writeable and not matrix.flags.writeable


@pytest.mark.parametrize(("n", "o"), [(6, 3), (6, 1), (4, 4), (8, 2)])
@pytest.mark.parametrize("axis", [2, 3])
def test_divisible_bins_reshape_to_the_gathered_bins(n: int, o: int, axis: int) -> None:
    """The reshape ``_bins`` uses when ``o`` divides ``n`` is the general gather of ``bin_taps``."""
    shape = [2, 3, 5, 5]
    shape[axis] = n
    v = fdl.random.normal(fdl.random.key(n), tuple(shape), np.float64)
    np.testing.assert_array_equal(_bins(v, axis, o), np.take(v, bin_taps(n, o), axis=axis))


def test_overlapping_bins_accumulate_the_gradient() -> None:
    # Five outputs over three entries: bins {0}, {0, 1}, {1}, {1, 2}, {2}.
    x = np.array([[[1.0, 3.0, 2.0]]])
    y, cache = L.adaptive_max_pool1d(5).forward({}, x)
    assert y.ravel().tolist() == [1.0, 3.0, 3.0, 3.0, 2.0]
    dx, _ = L.adaptive_max_pool1d(5).backward({}, cache, np.array([[[1.0, 2.0, 4.0, 8.0, 16.0]]]))
    assert dx.ravel().tolist() == [1.0, 14.0, 16.0]


def test_ties_and_nans_follow_pytorchs_scan() -> None:
    x = np.array([[[[2.0, 1.0], [2.0, 2.0]]], [[[np.nan, 2.0], [np.nan, 5.0]]]])
    for layer in (L.adaptive_max_pool2d(1), L.global_max_pool()):
        y, cache = layer.forward({}, x)
        dx, _ = layer.backward({}, cache, np.ones_like(y))
        assert y.ravel()[0] == 2.0 and np.isnan(y.ravel()[1])
        assert dx[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # the first 2.0
        assert dx[1, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]  # the last NaN


def test_none_keeps_an_axis() -> None:
    x = distinct_values((2, 3, 4, 5), 0)
    y, _ = L.adaptive_max_pool2d((None, 2)).forward({}, x)
    assert y.shape == (2, 3, 4, 2)
    assert L.adaptive_max_pool2d((None, 2)).init(fdl.random.key(0), (None, 3, 4, 5))[0] == (None, 3, 4, 2)
    y1, _ = L.adaptive_avg_pool1d(None).forward({}, x[:, :, 0])
    np.testing.assert_array_equal(y1, x[:, :, 0])


@pytest.mark.parametrize("layer", [L.adaptive_max_pool1d(3), L.adaptive_avg_pool1d(3)], ids=["max", "avg"])
def test_one_dimensional_float32_in_float32_out(layer: fdl.Layer[Any]) -> None:
    y, cache = layer.forward({}, np.ones((2, 3, 5), np.float32))
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32


_FACTORIES = {
    "adaptive_avg_pool1d": L.adaptive_avg_pool1d,
    "adaptive_avg_pool2d": L.adaptive_avg_pool2d,
    "adaptive_max_pool1d": L.adaptive_max_pool1d,
    "adaptive_max_pool2d": L.adaptive_max_pool2d,
}


@pytest.mark.parametrize("name", sorted(_FACTORIES))
@pytest.mark.parametrize("size", [0, -1, 2.5, "2", True, (2, 2, 2), [], np.float64(2.0)])
def test_bad_output_sizes_are_refused_by_name(name: str, size: Any) -> None:
    with pytest.raises(DomainError, match=rf"^{name}: output_size must be a positive int"):
        _FACTORIES[name](size)


def test_sizes_per_axis() -> None:
    with pytest.raises(DomainError, match=r"adaptive_max_pool2d: .* got \(2, 0\)"):
        L.adaptive_max_pool2d((2, 0))
    with pytest.raises(DomainError, match=r"adaptive_max_pool1d: .* got \(2, 2\)"):
        L.adaptive_max_pool1d((2, 2))  # type: ignore[arg-type]
    numpy_int = (np.int64(2),)  # accepted, as NumPy ints are everywhere else
    assert L.adaptive_max_pool1d(numpy_int).init(fdl.random.key(0), (None, 1, 5))[0] == (None, 1, 2)  # type: ignore[arg-type]


_LAYERS = [
    (L.adaptive_max_pool1d(2), np.ones((2, 3)), r"adaptive_max_pool1d: expected a 3-D input \(N, C, L\)"),
    (
        L.adaptive_avg_pool1d(2),
        np.ones((1, 2, 3, 4)),
        r"adaptive_avg_pool1d: expected a 3-D input \(N, C, L\)",
    ),
    (
        L.adaptive_max_pool2d(2),
        np.ones((1, 3, 4)),
        r"adaptive_max_pool2d: expected a 4-D input \(N, C, H, W\)",
    ),
    (L.global_max_pool(), np.ones((3, 4)), r"global_max_pool: expected an input \(N, C, \*spatial\)"),
    (
        L.adaptive_max_pool2d(2),
        np.ones((1, 1, 0, 3)),
        r"adaptive_max_pool2d: expected non-empty spatial axes",
    ),
    (L.global_max_pool(), np.ones((1, 1, 3, 0)), r"global_max_pool: expected non-empty spatial axes"),
    (L.global_avg_pool(), np.ones((1, 1, 0)), r"global_avg_pool: expected non-empty spatial axes"),
]


@pytest.mark.parametrize(("layer", "x", "message"), _LAYERS)
def test_shape_errors_name_the_layer(layer: fdl.Layer[Any], x: np.ndarray, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        layer.forward({}, x)


@pytest.mark.parametrize(
    ("layer", "in_shape", "message"),
    [
        (L.adaptive_max_pool1d(2), (None, 3), r"adaptive_max_pool1d: expected \(N, C, L\), got \(batch, 3\)"),
        (L.adaptive_avg_pool1d(2), (None, 1, 2, 3), r"adaptive_avg_pool1d: expected \(N, C, L\)"),
        (L.adaptive_max_pool2d(2), (None, 3, 4), r"adaptive_max_pool2d: expected \(N, C, H, W\)"),
        (L.global_max_pool(), (None, 3), r"global_max_pool: expected \(N, C, \*spatial\)"),
    ],
)
def test_init_shape_errors_name_the_layer(layer: fdl.Layer[Any], in_shape: fdl.Shape, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        layer.init(fdl.random.key(0), in_shape)


@pytest.mark.parametrize(
    "layer",
    [L.adaptive_max_pool1d(2), L.adaptive_avg_pool1d(2), L.adaptive_max_pool2d(2), L.global_max_pool()],
    ids=lambda layer: layer.name,
)
def test_integer_input_params_and_bad_dy_are_refused_by_name(layer: fdl.Layer[Any]) -> None:
    shape = (1, 2, 3) if layer.name.endswith("1d") else (1, 2, 3, 3)
    with pytest.raises(DTypeError, match=rf"^{layer.name}: expected a floating-point input"):
        layer.forward({}, np.ones(shape, np.int64))
    with pytest.raises(ParamsError, match=rf"^{layer.name}: parameter keys do not match"):
        layer.forward({"w": np.ones(1)}, np.ones(shape))
    y, cache = layer.forward({}, np.ones(shape))
    with pytest.raises(ShapeError, match=rf"^{layer.name}: expected dy of shape"):
        layer.backward({}, cache, np.ones((*y.shape, 1)))
    with pytest.raises(DTypeError, match=rf"^{layer.name}: expected dy of dtype float64 \(the layer.s\)"):
        layer.backward({}, cache, np.ones(y.shape, np.int64))
