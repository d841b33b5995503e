"""Parameter groups: masks, and different transformations for different parameters.

A *mask* says which parameters a transformation touches. It is an explicit argument, never a
guess: either a predicate on the parameter's dotted key or a mapping ``key -> bool`` that names
every key. :func:`key_pattern` builds a predicate from shell-style patterns (``"encoder.*"``).
:func:`weights_only` is the usual choice for weight decay: it selects the weight matrices and
kernels (keys whose last segment is ``w``) and leaves biases (``b``) and the scales and shifts of
normalisation layers alone.

:func:`masked` applies one transformation to the selected parameters; :func:`partition` gives each
group of parameters (by label, from a function, a mapping or :func:`labels_by_pattern`) its own
transformation, like PyTorch's parameter groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from functools import partial
from typing import Any, NamedTuple, TypeAlias

from functional_dl.errors import DomainError, ParamsError
from functional_dl.optim.base import GradientTransformation, Optimizer, check_state, transformation_of
from functional_dl.types import Array, Params

__all__ = [
    "Labels",
    "Mask",
    "MaskedState",
    "PartitionState",
    "check_mask",
    "key_pattern",
    "labels_by_pattern",
    "masked",
    "partition",
    "selected_keys",
    "weights_only",
]

#: Which parameters to touch: a predicate on the dotted key, or a mapping naming every key.
Mask: TypeAlias = Callable[[str], bool] | Mapping[str, bool]
#: A parameter's group: a function of the dotted key, or a mapping naming every key.
Labels: TypeAlias = Callable[[str], str] | Mapping[str, str]


def weights_only(key: str) -> bool:
    """``True`` for weight matrices and kernels: keys whose last dotted segment is ``w``.

    Biases (``b``) and the scale and bias of normalisation layers (``scale``, ``bias``) are not
    selected, so ``add_decayed_weights(wd, mask=weights_only)`` decays weights only.

    Example:
        >>> [k for k in ["0.w", "0.b", "1.scale", "w"] if weights_only(k)]
        ['0.w', 'w']
    """
    return key.rpartition(".")[2] == "w"


def _matches(key: str, /, *, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(key, p) for p in patterns)


def key_pattern(*patterns: str) -> Callable[[str], bool]:
    """A mask selecting the keys that match any of the shell-style ``patterns`` (``fnmatch``).

    Example:
        >>> mask = key_pattern("encoder.*", "*.w")
        >>> [k for k in ["encoder.0.b", "head.w", "head.b"] if mask(k)]
        ['encoder.0.b', 'head.w']

    Raises:
        DomainError: when no pattern is given, or one is not a string.
    """
    if not patterns:
        raise DomainError("key_pattern", "give at least one pattern, got none")
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise DomainError("key_pattern", f"each pattern must be a string, got {pattern!r}")
    return partial(_matches, patterns=tuple(patterns))


def _first_label(key: str, /, *, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, label in rules:
        if fnmatchcase(key, pattern):
            return label
    raise ParamsError("partition", f"{key!r} matches none of the patterns {[p for p, _ in rules]}")


def labels_by_pattern(rules: Mapping[str, str]) -> Callable[[str], str]:
    """Labels for :func:`partition` from ``pattern -> label`` rules; the first matching rule wins.

    Example:
        >>> label = labels_by_pattern({"*.w": "decay", "*": "no_decay"})
        >>> label("0.w"), label("0.b")
        ('decay', 'no_decay')

    Raises:
        DomainError: when ``rules`` is not a mapping of strings to strings.
    """
    if not isinstance(rules, Mapping) or not all(isinstance(x, str) for kv in rules.items() for x in kv):
        raise DomainError(
            "labels_by_pattern", f"rules must map patterns (str) to labels (str), got {rules!r}"
        )
    return partial(_first_label, rules=tuple(rules.items()))


def _lookup(mapping: Mapping[str, Any], keys: Iterable[str], what: str, where: str) -> None:
    missing = sorted(k for k in keys if k not in mapping)
    if missing:
        raise ParamsError(where, f"the {what} mapping has no entry for {missing}")


def check_mask(mask: Mask | None, where: str) -> None:
    """Raise :class:`DomainError` unless ``mask`` is ``None``, a function of the key or a mapping."""
    if mask is not None and not callable(mask) and not isinstance(mask, Mapping):
        raise DomainError(
            where, f"mask must be a function key -> bool or a mapping key -> bool, got {mask!r}"
        )


def selected_keys(mask: Mask, keys: Iterable[str], where: str) -> frozenset[str]:
    """The keys that ``mask`` selects; a mapping mask must name every key.

    Raises:
        ParamsError: naming the keys a mapping mask leaves out.
    """
    if callable(mask):
        return frozenset(k for k in keys if mask(k))
    keys = list(keys)
    _lookup(mask, keys, "mask", where)
    return frozenset(k for k in keys if mask[k])


def _label_of(labels: Labels, key: str) -> str:
    return labels(key) if callable(labels) else labels[key]


class MaskedState(NamedTuple):
    """The state of the inner transformation, built on the selected parameters only."""

    inner: object


def _subset(mapping: Params, keys: frozenset[str]) -> dict[str, Array]:
    return {k: v for k, v in mapping.items() if k in keys}


def _masked_init(inner: GradientTransformation[Any], mask: Mask, params: Params, /) -> MaskedState:
    chosen = selected_keys(mask, params, "masked")
    return MaskedState(inner.init(_subset(params, chosen)))


def _masked_update(
    inner: GradientTransformation[Any], mask: Mask, updates: Params, state: MaskedState, params: Params, /
) -> tuple[Params, MaskedState]:
    check_state("masked", state, MaskedState)
    chosen = selected_keys(mask, updates, "masked")
    new, inner_state = inner.update(_subset(updates, chosen), state.inner, _subset(params, chosen))
    return {k: new[k] if k in chosen else g for k, g in updates.items()}, MaskedState(inner_state)


def masked(
    inner: GradientTransformation[Any] | Optimizer[Any], mask: Mask
) -> GradientTransformation[MaskedState]:
    """Apply ``inner`` to the parameters ``mask`` selects; the others' updates pass unchanged.

    Update rule: ``u_k = inner(g)_k`` if ``mask`` selects ``k``, else ``u_k = g_k``. The inner
    transformation sees (and keeps state for) the selected parameters only.

    Raises:
        DomainError: when ``inner`` is not a transformation or ``mask`` neither a function nor a
            mapping.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim.transforms import scale
        >>> t = masked(scale(0.0), weights_only)
        >>> g = {"w": np.ones(2), "b": np.ones(2)}
        >>> u, _ = t.update(g, t.init(g), g)
        >>> u["w"], u["b"]
        (array([0., 0.]), array([1., 1.]))
    """
    inner = transformation_of(inner, "masked")
    if mask is None:
        raise DomainError("masked", "mask must be a function key -> bool or a mapping key -> bool, got None")
    check_mask(mask, "masked")
    return GradientTransformation(partial(_masked_init, inner, mask), partial(_masked_update, inner, mask))


class PartitionState(NamedTuple):
    """One inner state per group label."""

    inner: Mapping[str, object]


def _groups(
    transforms: Mapping[str, GradientTransformation[Any]], labels: Labels, keys: Iterable[str]
) -> dict[str, frozenset[str]]:
    keys = list(keys)
    if not callable(labels):
        _lookup(labels, keys, "labels", "partition")
    found: dict[str, set[str]] = {name: set() for name in transforms}
    for k in keys:
        label = _label_of(labels, k)
        if label not in found:
            raise ParamsError(
                "partition",
                f"{k!r} has label {label!r}, which has no transformation (known: {sorted(found)})",
            )
        found[label].add(k)
    return {name: frozenset(ks) for name, ks in found.items()}


def _partition_init(
    transforms: Mapping[str, GradientTransformation[Any]], labels: Labels, params: Params, /
) -> PartitionState:
    groups = _groups(transforms, labels, params)
    return PartitionState({name: t.init(_subset(params, groups[name])) for name, t in transforms.items()})


def _partition_update(
    transforms: Mapping[str, GradientTransformation[Any]],
    labels: Labels,
    updates: Params,
    state: PartitionState,
    params: Params,
    /,
) -> tuple[Params, PartitionState]:
    check_state("partition", state, PartitionState)
    if state.inner.keys() != transforms.keys():
        raise ParamsError(
            "partition", f"state.inner has groups {sorted(state.inner)}, expected {sorted(transforms)}"
        )
    groups = _groups(transforms, labels, updates)
    merged: dict[str, Array] = {}
    inner: dict[str, object] = {}
    for name, t in transforms.items():
        keys = groups[name]
        new, inner[name] = t.update(_subset(updates, keys), state.inner[name], _subset(params, keys))
        merged.update(new)
    return {k: merged[k] for k in updates}, PartitionState(inner)


def partition(
    transforms: Mapping[str, GradientTransformation[Any] | Optimizer[Any]], labels: Labels
) -> GradientTransformation[PartitionState]:
    """Give each group of parameters its own transformation (PyTorch's parameter groups).

    Update rule: ``u_k = transforms[labels(k)](g)_k``. Every key gets exactly one label, and every
    label a transformation; each transformation sees (and keeps state for) its own group only.

    Args:
        transforms: label -> transformation.
        labels: a function ``key -> label`` or a mapping naming every key.

    Raises:
        ParamsError: when a key has no label or a label has no transformation.
        DomainError: when ``transforms`` is not a mapping or ``labels`` neither a function nor a
            mapping.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim.transforms import scale
        >>> def group(key):
        ...     return "decay" if weights_only(key) else "plain"
        >>> t = partition({"decay": scale(2.0), "plain": scale(1.0)}, group)
        >>> g = {"0.w": np.ones(1), "0.b": np.ones(1)}
        >>> u, _ = t.update(g, t.init(g), g)
        >>> u["0.w"], u["0.b"]
        (array([2.]), array([1.]))
    """
    if not isinstance(transforms, Mapping):
        raise DomainError("partition", f"transforms must map labels to transformations, got {transforms!r}")
    if not callable(labels) and not isinstance(labels, Mapping):
        raise DomainError("partition", f"labels must be a function key -> label or a mapping, got {labels!r}")
    parts = {label: transformation_of(t, "partition", i) for i, (label, t) in enumerate(transforms.items())}
    return GradientTransformation(
        partial(_partition_init, parts, labels), partial(_partition_update, parts, labels)
    )
