"""The per-layer-kind table that pairs our array names with a PyTorch module's ``state_dict`` names.

A :class:`KindMapping` says, for one kind of layer (``Layer.name``: ``"dense"``, ``"conv2d"``...),
which of our arrays is which of the PyTorch module's entries, and which entries PyTorch keeps that
we do not (batch norm's ``num_batches_tracked``: our batch norm has a fixed momentum, so it never
needs the count). :data:`KINDS` is the table the interop functions use by default; a new layer
kind (a sequence layer, say) adds its entry here, and a user's own layer passes
``kinds={**KINDS, "my_layer": KindMapping(...)}``. Array layouts that differ from PyTorch's are
converted by ``to_torch``/``from_torch`` (identity for every kind below: our dense, convolution
and transposed-convolution weights are stored as PyTorch stores them).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

from functional_dl.types import Array

__all__ = ["KINDS", "ArrayConversion", "KindMapping", "same_layout"]


class ArrayConversion(Protocol):
    """``(name, array) -> array``: one array in the other library's layout (``name`` is ours)."""

    def __call__(self, name: str, array: Array, /) -> Array: ...


def same_layout(name: str, array: Array, /) -> Array:
    """The conversion for arrays stored alike in both libraries: the array itself."""
    return array


class KindMapping(NamedTuple):
    """How one kind of layer's arrays map to its PyTorch module's ``state_dict`` entries.

    Attributes:
        names: ``(ours, theirs)`` pairs (``("w", "weight")``); an array the layer does not own
            (a dense layer without bias) must then be absent on the PyTorch side too.
        torch_only: entries PyTorch keeps and we do not (read and ignored on import, taken from
            the reference ``state_dict`` on export).
        to_torch: our array in PyTorch's layout.
        from_torch: PyTorch's array in ours.
    """

    names: tuple[tuple[str, str], ...]
    torch_only: tuple[str, ...] = ()
    to_torch: ArrayConversion = same_layout
    from_torch: ArrayConversion = same_layout


_WEIGHT_BIAS = KindMapping((("w", "weight"), ("b", "bias")))
_AFFINE = KindMapping((("scale", "weight"), ("bias", "bias")))
_BATCH_NORM = KindMapping(
    (("scale", "weight"), ("bias", "bias"), ("running_mean", "running_mean"), ("running_var", "running_var")),
    torch_only=("num_batches_tracked",),
)

#: The default table, by ``Layer.name``.
KINDS: Mapping[str, KindMapping] = MappingProxyType(
    {
        "dense": _WEIGHT_BIAS,
        "conv1d": _WEIGHT_BIAS,
        "conv2d": _WEIGHT_BIAS,
        "conv_transpose1d": _WEIGHT_BIAS,
        "conv_transpose2d": _WEIGHT_BIAS,
        "batch_norm": _BATCH_NORM,
        "batch_norm1d": _BATCH_NORM,
        "batch_norm2d": _BATCH_NORM,
        "layer_norm": _AFFINE,
        "group_norm": _AFFINE,
        "prelu": KindMapping((("a", "weight"),)),
    }
)
