"""What the sweeps (``test_sweep_*.py``) share: a call must be refused by the library, cleanly.

A sweep feeds the public API inputs that are wrong in one way at a time. :func:`refused` runs one
such call: it must raise one of the library's own exceptions (``functional_dl.errors``), and
neither a raw NumPy or Python exception nor a warning; returning normally is a silent acceptance.
:func:`snapshot` and :func:`unchanged` check that no input was mutated on the way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pytest

from functional_dl.errors import FunctionalDLError

__all__ = ["refused", "snapshot", "strict", "unchanged", "works"]

T = TypeVar("T")


@contextmanager
def strict() -> Iterator[None]:
    """Any warning is an error inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def refused(call: Callable[[], object], what: str = "") -> FunctionalDLError:
    """Run ``call``; it must raise a library error (not a raw NumPy/Python one, not a warning)."""
    with strict():
        try:
            call()
        except FunctionalDLError as err:
            return err
        except Exception as err:  # the defect a sweep is for
            pytest.fail(f"{what}: raw {type(err).__name__} instead of a library error: {err}")
    pytest.fail(f"{what}: a meaningless input was accepted silently")


def works(call: Callable[[], T], what: str = "") -> T:
    """Run ``call``, which must succeed without any exception or warning."""
    with strict():
        try:
            return call()
        except Exception as err:
            pytest.fail(f"{what}: {type(err).__name__}: {err}")


def snapshot(tree: object) -> list[np.ndarray[Any, Any]]:
    """Copies of every array in ``tree`` (mappings, tuples and lists, nested), in order."""
    if isinstance(tree, np.ndarray):
        return [tree.copy()]
    if isinstance(tree, dict):
        return [a for v in tree.values() for a in snapshot(v)]
    if isinstance(tree, tuple | list):
        return [a for v in tree for a in snapshot(v)]
    return []


def unchanged(before: list[np.ndarray[Any, Any]], tree: object) -> None:
    """Assert that the arrays of ``tree`` equal the :func:`snapshot` ``before``, bit for bit."""
    after = snapshot(tree)
    assert len(before) == len(after), "an input's structure changed"
    for a, b in zip(before, after, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, "an input array was replaced"
        np.testing.assert_array_equal(a, b, err_msg="an input was mutated")
