"""Params and buffers to and from a PyTorch ``state_dict``, strict by default.

Pairing modules. Our network's parameterised leaves (the layers, found through
``Layer.children``, that own params or buffers) are paired with the PyTorch modules that own
``state_dict`` entries, **in order**: the ``k``-th of ours with the ``k``-th of theirs. So
``serial(conv2d, batch_norm2d, relu, max_pool2d, flatten, dense)`` ("0", "1", "5" own arrays)
pairs with ``nn.Sequential(Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear)`` ("0", "1",
"5") whatever the activations in between, and with a network whose modules are named
differently. Where order does not decide it (a PyTorch model registering modules in another
order than it calls them), pass ``key_map``: our leaf's path to the PyTorch module's prefix
(``{"0": "features.conv", "5": "head"}``), for every parameterised leaf.

Strict: a ``state_dict`` entry nobody reads, one of our arrays left unfilled, an array of
another shape, a layer kind without a mapping (:data:`~functional_dl.interop.kinds.KINDS`), or a
different number of modules on the two sides is refused with a
:class:`~functional_dl.errors.ParamsError` (or :class:`~functional_dl.errors.ShapeError`) naming
the keys on both sides. Values are copied and cast to the dtype of our template (import) or kept
in ours (export). PyTorch is imported only by :func:`to_torch`; :func:`from_torch` reads anything
with ``.detach()`` (a tensor) or any array.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from functional_dl.errors import ParamsError, ShapeError, describe_shape
from functional_dl.interop.kinds import KINDS, KindMapping
from functional_dl.params import FrozenParams, freeze
from functional_dl.types import EMPTY, Array, Buffers, Layer, Params

if TYPE_CHECKING:
    import torch

__all__ = ["Pair", "from_torch", "pairs", "to_torch"]

_WHERE = "interop"


class Pair(NamedTuple):
    """One of our parameterised leaves and the PyTorch module it is paired with."""

    path: str  # our leaf's key prefix ("" for a network that is one layer)
    kind: str  # its Layer.name
    torch_prefix: str  # the PyTorch module's prefix in the state_dict ("" for a bare module)
    mapping: KindMapping


def _join(prefix: str, segment: str) -> str:
    return f"{prefix}.{segment}" if prefix and segment else prefix or segment


def _leaves(layer: Layer[Any], prefix: str = "") -> Iterator[tuple[str, Layer[Any]]]:
    if not layer.children:
        yield prefix, layer
    for child in layer.children:
        yield from _leaves(child.layer, _join(prefix, child.segment))


def _owner(key: str) -> str:
    return key.rpartition(".")[0]


def _modules(keys: list[str]) -> list[str]:
    """The module prefixes owning ``keys``, in order of first appearance (``state_dict`` order)."""
    return list(dict.fromkeys(_owner(k) for k in keys))


def pairs(
    net: Layer[Any],
    our_keys: list[str],
    torch_keys: list[str],
    *,
    key_map: Mapping[str, str] | None = None,
    kinds: Mapping[str, KindMapping] = KINDS,
) -> list[Pair]:
    """Pair ``net``'s parameterised leaves with PyTorch's modules (in order, or by ``key_map``).

    Raises:
        ParamsError: the two sides have different numbers of modules, ``key_map`` misses a leaf
            or names a module with no entries, or a leaf's kind has no mapping.
    """
    owners = set(map(_owner, our_keys))
    leaves = [(path, layer) for path, layer in _leaves(net) if path in owners]
    theirs = _modules(torch_keys)
    if key_map is None:
        if len(leaves) != len(theirs):
            raise ParamsError(
                _WHERE,
                f"{len(leaves)} parameterised layers {[p for p, _ in leaves]} cannot be paired in order with "
                f"{len(theirs)} PyTorch modules {theirs}; pass key_map",
            )
        prefixes = theirs
    else:
        missing = [p for p, _ in leaves if p not in key_map]
        unknown = sorted(set(key_map.values()) - set(theirs))
        if missing or unknown:
            raise ParamsError(
                _WHERE,
                f"key_map: no entry for layers {missing}; no PyTorch module with entries for {unknown}",
            )
        prefixes = [key_map[p] for p, _ in leaves]
    out = []
    for (path, layer), prefix in zip(leaves, prefixes, strict=True):
        if layer.name not in kinds:
            raise ParamsError(
                _join(path, layer.name), f"no PyTorch mapping for layer kind {layer.name!r}; pass kinds="
            )
        out.append(Pair(path, layer.name, prefix, kinds[layer.name]))
    return out


def _as_array(value: object) -> Array:
    detach = getattr(value, "detach", None)
    if callable(detach):
        value = detach().cpu().numpy()
    out: Array = np.array(value)
    return out


def _refuse_leftovers(torch_side: set[str], our_side: set[str], *, torch_says: str, ours_says: str) -> None:
    if torch_side or our_side:
        parts = [f"{torch_says} {sorted(torch_side)}"] if torch_side else []
        parts += [f"{ours_says} {sorted(our_side)}"] if our_side else []
        raise ParamsError(_WHERE, "state_dict does not match the network: " + "; ".join(parts))


def from_torch(
    net: Layer[Any],
    state_dict: Mapping[str, object],
    params: Params,
    buffers: Buffers = EMPTY,
    *,
    key_map: Mapping[str, str] | None = None,
    kinds: Mapping[str, KindMapping] = KINDS,
    strict: bool = True,
) -> tuple[FrozenParams, FrozenParams]:
    """``(params, buffers)`` of ``net`` read from a PyTorch ``state_dict``.

    Args:
        net: our network.
        state_dict: ``module.state_dict()`` (tensors or arrays by name).
        params: a template from ``net.init_with_buffers``: its keys, shapes and dtypes are the ones
            returned.
        buffers: the template's buffers (batch norm's running statistics).
        key_map: our leaf path -> PyTorch module prefix, instead of pairing in order.
        kinds: the per-kind table (:data:`~functional_dl.interop.kinds.KINDS`).
        strict: refuse unread ``state_dict`` entries and unfilled arrays (shapes are always checked).

    Returns:
        New read-only ``(params, buffers)``; the inputs are not modified.

    Raises:
        ParamsError: unknown or missing keys, or modules that cannot be paired.
        ShapeError: an entry whose shape is not our array's.
    """
    template = {**params, **buffers}
    torch_keys = list(state_dict)
    got: dict[str, Array] = {}
    read: set[str] = set()
    for pair in pairs(net, list(template), torch_keys, key_map=key_map, kinds=kinds):
        for ours, theirs in pair.mapping.names:
            key, tkey = _join(pair.path, ours), _join(pair.torch_prefix, theirs)
            if key not in template or tkey not in state_dict:
                continue  # left to the strict check, which names it
            value = pair.mapping.from_torch(ours, _as_array(state_dict[tkey]))
            like = template[key]
            if value.shape != like.shape:
                raise ShapeError(
                    _join(pair.path, pair.kind),
                    f"PyTorch's {tkey!r} has shape {describe_shape(value.shape)}, "
                    f"expected {describe_shape(like.shape)} for {key!r}",
                )
            got[key] = value.astype(like.dtype)
            read.add(tkey)
        read.update(_join(pair.torch_prefix, extra) for extra in pair.mapping.torch_only)
    if strict:
        _refuse_leftovers(
            set(torch_keys) - read,
            set(template) - set(got),
            torch_says="unexpected PyTorch keys",
            ours_says="no PyTorch entry for",
        )
    merged = {k: got.get(k, template[k]) for k in template}
    return freeze({k: merged[k] for k in params}), freeze({k: merged[k] for k in buffers})


def to_torch(
    net: Layer[Any],
    params: Params,
    buffers: Buffers,
    reference: Mapping[str, object],
    *,
    key_map: Mapping[str, str] | None = None,
    kinds: Mapping[str, KindMapping] = KINDS,
) -> dict[str, torch.Tensor]:
    """A PyTorch ``state_dict`` of ``net``'s params and buffers, for ``module.load_state_dict``.

    Args:
        net: our network.
        params: its params.
        buffers: its buffers (``EMPTY`` when it has none).
        reference: the target module's ``state_dict()``: its names, order and shapes are the ones
            written (and its ``torch_only`` entries, such as ``num_batches_tracked``, are copied).
        key_map: our leaf path -> PyTorch module prefix, instead of pairing in order.
        kinds: the per-kind table.

    Returns:
        New tensors (copies, in our dtypes) by PyTorch name, in the reference's order.

    Raises:
        ParamsError: a reference entry nothing fills, one of our arrays with no entry, or modules
            that cannot be paired.
        ShapeError: an array whose shape is not the reference entry's.
    """
    import torch  # lazy: the package imports without torch

    ours = {**params, **buffers}
    out: dict[str, torch.Tensor] = {}
    written: set[str] = set()
    for pair in pairs(net, list(ours), list(reference), key_map=key_map, kinds=kinds):
        for name, theirs in pair.mapping.names:
            key, tkey = _join(pair.path, name), _join(pair.torch_prefix, theirs)
            if key not in ours or tkey not in reference:
                continue
            value = pair.mapping.to_torch(name, ours[key])
            shape = tuple(_as_array(reference[tkey]).shape)
            if value.shape != shape:
                raise ShapeError(
                    _join(pair.path, pair.kind),
                    f"{key!r} has shape {describe_shape(value.shape)}, PyTorch's {tkey!r} expects "
                    f"{describe_shape(shape)}",
                )
            out[tkey] = torch.from_numpy(np.array(value))
            written.add(key)
        for extra in pair.mapping.torch_only:
            tkey = _join(pair.torch_prefix, extra)
            if tkey in reference:
                out[tkey] = torch.from_numpy(_as_array(reference[tkey]))
    _refuse_leftovers(
        set(reference) - set(out),
        set(ours) - written,
        torch_says="nothing of ours fills PyTorch keys",
        ours_says="no PyTorch entry for",
    )
    return {k: out[k] for k in reference}
