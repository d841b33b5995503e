"""The per-layer-kind table that pairs our array names with a PyTorch module's ``state_dict`` names.

A :class:`KindMapping` says, for one kind of layer (``Layer.name``: ``"dense"``, ``"conv2d"``...),
which of our arrays is which of the PyTorch module's entries, and which entries PyTorch keeps that
we do not (batch norm's ``num_batches_tracked``: our batch norm has a fixed momentum, so it never
needs the count). :data:`KINDS` is the table the interop functions use by default; a new layer
kind adds its entry here, and a user's own layer passes
``kinds={**KINDS, "my_layer": KindMapping(...)}``. Array layouts that differ from PyTorch's are
converted by ``to_torch``/``from_torch`` (identity for every kind below: our dense, convolution
and transposed-convolution weights are stored as PyTorch stores them, and the recurrent and
attention layers' arrays are PyTorch's, names included). A combinator whose kind is in the table
is paired as one unit (its children are not paired one by one).
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
        names: ``(ours, theirs)`` pairs (``("w", "weight")``), in the order of PyTorch's
            ``state_dict``; an array the layer does not own (a dense layer without bias) must then
            be absent on the PyTorch side too. A name may be dotted (``"out_proj.weight"``): the
            layer then spans PyTorch's submodules (see :mod:`~functional_dl.interop.torch_state`).
        torch_only: entries PyTorch keeps and we do not (read and ignored on import, taken from
            the reference ``state_dict`` on export).
        to_torch: our array in PyTorch's layout.
        from_torch: PyTorch's array in ours.
        same_names: every array the layer owns has PyTorch's name, besides any in ``names``
            (recurrent layers, whose names depend on ``num_layers`` and ``bidirectional``).
    """

    names: tuple[tuple[str, str], ...]
    torch_only: tuple[str, ...] = ()
    to_torch: ArrayConversion = same_layout
    from_torch: ArrayConversion = same_layout
    same_names: bool = False


_WEIGHT_BIAS = KindMapping((("w", "weight"), ("b", "bias")))
_AFFINE = KindMapping((("scale", "weight"), ("bias", "bias")))
_BATCH_NORM = KindMapping(
    (("scale", "weight"), ("bias", "bias"), ("running_mean", "running_mean"), ("running_var", "running_var")),
    torch_only=("num_batches_tracked",),
)

_SAME_NAMES = KindMapping((), same_names=True)
_WEIGHT = KindMapping((("weight", "weight"),))
_ATTENTION_NAMES = (
    "in_proj_weight",
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "in_proj_bias",
    "out_proj.weight",
    "out_proj.bias",
)
_ENCODER_LAYER = KindMapping(
    (
        *((f"self_attn.{n}", f"self_attn.{n}") for n in _ATTENTION_NAMES),
        ("linear1.w", "linear1.weight"),
        ("linear1.b", "linear1.bias"),
        ("linear2.w", "linear2.weight"),
        ("linear2.b", "linear2.bias"),
        ("norm1.scale", "norm1.weight"),
        ("norm1.bias", "norm1.bias"),
        ("norm2.scale", "norm2.weight"),
        ("norm2.bias", "norm2.bias"),
    )
)

#: The default table, by ``Layer.name``. ``transformer_encoder_layer`` is a combinator paired as one
#: unit with ``nn.TransformerEncoderLayer``; ``learned_positional_encoding`` pairs with the
#: ``nn.Embedding(max_len, d_model)`` that GPT-style models use for positions.
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
        "embedding": _WEIGHT,
        "learned_positional_encoding": _WEIGHT,
        "rnn": _SAME_NAMES,
        "gru": _SAME_NAMES,
        "lstm": _SAME_NAMES,
        "multi_head_attention": KindMapping(tuple((n, n) for n in _ATTENTION_NAMES)),
        "transformer_encoder_layer": _ENCODER_LAYER,
    }
)
