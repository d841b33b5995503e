"""Params and buffers to and from a PyTorch ``state_dict``, strict by default.

Pairing modules. Our network's parameterised leaves (the layers, found through
``Layer.children``, that own params or buffers; a combinator whose kind the table maps, such as
``transformer_encoder_layer``, counts as one leaf) are paired with the PyTorch modules that own
``state_dict`` entries, **in order**: the ``k``-th of ours with the ``k``-th of theirs. A layer
whose entries PyTorch keeps in submodules spans that many modules in a row (attention's own
``in_proj_*`` and its ``out_proj``; a transformer layer's ``self_attn``, ``self_attn.out_proj``,
``linear1``, ``linear2``, ``norm1``, ``norm2``), its prefix read from the first. So
``serial(conv2d, batch_norm2d, relu, max_pool2d, flatten, dense)`` ("0", "1", "5" own arrays)
pairs with ``nn.Sequential(Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear)`` ("0", "1",
"5") whatever the activations in between, and with a network whose modules are named
differently. Where order does not decide it (a PyTorch model registering modules in another
order than it calls them), pass ``key_map``: our leaf's path to the PyTorch module's prefix
(``{"0": "features.conv", "5": "head"}``), for every parameterised leaf.

Tied weights. A network wrapped in :func:`~functional_dl.combinators.tie` stores an ``alias``
once, under its ``source``; a PyTorch model tied the usual way (``head.weight =
embed.weight``) lists both names in its ``state_dict``, holding one tensor. So the aliased leaf
is paired as if untied (the GPT head with PyTorch's ``head``), and its :class:`Pair` lists the
tie. On import the alias's entry must hold the source's values (the same tensor, or equal bit
for bit): it is then dropped, and one that differs (a PyTorch model that is *not* tied, two
matrices) is refused, naming both entries, unless ``strict=False`` (which keeps the source's
values). On export the alias's entry gets the source's values, the very tensor written for the
source, so ``load_state_dict`` fills a tied PyTorch model and an untied one of the same
architecture alike.

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

from functional_dl.combinators.tie import ties_of
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
    ties: tuple[tuple[str, str], ...] = ()  # (our array name here, the full key it is tied to)


def _join(prefix: str, segment: str) -> str:
    return f"{prefix}.{segment}" if prefix and segment else prefix or segment


def _units(
    layer: Layer[Any], kinds: Mapping[str, KindMapping], prefix: str = ""
) -> Iterator[tuple[str, Layer[Any]]]:
    """Our candidate units, in order: leaves, and combinators whose kind ``kinds`` maps (not entered)."""
    if not layer.children or layer.name in kinds:
        yield prefix, layer
        return
    for child in layer.children:
        yield from _units(child.layer, kinds, _join(prefix, child.segment))


def _aliases(layer: Layer[Any], prefix: str = "") -> dict[str, str]:
    """Every tied parameter of ``layer``: the alias's full key -> its source's full key."""
    found = {_join(prefix, a): _join(prefix, s) for a, s in ties_of(layer).items()}
    for child in layer.children:
        found.update(_aliases(child.layer, _join(prefix, child.segment)))
    return found


def _owner(key: str) -> str:
    return key.rpartition(".")[0]


def _modules(keys: list[str]) -> list[str]:
    """The module prefixes owning ``keys``, in order of first appearance (``state_dict`` order)."""
    return list(dict.fromkeys(_owner(k) for k in keys))


def _names_under(path: str, keys: list[str]) -> list[str]:
    """The keys under ``path``, relative to it (all of them for the root path ``""``)."""
    if not path:
        return list(keys)
    lead = path + "."
    return [k[len(lead) :] for k in keys if k.startswith(lead)]


def _resolved(mapping: KindMapping, names: list[str]) -> KindMapping:
    """``mapping`` with the pairs of the arrays this layer owns, ``same_names`` spelt out."""
    owned = set(names)
    pairs = [(ours, theirs) for ours, theirs in mapping.names if ours in owned]
    if mapping.same_names:
        named = {ours for ours, _ in pairs}
        pairs += [(n, n) for n in names if n not in named]
    return mapping._replace(names=tuple(pairs), same_names=False)


def _relative_modules(mapping: KindMapping) -> list[str]:
    """The PyTorch submodules a unit's entries live in, relative to its prefix (``""`` for its own)."""
    return list(dict.fromkeys(_owner(theirs) for _, theirs in mapping.names)) or [""]


def _prefix_of(module: str, first: str, where: str) -> str:
    """The unit's prefix, from the first PyTorch module it spans and that module's relative name."""
    if not first:
        return module
    if module == first:
        return ""
    if module.endswith("." + first):
        return module[: -len(first) - 1]
    raise ParamsError(
        where, f"PyTorch module {module!r} cannot be where this layer starts (at its {first!r})"
    )


