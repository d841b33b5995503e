"""Checks of a layer factory's arguments (rule 5 of :mod:`functional_dl._checks`).

A factory checks its arguments once, when the layer is made, so a bad size or flag is reported
where it was written, not as a NumPy error at the first call. Each helper returns the argument
normalised (a Python ``int``, ``float`` or ``bool``) and raises
:class:`~functional_dl.errors.DomainError` naming the layer, the argument and the value otherwise;
:func:`float_dtype` raises :class:`~functional_dl.errors.DTypeError`. The checks that are not about
layers (:func:`positive_int`, :func:`flag`, :func:`real`) live in :mod:`functional_dl._argcheck`, which
the optimizers, schedules and callbacks use too; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from functional_dl._argcheck import flag, positive_int, real
from functional_dl.errors import DomainError, DTypeError
from functional_dl.initializers import Initializer

__all__ = ["check_options", "flag", "float_dtype", "initializer", "positive_int", "real"]


def float_dtype(dtype: npt.DTypeLike, layer: str) -> np.dtype[Any]:
    """``np.dtype(dtype)`` when it is a floating dtype; integer, bool, complex or object is refused."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind != "f" or dtype is None:
        raise DTypeError(layer, f"dtype must be a floating-point dtype (float32 or float64), got {dtype!r}")
    return resolved


def initializer(given: Initializer | None, default: Initializer, what: str, layer: str) -> Initializer:
    """``given``, or ``default`` when it is ``None`` (a factory's way of saying "the usual one")."""
    if given is None:
        return default
    if not callable(given):
        raise DomainError(layer, f"{what} must be an initializer (key, shape, dtype) -> array, got {given!r}")
    return given


def check_options(options: Mapping[str, object], known: type, layer: str) -> None:
    """Refuse an option that the ``TypedDict`` ``known`` does not declare (a misspelt keyword).

    ``**options: Unpack[...]`` is checked by mypy, not at run time, so ``batch_norm1d(momentun=0.1)``
    would otherwise be silently ignored.
    """
    names: frozenset[str] = known.__required_keys__ | known.__optional_keys__  # type: ignore[attr-defined]
    unknown = options.keys() - names
    if unknown:
        raise DomainError(layer, f"unknown option(s) {sorted(unknown)}; the options are {sorted(names)}")
