"""Finding and replacing sub-states by type, however deeply they are nested."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from functional_dl.optim.state_tree import find_states, replace_states


class Leaf(NamedTuple):
    value: float


class Node(NamedTuple):
    left: object
    right: object


def test_find_states_depth_first_outermost_first() -> None:
    tree = Node(Leaf(1.0), ({"a": Leaf(2.0), "x": np.zeros(2)}, Leaf(3.0)))
    assert [s.value for s in find_states(tree, Leaf)] == [1.0, 2.0, 3.0]


def test_replace_states_rebuilds_only_the_paths_that_change() -> None:
    shared = {"x": np.zeros(2)}
    tree = Node(Leaf(1.0), (shared, Node(Leaf(2.0), "keep")))
    new = replace_states(tree, Leaf, lambda s: Leaf(s.value * 10))
    assert isinstance(new, Node)
    assert [s.value for s in find_states(new, Leaf)] == [10.0, 20.0]
    assert [s.value for s in find_states(tree, Leaf)] == [1.0, 2.0]  # the input is unchanged
    assert isinstance(new.right, tuple) and new.right[0] is shared


def test_replace_states_without_match_returns_the_same_object() -> None:
    tree = Node({"a": np.ones(1)}, (1, 2.0, None))
    assert replace_states(tree, Leaf, lambda s: s) is tree