def _in_order(units: list[tuple[str, Layer[Any], KindMapping]], theirs: list[str]) -> list[str]:
    """Each unit's PyTorch prefix when units take PyTorch's modules in order, each as many as it spans."""
    spans = [_relative_modules(mapping) for _, _, mapping in units]
    if sum(map(len, spans)) != len(theirs):
        spanned = sum(map(len, spans))
        note = f" (spanning {spanned} modules)" if spanned != len(units) else ""
        raise ParamsError(
            _WHERE,
            f"{len(units)} parameterised layers {[p for p, _, _ in units]}{note} cannot be paired in order "
            f"with {len(theirs)} PyTorch modules {theirs}; pass key_map",
        )
    prefixes = []
    start = 0
    for (path, layer, _), rel in zip(units, spans, strict=True):
        taken = theirs[start : start + len(rel)]
        start += len(rel)
        prefix = _prefix_of(taken[0], rel[0], _join(path, layer.name))
        if set(taken) != {_join(prefix, r) for r in rel}:
            raise ParamsError(
                _join(path, layer.name),
                f"expected PyTorch modules {sorted(_join(prefix, r) for r in rel)} in order, got {taken}; "
                "pass key_map",
            )
        prefixes.append(prefix)
    return prefixes


def _has_entries(prefix: str, keys: list[str]) -> bool:
    return bool(keys) if not prefix else any(k.startswith(prefix + ".") for k in keys)


def pairs(
    net: Layer[Any],
    our_keys: list[str],
    torch_keys: list[str],
    *,
    key_map: Mapping[str, str] | None = None,
    kinds: Mapping[str, KindMapping] = KINDS,
) -> list[Pair]:
    """Pair ``net``'s parameterised layers with PyTorch's modules (in order, or by ``key_map``).

    A layer whose PyTorch entries live in submodules (attention's ``out_proj``, a transformer
    layer's ``linear1``, ``norm1``, ...) takes as many modules in a row as it spans. A tied
    alias (see :func:`~functional_dl.combinators.tie`) counts as its leaf's array, so that leaf
    is paired as if untied; its pair's ``ties`` lists ``(name, source key)``. With ``key_map``,
    a leaf owning nothing but aliases may be left out (it is then not paired).

    Raises:
        ParamsError: the two sides have different numbers of modules, ``key_map`` misses a leaf
            or names a module with no entries, or a leaf's kind has no mapping.
    """
    aliases = _aliases(net)
    keys = list(dict.fromkeys([*our_keys, *aliases]))  # a tied leaf owns its alias, as if untied
    units: list[tuple[str, Layer[Any], KindMapping]] = []
    for path, layer in _units(net, kinds):
        names = _names_under(path, keys)
        if not names:
            continue  # owns nothing: an activation, a pool
        if layer.name not in kinds:
            raise ParamsError(
                _join(path, layer.name), f"no PyTorch mapping for layer kind {layer.name!r}; pass kinds="
            )
        units.append((path, layer, _resolved(kinds[layer.name], names)))
    if key_map is None:
        prefixes = _in_order(units, _modules(torch_keys))
    else:
        units = [u for u in units if u[0] in key_map or not _only_aliases(u[0], u[2], aliases)]
        missing = [p for p, _, _ in units if p not in key_map]
        unknown = sorted(p for p in set(key_map.values()) if not _has_entries(p, torch_keys))
        if missing or unknown:
            raise ParamsError(
                _WHERE,
                f"key_map: no entry for layers {missing}; no PyTorch module with entries for {unknown}",
            )
        prefixes = [key_map[p] for p, _, _ in units]
    return [
        Pair(path, layer.name, prefix, mapping, _ties_in(path, mapping, aliases))
        for (path, layer, mapping), prefix in zip(units, prefixes, strict=True)
    ]


