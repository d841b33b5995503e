"""The hyperparameters every convolution takes: the options type, their checks, their defaults.

Shared by :mod:`~functional_dl.layers.conv` and :mod:`~functional_dl.layers.conv_transpose`, so
neither layer module imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy.typing as npt

from functional_dl.initializers import Initializer, he_normal, zeros
from functional_dl.layers._builder import or_default
from functional_dl.layers._windows import PaddingSpec

__all__ = ["ConvOptions", "check_channels", "initializers", "layout"]


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


def check_channels(name: str, out_channels: int, groups: int) -> None:
    """Raise ``ValueError`` unless both are positive ints and ``groups`` divides ``out_channels``."""
    if not isinstance(out_channels, int) or out_channels <= 0:
        raise ValueError(f"{name}: out_channels must be a positive int, got {out_channels!r}")
    if not isinstance(groups, int) or groups <= 0 or out_channels % groups:
        raise ValueError(
            f"{name}: groups must be a positive int dividing out_channels={out_channels}, got {groups!r}"
        )


def initializers(options: ConvOptions) -> tuple[Initializer, Initializer]:
    """``(w_init, b_init)`` from ``options``: He normal weights and zero biases by default."""
    return or_default(options.get("w_init"), he_normal()), or_default(options.get("b_init"), zeros())


def layout(nd: int) -> str:
    """The input layout of an ``nd``-dimensional convolution, for messages: ``"(N, C, H, W)"``."""
    return "(N, C, L)" if nd == 1 else "(N, C, H, W)"
