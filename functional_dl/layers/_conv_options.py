"""The hyperparameters every convolution takes: the options type, their checks, their defaults.

Shared by :mod:`~functional_dl.layers.conv` and :mod:`~functional_dl.layers.conv_transpose`, so
neither layer module imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy.typing as npt

from functional_dl.errors import DomainError
from functional_dl.initializers import Initializer, he_normal, zeros
from functional_dl.layers._args import initializer, positive_int
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
