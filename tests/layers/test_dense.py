"""Dense's fast paths against what they replace: the bias gradient's formula, the parameter checks."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import LayerError
from functional_dl.layers.dense import _bias_grad, _bias_grad_fast, _checked_params, _fast_params
from functional_dl.params import FrozenParams, freeze
from functional_dl.testing import strategies as fst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_fast_bias_grad_agrees_with_the_formula(dtype: Any, data: st.DataObject) -> None:
    shape = data.draw(fst.shapes(min_dims=2, max_dims=4, max_side=40))
    dy = data.draw(fst.arrays(shape, dtype=dtype, bound=1e3))
    plain, fast = _bias_grad(dy), _bias_grad_fast(dy)
    assert fast.dtype == plain.dtype == dy.dtype
    assert fast.shape == plain.shape == (shape[-1],)
    # Both are sums of the same n numbers in different orders: each is within (n - 1) u sum|dy| of
    # the exact sum (u = eps / 2, the unit roundoff), so they differ by at most n eps sum|dy|.
    rows = dy.reshape(-1, shape[-1])
    bound = rows.shape[0] * np.finfo(dtype).eps * np.abs(rows).sum(axis=0, dtype=np.float64)
    assert (np.abs(fast.astype(np.float64) - plain.astype(np.float64)) <= bound).all()


def test_fast_bias_grad_is_exact_on_small_integers() -> None:
    dy = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11
    np.testing.assert_array_equal(_bias_grad_fast(dy), _bias_grad(dy))
    np.testing.assert_array_equal(_bias_grad(dy), dy.sum(axis=(0, 1)))


class _Subclass(np.ndarray):
    """An ndarray subclass: the fast path leaves it to the checks, which accept it."""


def _param_variants(params: dict[str, np.ndarray[Any, Any]]) -> list[Any]:
    """The params as init makes them, and wrong or unusual in one way each."""
    w, b = params["w"], params["b"]
    variants: list[Any] = [params, freeze(params), MappingProxyType(params), None, list(params.values())]
    for key, a in params.items():
        for bad in (a[..., None], a.astype(np.float64), a.astype(np.int64), a.tolist(), a.view(_Subclass)):
            variants.append({**params, key: bad})
        variants.append({k: v for k, v in params.items() if k != key})
    variants += [{**params, "c": b}, {"w": w[:1], "b": b[:1]}, {"w": w[:, :1], "b": b}]
    return variants


@pytest.mark.parametrize("use_bias", [True, False])
def test_the_fast_parameter_check_agrees_with_the_checks(use_bias: bool) -> None:
    """``_fast_params`` accepts exactly what ``_checked_params`` accepts from dicts of plain arrays."""
    layer = L.dense(3, use_bias=use_bias)
    _, made = layer.init(fdl.random.key(0), (None, 4))
    x = np.ones((2, 4), np.float32)
    full = {"w": made["w"], "b": np.zeros(3, np.float32)}
    for variant in _param_variants(full):
        params = {k: v for k, v in variant.items() if k != "b"} if isinstance(variant, dict) else variant
        params = variant if use_bias else params
        fast = _fast_params(params, x.shape[-1], 3, use_bias)
        try:
            slow = _checked_params(params, x.shape[-1], 3, use_bias)
        except LayerError:
            assert fast is None  # the fast path never lets through what the checks refuse
            continue
        plain = type(params) in (dict, FrozenParams) and all(type(v) is np.ndarray for v in params.values())
        assert fast is slow if plain else (fast is None or fast is slow)  # and takes all it can of the rest
