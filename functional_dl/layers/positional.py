"""Positional encodings for ``(batch, time, d_model)`` sequences: a vector per position, added to the input.

Attention is blind to order; adding a vector that depends on the position ``pos`` makes it see it::

    y[b, pos, :] = x[b, pos, :] + PE[pos, :]        dx = dy

* :func:`sinusoidal_positional_encoding`: the fixed encoding of "Attention is all you need"
  (Vaswani et al., 2017), no parameters; for feature ``j`` of ``d_model`` and ``i = j // 2``::

      PE[pos, 2i]     = sin(pos / base^(2i / d_model))
      PE[pos, 2i + 1] = cos(pos / base^(2i / d_model))        (base = 10000)

  computed in float64 and cast to the input's dtype; any length and any ``d_model`` (an odd last
  feature gets its sine).
* :func:`learned_positional_encoding`: ``PE = weight[:time]`` with a trained ``weight`` of shape
  ``(max_len, d_model)`` (GPT's position embedding); its gradient is
  ``d weight[pos] = sum over the batch of dy[:, pos]`` for ``pos < time`` and zero beyond. A
  sequence longer than ``max_len`` is refused.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_float,
    check_keys,
    check_no_params,
    check_param,
    check_same_dtype,
    not_an_array,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.initializers import Initializer, normal
from functional_dl.layers._args import float_dtype, initializer, positive_int, real
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpec, ArraySpecs, build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["PositionalCache", "learned_positional_encoding", "sinusoidal_positional_encoding"]

_SINUSOIDAL = "sinusoidal_positional_encoding"
_LEARNED = "learned_positional_encoding"
_WEIGHT = frozenset({"weight"})


class PositionalCache(NamedTuple):
    """What backward needs from forward."""

    shape: tuple[int, ...]  # (b, t, d_model): the input's shape, to check dy
    dtype: np.dtype[Any]  # the input's, which dy must have
    kind: str  # the layer that made it (both encodings share this type)


def _sinusoids(length: int, d_model: int, base: float = 10000.0) -> Array:
    """The ``(length, d_model)`` float64 table ``PE`` of the module docstring."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    pair = np.arange(d_model) // 2  # i, for features 2i and 2i + 1
    angle = pos / base ** (2.0 * pair / d_model)
    out: Array = np.where(np.arange(d_model) % 2 == 0, np.sin(angle), np.cos(angle))
    return out


def _sequence_shape(in_shape: Shape, name: str) -> Shape:
    if len(in_shape) != 3 or not isinstance(in_shape[2], int):
        raise ShapeError(name, f"expected an input shape (batch, time, d_model), got {in_shape!r}")
    return in_shape


def _check_sequence(x: Any, name: str) -> Array:
    """``x`` as a float ``(b, t, d)`` array, else the library's error (a tuple included)."""
    if not isinstance(x, np.ndarray):
        raise not_an_array(x, "the input", name)
    if x.ndim != 3:
        raise ShapeError(
            name, f"expected one input array of shape (batch, time, d_model), got {describe_shape(x.shape)}"
        )
    check_float(x, name)
    return x


# --- sinusoidal --------------------------------------------------------------------------------------


def _sinusoidal_shapes(in_shape: Shape, /, *, base: float) -> tuple[Shape, ArraySpecs]:
    return _sequence_shape(in_shape, _SINUSOIDAL), EMPTY_SPECS


