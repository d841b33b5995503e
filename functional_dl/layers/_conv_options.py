"""What every convolution takes: the options, their checks and defaults, and the input check.

Shared by :mod:`~functional_dl.layers.conv` and :mod:`~functional_dl.layers.conv_transpose`, so
neither layer module imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

from functional_dl._checks import is_array, not_an_array
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.initializers import Initializer, he_normal, zeros
from functional_dl.layers._args import initializer, positive_int
from functional_dl.layers._windows import PaddingSpec
from functional_dl.types import Array, Params

__all__ = ["ConvOptions", "check_channels", "initializers", "input_weight", "layout"]

_Spec = TypeVar("_Spec")


class ConvOptions(TypedDict, total=False):
    """Keyword options of ``conv1d`` and ``conv2d``; :func:`functional_dl.layers.conv2d` says what they mean.

    Defaults: ``stride=1, padding=0, dilation=1, groups=1, use_bias=True``, He normal weights,
    zero biases, ``dtype=float32``.
    """

    stride: int | Sequence[int]
    padding: PaddingSpec
    dilation: int | Sequence[int]
    groups: int
    use_bias: bool
    w_init: Initializer | None
    b_init: Initializer | None
    dtype: npt.DTypeLike


def check_channels(name: str, out_channels: object, groups: object) -> tuple[int, int]:
    """``(out_channels, groups)`` when both are positive ints and ``groups`` divides ``out_channels``."""
    out = positive_int(out_channels, "out_channels", name)
    g = positive_int(groups, "groups", name)
    if out % g:
        raise DomainError(name, f"groups must divide out_channels={out}, got {groups!r}")
    return out, g


def initializers(options: ConvOptions, name: str) -> tuple[Initializer, Initializer]:
    """``(w_init, b_init)`` from ``options``: He normal weights and zero biases by default."""
    return (
        initializer(options.get("w_init"), he_normal(), "w_init", name),
        initializer(options.get("b_init"), zeros(), "b_init", name),
    )


def layout(nd: int) -> str:
    """The input layout of an ``nd``-dimensional convolution, for messages: ``"(N, C, H, W)"``."""
    return "(N, C, L)" if nd == 1 else "(N, C, H, W)"


def input_weight(
    params: Params,
    x: Array,
    spec: _Spec,
    weight: Callable[[Params, int, _Spec], Array],
    *,
    nd: int,
    name: str,
) -> Array:
    """The weight for input ``x`` of shape ``(N, C, *S)``, once ``x`` is an array of ``nd + 2`` axes.

    ``weight(params, C, spec)`` checks the params against what ``init`` makes for ``C`` channels;
    its complaint is reported with the input's shape, since the input may be what is wrong.
    """
    if type(x) is not np.ndarray or x.ndim != nd + 2:
        if not is_array(x):
            raise not_an_array(x, "the input", name)
        if x.ndim != nd + 2:
            raise ShapeError(
                name, f"expected a {nd + 2}-D input {layout(nd)}, got shape {describe_shape(x.shape)}"
            )
    try:
        return weight(params, x.shape[1], spec)
    except ShapeError as err:
        raise ShapeError(name, f"{err.detail}; input of shape {describe_shape(x.shape)}") from None
