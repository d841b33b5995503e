"""Dense (fully connected) layer: ``y = x @ w.T + b``.

Weights are stored ``(n_out, n_in)`` as ``torch.nn.Linear`` stores them, so a PyTorch ``state_dict``
maps onto these params by renaming ``weight``/``bias`` to ``w``/``b``.

Shapes: ``x`` is ``(batch, n_in)`` (or ``(batch, ..., n_in)``), ``w`` is ``(n_out, n_in)``, ``b`` is
``(n_out,)`` and ``y`` is ``(batch, ..., n_out)``.

Gradients, with ``dy = dL/dy``::

    dx = dy @ w            dw = dy^T x (summed over all leading axes)          db = sum(dy)

In the column-per-sample notation of the classic courses, ``Z = W A + b`` with ``A`` of shape
``(n_in, m)``; ours is its transpose, ``Z^T = A^T W^T + b``, with the batch first as in PyTorch.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_keys,
    check_param,
    check_same_dtype,
    not_an_array,
    refuse_forward_keywords,
)
from functional_dl.errors import ShapeError, describe_shape
from functional_dl.initializers import Initializer, he_normal, zeros
from functional_dl.layers._args import flag, initializer, positive_int
from functional_dl.layers._builder import ArraySpecs, build, weight_and_bias
from functional_dl.params import FrozenParams
from functional_dl.types import EVAL, Array, Context, Layer, Params, Shape

__all__ = ["DenseCache", "dense"]

_WITH_BIAS = frozenset({"w", "b"})
_NO_BIAS = frozenset({"w"})
_DICTS = (dict, FrozenParams)  # the mappings whose keys the fast path compares directly


class DenseCache(NamedTuple):
    """What backward needs from forward."""

    x: Array  # (batch, ..., n_in)


def _shapes(
    in_shape: Shape, /, *, n_out: int, w_init: Initializer, b_init: Initializer, use_bias: bool
) -> tuple[Shape, ArraySpecs]:
    """Params ``{"w": (n_out, n_in), "b": (n_out,)}`` for inputs of shape ``(batch, ..., n_in)``."""
    if len(in_shape) < 2 or in_shape[-1] is None:
        raise ShapeError(
            "dense", f"expected an input shape (batch, ..., n_in), got {describe_shape(in_shape)}"
        )
    return (*in_shape[:-1], n_out), weight_and_bias(
        (n_out, in_shape[-1]), n_out, w_init, b_init, use_bias=use_bias
    )


def _checked_params(params: Params, n_in: int, n_out: int, use_bias: bool) -> Array:
    """The weight, after checking the params are what ``init`` makes for ``n_in`` input features."""
    check_keys(params, _WITH_BIAS if use_bias else _NO_BIAS, "dense")
    w = check_param(params, "w", (n_out, n_in), "dense")
    if use_bias:
        check_param(params, "b", (n_out,), "dense", w.dtype)
    return w


def _fast_params(params: Params, n_in: int, n_out: int, use_bias: bool) -> Array | None:
    """The weight when the params pass every check of :func:`_checked_params`, else ``None``.

    The good path of those checks as one pass of comparisons, without a call per check: dense
    layers run on every step of small networks, where each Python call shows. Anything unusual
    (a wrong value, an ndarray subclass, a mapping that is not a dict) returns ``None``, and the
    caller runs the checks themselves, which raise the message (or accept the subclass).
    """
    if type(params) not in _DICTS or params.keys() != (_WITH_BIAS if use_bias else _NO_BIAS):
        return None
    w = params["w"]
    if type(w) is not np.ndarray or w.shape != (n_out, n_in) or w.dtype.kind != "f":
        return None
    if use_bias:
        b = params["b"]
        if type(b) is not np.ndarray or b.shape != (n_out,) or b.dtype != w.dtype:
            return None
    return w


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, n_out: int, use_bias: bool, **slips: object
) -> tuple[Array, DenseCache]:
    """``y = x @ w.T + b``; ``x`` is ``(batch, ..., n_in)``, ``y`` is ``(batch, ..., n_out)``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("dense", slips)
    w = _fast_params(params, x.shape[-1], n_out, use_bias) if type(x) is np.ndarray and x.ndim >= 2 else None
    if w is None or x.dtype != w.dtype:
        w = _checked_forward(params, x, n_out, use_bias)
    y = x @ w.T
    if use_bias:
        y += params["b"]  # y is our own fresh array, so adding in place is safe and saves a temporary
    return y, DenseCache(x)


def _checked_forward(params: Params, x: Array, n_out: int, use_bias: bool) -> Array:
    """Forward's checks one by one (its slow path): raise what is wrong, else return the weight."""
    _check_input(params, x)
    try:
        w = _checked_params(params, x.shape[-1], n_out, use_bias)
    except ShapeError:
        _check_input(params, x)  # the input does not fit a weight that is fine: say so
        raise
    check_same_dtype(x, w, "dense")
    return w