def _sinusoidal_forward(
    params: Params, x: Any, ctx: Context = EVAL, /, *, base: float, **slips: object
) -> tuple[Array, PositionalCache]:
    """``y = x + PE[:t]`` for ``x`` of shape ``(b, t, d_model)``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_SINUSOIDAL, slips)
    check_no_params(params, _SINUSOIDAL)
    x = _check_sequence(x, _SINUSOIDAL)
    _, t, d = x.shape
    return x + _sinusoids(t, d, base).astype(x.dtype), PositionalCache(x.shape, x.dtype, _SINUSOIDAL)


def _own_cache(cache: PositionalCache, name: str) -> None:
    """Raise unless ``cache`` is a :class:`PositionalCache` that a forward of layer ``name`` made."""
    check_cache(cache, PositionalCache, name)
    if cache.kind != name:
        wrong_cache(cache, f"PositionalCache of {name}", name)


def _identity_backward(
    params: Params, cache: PositionalCache, dy: Array, /, *, base: float
) -> tuple[Array, Params]:
    _own_cache(cache, _SINUSOIDAL)
    check_no_params(params, _SINUSOIDAL)
    check_dy(dy, cache.shape, cache.dtype, _SINUSOIDAL)
    return dy, EMPTY


def sinusoidal_positional_encoding(*, base: float = 10000.0) -> Layer[PositionalCache]:
    """The fixed sine and cosine encoding added to ``(batch, time, d_model)`` inputs (no parameters).

    ``y[b, pos, 2i] = x[b, pos, 2i] + sin(pos / base^(2i / d_model))`` and
    ``y[b, pos, 2i + 1] = x[b, pos, 2i + 1] + cos(pos / base^(2i / d_model))``.

    Args:
        base: the wavelengths' base (10000 in "Attention is all you need").

    Example:
        >>> import numpy as np
        >>> y, _ = sinusoidal_positional_encoding().forward({}, np.zeros((1, 2, 4)))
        >>> y[0].round(4).tolist()
        [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 1.0]]
    """
    b = real(base, "base", _SINUSOIDAL)
    if not b > 1:
        raise DomainError(_SINUSOIDAL, f"base must be a number above 1, got {base!r}")
    return build(_SINUSOIDAL, _sinusoidal_shapes, _sinusoidal_forward, _identity_backward, base=b)


# --- learned -----------------------------------------------------------------------------------------


def _learned_shapes(in_shape: Shape, /, *, max_len: int, w_init: Initializer) -> tuple[Shape, ArraySpecs]:
    seq = _sequence_shape(in_shape, _LEARNED)
    t, d = seq[1], seq[2]
    if t is not None and t > max_len:
        raise ShapeError(_LEARNED, f"a sequence of {t} steps is longer than max_len {max_len}")
    return seq, {"weight": ArraySpec((max_len, int(d)), w_init)}  # type: ignore[arg-type]  # an int above


def _learned_forward(
    params: Params, x: Any, ctx: Context = EVAL, /, *, max_len: int, **slips: object
) -> tuple[Array, PositionalCache]:
    """``y = x + weight[:t]`` for ``x`` of shape ``(b, t, d_model)``, ``t <= max_len``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_LEARNED, slips)
    check_keys(params, _WEIGHT, _LEARNED)
    x = _check_sequence(x, _LEARNED)
    _, t, d = x.shape
    try:
        weight = check_param(params, "weight", (max_len, d), _LEARNED)
    except ShapeError:
        w = params["weight"]
        if w.shape[0] == max_len and w.ndim == 2:  # a fine weight: the input does not fit it
            raise ShapeError(
                _LEARNED,
                f"expected input of shape (batch, time, {w.shape[1]}), got {describe_shape(x.shape)}",
            ) from None
        raise
    if t > max_len:
        raise ShapeError(_LEARNED, f"a sequence of {t} steps is longer than max_len {max_len}")
    check_same_dtype(x, weight, _LEARNED)
    return x + weight[:t], PositionalCache(x.shape, x.dtype, _LEARNED)


def _weight_grad(params: Params, cache: PositionalCache, dy: Array, max_len: int) -> Params:
    _own_cache(cache, _LEARNED)
    check_keys(params, _WEIGHT, _LEARNED)
    weight = check_param(params, "weight", (max_len, cache.shape[2]), _LEARNED)
    check_dy(dy, cache.shape, weight.dtype, _LEARNED)
    grad = np.zeros_like(weight)
    grad[: cache.shape[1]] = dy.sum(axis=0)  # positions past this sequence's end: no gradient
    return {"weight": grad}


def _learned_backward(
    params: Params, cache: PositionalCache, dy: Array, /, *, max_len: int
) -> tuple[Array, Params]:
    """``dx = dy``; ``d weight[:t] = sum over the batch of dy``, zero beyond ``t``."""
    return dy, _weight_grad(params, cache, dy, max_len)


def _learned_backward_params(params: Params, cache: PositionalCache, dy: Array, /, *, max_len: int) -> Params:
    return _weight_grad(params, cache, dy, max_len)


def learned_positional_encoding(
    max_len: int, *, w_init: Initializer | None = None, dtype: npt.DTypeLike = np.float32
) -> Layer[PositionalCache]:
    """A trained vector per position, ``weight`` of shape ``(max_len, d_model)``, added to the input.

    Args:
        max_len: the longest sequence the layer takes; a longer one is refused with a ``ShapeError``.
        w_init: the initializer of ``weight``; ``N(0, 0.02^2)`` by default (GPT-2's).
        dtype: dtype of ``weight`` (inputs must match it).

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> layer = learned_positional_encoding(16)
        >>> out_shape, params = layer.init(fdl.random.key(0), (None, 10, 8))
        >>> out_shape, params["weight"].shape
        ((None, 10, 8), (16, 8))
        >>> y, _ = layer.forward(params, np.zeros((2, 10, 8), np.float32))
        >>> bool((y[1] == params["weight"][:10]).all())
        True
    """
    n = positive_int(max_len, "max_len", _LEARNED)
    shapes = partial(_learned_shapes, max_len=n, w_init=initializer(w_init, normal(0.02), "w_init", _LEARNED))
    return build(
        _LEARNED,
        shapes,
        _learned_forward,
        _learned_backward,
        dtype=float_dtype(dtype, _LEARNED),
        backward_params=_learned_backward_params,
        max_len=n,
    )