def _ties_in(path: str, mapping: KindMapping, aliases: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``(name, source key)`` of each of the leaf's arrays that is a tied alias, in mapping order."""
    return tuple((ours, aliases[k]) for ours, _ in mapping.names if (k := _join(path, ours)) in aliases)


def _only_aliases(path: str, mapping: KindMapping, aliases: Mapping[str, str]) -> bool:
    return all(_join(path, ours) in aliases for ours, _ in mapping.names)


def _bit_identical(a: Array, b: Array) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


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


def _read_tied(
    found: list[Pair],
    state_dict: Mapping[str, object],
    sources: Mapping[str, tuple[str, Array]],
    *,
    strict: bool,
) -> tuple[set[str], set[str]]:
    """The PyTorch entries of the tied aliases (checked when strict), and the aliases with none.

    ``sources`` holds, for each of our keys read, its PyTorch key and value in our layout before
    any cast: the alias's entry is compared with it. One tensor under two names (PyTorch's
    ``state_dict`` of a tied model) passes at once; two tensors pass when they are equal bit for
    bit (a tied model saved and loaded again).
    """
    entries, absent = set(), set()
    for pair in found:
        theirs_of = dict(pair.mapping.names)
        for name, source in pair.ties:
            alias, tkey = _join(pair.path, name), _join(pair.torch_prefix, theirs_of[name])
            if tkey not in state_dict:
                absent.add(alias)
                continue
            entries.add(tkey)
            if not strict or source not in sources:
                continue  # unchecked, or the source's own absence is reported by the strict check
            skey, value = sources[source]
            if state_dict[tkey] is state_dict[skey]:
                continue
            if not _bit_identical(pair.mapping.from_torch(name, _as_array(state_dict[tkey])), value):
                raise ParamsError(
                    _join(pair.path, pair.kind),
                    f"PyTorch's {tkey!r} and {skey!r} should be tied (our {alias!r} is {source!r}, "
                    "stored once) but hold different arrays; load them into an untied network, or "
                    "pass strict=False to keep the source's values",
                )
    return entries, absent


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
        strict: refuse unread ``state_dict`` entries, unfilled arrays, and the entry of a tied
            alias that differs from its source's (shapes are always checked). Not strict, a
            tied alias's entry is read and ignored: the source's values are kept.

    Returns:
        New read-only ``(params, buffers)``; the inputs are not modified. A tied alias (see
        :func:`~functional_dl.combinators.tie`) is not among them: it is stored once, under its
        source.

    Raises:
        ParamsError: unknown or missing keys, modules that cannot be paired, or (strict) the
            entries of a tied alias and its source holding different arrays: a PyTorch model
            that is not tied loaded into a tied network, the message naming both entries.
        ShapeError: an entry whose shape is not our array's.
    """
    template = {**params, **buffers}
    torch_keys = list(state_dict)
    found = pairs(net, list(template), torch_keys, key_map=key_map, kinds=kinds)
    got: dict[str, Array] = {}
    sources: dict[str, tuple[str, Array]] = {}  # our key -> its PyTorch key, value before the cast
    read: set[str] = set()
    for pair in found:
        tied = dict(pair.ties)
        for ours, theirs in pair.mapping.names:
            key, tkey = _join(pair.path, ours), _join(pair.torch_prefix, theirs)
            if ours in tied or key not in template or tkey not in state_dict:
                continue  # an alias is checked below; the rest is left to the strict check
            value = pair.mapping.from_torch(ours, _as_array(state_dict[tkey]))
            like = template[key]
            if value.shape != like.shape:
                raise ShapeError(
                    _join(pair.path, pair.kind),
                    f"PyTorch's {tkey!r} has shape {describe_shape(value.shape)}, "
                    f"expected {describe_shape(like.shape)} for {key!r}",
                )
            got[key] = value.astype(like.dtype)
            sources[key] = (tkey, value)
            read.add(tkey)
        read.update(_join(pair.torch_prefix, extra) for extra in pair.mapping.torch_only)
    tied_entries, unfilled = _read_tied(found, state_dict, sources, strict=strict)
    if strict:
        _refuse_leftovers(
            set(torch_keys) - read - tied_entries,
            set(template) - set(got) | unfilled,
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
        New tensors (copies, in our dtypes) by PyTorch name, in the reference's order. A tied
        alias's entry is the tensor written for its source (its values, when the two layouts
        differ), as in the ``state_dict`` of a tied PyTorch model; an untied target loads it too.

    Raises:
        ParamsError: a reference entry nothing fills, one of our arrays with no entry, or modules
            that cannot be paired.
        ShapeError: an array whose shape is not the reference entry's.
    """
    import torch  # lazy: the package imports without torch

    ours = {**params, **buffers}
    out: dict[str, torch.Tensor] = {}
    written: dict[str, tuple[Array, torch.Tensor]] = {}  # our key -> its value as written, tensor
    found = pairs(net, list(ours), list(reference), key_map=key_map, kinds=kinds)
    entries = [(p, name, theirs, dict(p.ties).get(name)) for p in found for name, theirs in p.mapping.names]
    # Sources before aliases, so that an alias can be given the very tensor of its source.
    plain, tied = [e for e in entries if e[3] is None], [e for e in entries if e[3] is not None]
    for pair, name, theirs, source in plain + tied:
        key, tkey = _join(pair.path, name), _join(pair.torch_prefix, theirs)
        read_from = key if source is None else source
        if read_from not in ours or tkey not in reference:
            continue
        value = pair.mapping.to_torch(name, ours[read_from])
        shape = tuple(_as_array(reference[tkey]).shape)
        if value.shape != shape:
            raise ShapeError(
                _join(pair.path, pair.kind),
                f"{key!r} has shape {describe_shape(value.shape)}, PyTorch's {tkey!r} expects "
                f"{describe_shape(shape)}",
            )
        if source is not None and source in written and _bit_identical(written[source][0], value):
            out[tkey] = written[source][1]  # one tensor under both names, as a tied model's state_dict
            continue
        out[tkey] = torch.from_numpy(np.array(value))
        if source is None:
            written[key] = (value, out[tkey])
    for pair in found:
        for extra in pair.mapping.torch_only:
            tkey = _join(pair.torch_prefix, extra)
            if tkey in reference:
                out[tkey] = torch.from_numpy(_as_array(reference[tkey]))
    _refuse_leftovers(
        set(reference) - set(out),
        set(ours) - set(written),
        torch_says="nothing of ours fills PyTorch keys",
        ours_says="no PyTorch entry for",
    )
    return {k: out[k] for k in reference}
