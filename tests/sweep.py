"""What every sweep of the public API (``test_sweep_*.py``) checks: library errors only, no warning,
no mutated input.

A sweep feeds an entry point an input wrong in exactly one way. :func:`refused` runs the call with
every warning turned into an error and passes only if it raises one of the library's own
exceptions (:mod:`functional_dl.errors`); a raw NumPy or Python exception, a warning, or a
silent return fails the test. :func:`accepted` runs a call that must succeed, and
:func:`accepted_or_refused` one that may do either. :func:`snapshot` and :func:`unchanged` check
that the call left its inputs as they were. ``what`` (optional) says which call failed.
:func:`masked` and :func:`matrix` make the two ``ndarray`` subclasses every array argument must
refuse (their operators mean something else), and :func:`plain_subclass` one it must accept.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pytest

from functional_dl.errors import FunctionalDLError
from functional_dl.params import FrozenParams

__all__ = [
    "PlainSubclass",
    "accepted",
    "accepted_or_refused",
    "bad_values",
    "call",
    "masked",
    "matrix",
    "plain_subclass",
    "refusal",
    "refused",
    "snapshot",
    "strict",
    "unchanged",
]

T = TypeVar("T")


def masked(a: np.ndarray[Any, Any]) -> np.ma.MaskedArray[Any, Any]:
    """``a`` as a masked array hiding its first entry (so an answer that ignores the mask differs)."""
    mask = np.zeros(a.shape, bool)
    if mask.size:
        mask.flat[0] = True
    return np.ma.masked_array(a, mask=mask)


def matrix(a: np.ndarray[Any, Any]) -> np.matrix[Any, Any]:
    """``a`` as an ``np.matrix``: of ``a``'s shape if ``a`` is 2-D, else ``(1, a.size)`` (always 2-D)."""
    with warnings.catch_warnings():  # NumPy discourages np.matrix, which is why it is swept
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a if a.ndim == 2 else a.reshape(1, -1))


class PlainSubclass(np.ndarray):
    """An ``ndarray`` subclass that changes nothing: it must be taken as the array it views."""


def plain_subclass(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``a`` viewed as a :class:`PlainSubclass` (same memory, same flags)."""
    return a.view(PlainSubclass)


def call(f: Callable[..., object], /, *args: object, **kwargs: object) -> Callable[[], object]:
    """``f`` with its (deliberately wrong) arguments bound: the thunk a sweep runs."""
    return partial(f, *args, **kwargs)


@contextmanager
def strict() -> Iterator[None]:
    """Any warning is an error inside the block (but OpenBLAS's stray matmul flag, see pyproject.toml)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "invalid value encountered in matmul", RuntimeWarning)
        yield


def _where(what: str) -> str:
    return f"{what}: " if what else ""


def refused(call: Callable[[], object], what: str = "") -> FunctionalDLError:
    """Run ``call``; it must raise a library error (not a raw NumPy/Python one, not a warning)."""
    with strict():
        try:
            call()
        except FunctionalDLError as err:
            return err
        except Exception as err:  # the defect the sweep is for
            pytest.fail(f"{_where(what)}raw {type(err).__name__} instead of a library error: {err}")
    pytest.fail(f"{_where(what)}a meaningless input was accepted silently")


def refusal(call: Callable[[], object]) -> FunctionalDLError | str:
    """Like :func:`refused`, but the defect comes back as a description instead of failing the test.

    For a sweep that runs many calls in one test and reports every defect at once.
    """
    with strict():
        try:
            call()
        except FunctionalDLError as err:
            return err
        except Exception as err:
            return f"raw {type(err).__name__} instead of a library error: {err}"
    return "accepted silently"


#: Values meaningless for a hyperparameter of each annotated type, whatever its range.
_NOT_A_NUMBER: list[object] = [float("nan"), float("inf"), "0.5", True, [0.5], 1 + 0j]
_NOT_AN_INT: list[object] = [1.5, True, "3", -1, float("nan")]
_NOT_A_BOOL: list[object] = ["no", None, 2]
_NOT_A_STR: list[object] = [3, None, b"min"]


def bad_values(annotation: str) -> list[object]:
    """Inputs wrong for a parameter annotated ``annotation`` (a string, as ``inspect`` gives it).

    A ``float`` (or a learning rate, a number or a schedule) gets NaN, infinity, a numeric string,
    a bool, a list and a complex number; an ``int`` a float, a bool, a string, -1 and NaN; a
    ``bool`` a string, ``None`` and 2; a ``str`` an int, ``None`` and bytes. ``None`` is added for
    a number that is not optional. Ranges (a negative rate, a beta above 1) are the caller's table.
    """
    optional = "None" in annotation
    kind = annotation.replace(" | None", "").replace("None | ", "")
    if kind in ("bool",):
        return list(_NOT_A_BOOL)
    if kind in ("str",) or kind.startswith("Literal["):
        return list(_NOT_A_STR)
    extra: list[object] = [] if optional else [None]
    if kind == "int":
        return _NOT_AN_INT + extra
    if kind in ("float", "LR", "float | Schedule"):
        return _NOT_A_NUMBER + extra
    return []


def accepted(call: Callable[[], T], what: str = "") -> T:
    """Run ``call``, which must return (the input is meaningful) without any warning or error."""
    with strict():
        try:
            return call()
        except Exception as err:
            pytest.fail(f"{_where(what)}a meaningful input was refused: {type(err).__name__}: {err}")


def accepted_or_refused(call: Callable[[], T], what: str = "") -> T | FunctionalDLError:
    """Run ``call``, which may return or raise a library error, but nothing else and no warning."""
    with strict():
        try:
            return call()
        except FunctionalDLError as err:
            return err
        except Exception as err:
            pytest.fail(f"{_where(what)}raw {type(err).__name__} instead of a library error: {err}")


def snapshot(tree: object) -> list[np.ndarray[Any, Any]]:
    """Copies of every array in a tree of dicts, params, tuples and lists (nested), in order."""
    if isinstance(tree, np.ndarray):
        return [tree.copy()]
    if isinstance(tree, dict | FrozenParams):
        return [a for v in tree.values() for a in snapshot(v)]
    if isinstance(tree, tuple | list):
        return [a for v in tree for a in snapshot(v)]
    return []


def unchanged(before: list[np.ndarray[Any, Any]], tree: object) -> None:
    """Every array of ``tree`` equals its copy in ``before`` bit for bit (NaN equal to NaN), dtype too."""
    after = snapshot(tree)
    assert len(before) == len(after), "an input's structure changed"
    for a, b in zip(before, after, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, "an input array was replaced"
        np.testing.assert_array_equal(a, b, err_msg="an input was mutated")
