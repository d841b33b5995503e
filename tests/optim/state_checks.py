"""Checks on optimizer state as data: what it may contain, its arrays' dtypes, and its bits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from functional_dl import optim as O
from functional_dl.testing import assert_bitwise_equal
from functional_dl.types import Array, Params


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


def assert_same_steps(
    plain: O.Optimizer[Any], fused: O.Optimizer[Any], params: Params, steps: int = 4
) -> None:
    """Both optimizers take ``steps`` steps on the same random gradients with the same bits.

    The params must agree after every step, and so must the states read per parameter
    (:func:`functional_dl.optim.unfused`): the same paths, the same arrays.
    """
    s1, s2 = plain.init(params), fused.init(params)
    rng = np.random.default_rng(5)
    for _ in range(steps):
        grads = {k: rng.normal(size=p.shape).astype(p.dtype) for k, p in params.items()}
        s1, p1 = plain.update(s1, grads)
        s2, p2 = fused.update(s2, grads)
        assert_bitwise_equal(p2, p1, "params differ")
        assert_bitwise_equal(arrays(O.unfused(s2)), arrays(O.unfused(s1)), "states differ")