def _check_input(params: Params, x: object) -> None:
    """Raise unless ``x`` is an array of rank 2 or more whose last axis fits the params' weight."""
    if not isinstance(x, np.ndarray):
        raise not_an_array(x, "the input", "dense")
    w = params.get("w") if isinstance(params, dict) else None
    n_in = w.shape[1] if isinstance(w, np.ndarray) and w.ndim == 2 else None
    if x.ndim < 2 or (n_in is not None and x.shape[-1] != n_in):
        raise ShapeError(
            "dense", f"expected input of shape (batch, {n_in or 'n_in'}), got {describe_shape(x.shape)}"
        )


def _backward_weight(params: Params, cache: DenseCache, dy: Array, n_out: int, use_bias: bool) -> Array:
    """The weight, after checking the cache, the params (those of the forward) and ``dy``."""
    if type(cache) is DenseCache:
        x_shape = cache.x.shape
        w = _fast_params(params, x_shape[-1], n_out, use_bias)
        if (
            w is not None
            and type(dy) is np.ndarray
            and dy.dtype == w.dtype
            and dy.shape == (*x_shape[:-1], n_out)
        ):
            return w
    check_cache(cache, DenseCache, "dense")  # the slow path: the checks one by one
    x = cache.x
    w = _checked_params(params, x.shape[-1], n_out, use_bias)
    check_dy(dy, (*x.shape[:-1], n_out), w.dtype, "dense")
    return w


def _bias_grad(dy: Array) -> Array:
    """``db = sum(dy)`` over every axis but the last: the formula, and the reference for the fast path."""
    out: Array = dy.reshape(-1, dy.shape[-1]).sum(axis=0)
    return out


def _bias_grad_fast(dy: Array) -> Array:
    """:func:`_bias_grad` as the matrix-vector product ``ones @ dy`` (rows: every axis but the last).

    BLAS does it in about a third of the time of NumPy's row-by-row reduction along axis 0. The
    ones come from ``np.empty`` + ``fill`` because ``np.ones`` is a Python-level wrapper costing
    twice as much. It agrees with :func:`_bias_grad` up to the order of the additions (the tests
    bound the difference by ``n * eps * sum(|dy|)`` per entry, ``n`` the number of rows).
    """
    rows = dy.reshape(-1, dy.shape[-1])
    ones = np.empty(rows.shape[0], dy.dtype)
    ones.fill(1)
    out: Array = ones @ rows
    return out


def _grads(w: Array, x: Array, dy: Array, use_bias: bool) -> Params:
    if x.ndim == 2:
        dw = dy.T @ x
    else:
        lead = tuple(range(x.ndim - 1))
        dw = np.tensordot(dy, x, axes=(lead, lead))
    if use_bias:
        return {"w": dw, "b": _bias_grad_fast(dy)}
    return {"w": dw}


def _backward(
    params: Params, cache: DenseCache, dy: Array, /, *, n_out: int, use_bias: bool
) -> tuple[Array, Params]:
    """``dx = dy @ w``, ``dw = dy^T x``, ``db = sum(dy)`` over every axis but the last."""
    w = _backward_weight(params, cache, dy, n_out, use_bias)
    return dy @ w, _grads(w, cache.x, dy, use_bias)


def _backward_params(
    params: Params, cache: DenseCache, dy: Array, /, *, n_out: int, use_bias: bool
) -> Params:
    """``dw`` and ``db`` as :func:`_backward` computes them, without ``dx = dy @ w``."""
    w = _backward_weight(params, cache, dy, n_out, use_bias)
    return _grads(w, cache.x, dy, use_bias)


def dense(
    n_out: int,
    *,
    use_bias: bool = True,
    w_init: Initializer | None = None,
    b_init: Initializer | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[DenseCache]:
    """A dense layer with ``n_out`` outputs.

    Args:
        n_out: number of output features.
        use_bias: whether to add a bias ``b`` of shape ``(n_out,)``.
        w_init: weight initializer; He normal (``N(0, 2 / n_in)``) by default, right for ReLU.
        b_init: bias initializer; zeros by default.
        dtype: dtype of the parameters (inputs must match it).

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = dense(3)
        >>> out_shape, params = layer.init(random.key(0), (None, 4))
        >>> out_shape, params["w"].shape, params["b"].shape
        ((None, 3), (3, 4), (3,))
        >>> y, cache = layer.forward(params, np.ones((2, 4), np.float32))
        >>> y.shape, y.dtype
        ((2, 3), dtype('float32'))
    """
    shapes = partial(
        _shapes,
        w_init=initializer(w_init, he_normal(), "w_init", "dense"),
        b_init=initializer(b_init, zeros(), "b_init", "dense"),
    )
    return build(
        "dense",
        shapes,
        _forward,
        _backward,
        dtype=dtype,
        backward_params=_backward_params,
        n_out=positive_int(n_out, "n_out", "dense"),
        use_bias=flag(use_bias, "use_bias", "dense"),
    )
