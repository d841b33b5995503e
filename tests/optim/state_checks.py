"""Checks on optimizer state as data: what it may contain, and its arrays' dtypes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from functional_dl.types import Array


def leaves(state: object, path: str = "state") -> Iterator[tuple[str, object]]:
    """Every leaf of a state tree with its path; raises on anything that is not plain data."""
    if isinstance(state, tuple):
        names = getattr(state, "_fields", None) or [str(i) for i in range(len(state))]
        for name, child in zip(names, state, strict=True):
            yield from leaves(child, f"{path}.{name}")
    elif isinstance(state, Mapping):
        for key, child in state.items():
            assert isinstance(key, str), f"{path}: mapping key {key!r} is not a str"
            yield from leaves(child, f"{path}[{key!r}]")
    elif isinstance(state, (np.ndarray, int, float, bool, str)) or state is None:
        yield path, state
    else:
        raise AssertionError(f"{path}: {type(state).__name__} is not plain data")


def arrays(state: object) -> dict[str, Array]:
    """The array leaves of a state tree by path."""
    return {path: leaf for path, leaf in leaves(state) if isinstance(leaf, np.ndarray)}
