"""The array-like rule: what the library converts with ``np.asarray`` and what it refuses.

The rule, stated once for the whole library
-------------------------------------------
**Data you hand over is converted; arrays inside a network are not.** The predictions, targets and
weights given to a loss (:mod:`functional_dl.losses`) or a metric (:mod:`functional_dl.metrics`)
and the ``(x, y)`` data given to ``train.fit``/``evaluate`` may be any array-like a NumPy user
would pass (a list of numbers, a nested list, a NumPy scalar, an ``ndarray`` subclass such as a
read-only or memory-mapped array): each goes through ``np.asarray`` once, as NumPy's own functions
do. What comes out must be *numbers*: booleans, integers or real floats. Refused, with the
library's errors naming the function and the argument:

* ragged nested lists (not a rectangular array): :class:`~functional_dl.errors.ShapeError`;
* strings, even numeric ones (``"1.5"`` is not parsed), objects (an ``object`` array, ``None``),
  complex numbers (the imaginary part would be dropped), dates and records: a
  :class:`~functional_dl.errors.DTypeError` (a :class:`~functional_dl.errors.LabelError` for
  targets and labels, which is what a bad target is);
* the two ``ndarray`` subclasses whose operators mean something else (:func:`foreign_array`):
  masked arrays (``np.ma.MaskedArray``: ``np.asarray`` would drop the mask and use the hidden
  values, so fill or compress them first) and ``np.matrix`` (always 2-D, ``*`` a matrix product,
  reductions that stay 2-D: pass ``np.asarray(m)``), a
  :class:`~functional_dl.errors.DTypeError` (``error``) that says so.

The same two subclasses are refused everywhere the library takes arrays: by the layers
(:mod:`functional_dl._checks`, rule 1), the optimizers' gradients, :func:`functional_dl.params.freeze`
and :func:`functional_dl.checkpoint.save`. Every other subclass (a memory-mapped array, a view
of a subclass that keeps ``ndarray``'s operators) is an array like any other.

Each function then says which dtypes and values it takes (a loss's prediction must be floating, a
class label a whole number, ...). A layer's ``x``, ``dy``, params and buffers, on the other hand,
are arrays already (they come out of other layers and of ``init``), and a layer never converts:
a conversion on every call would hide a copy, and a list reaching the middle of a network is a bug.

Cost
----
An ``ndarray`` (the common case, and every call in a training loop) is returned as it is after one
``type`` comparison and one dtype-kind test; ``np.asarray`` and the checks of the rare cases run
only for anything else.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from functional_dl.errors import DTypeError, LayerError, ShapeError

__all__ = ["NUMERIC_KINDS", "as_numeric", "foreign_array"]

#: The dtype kinds that hold numbers: bool, signed and unsigned int, real float.
NUMERIC_KINDS = "biuf"

_KIND_NAMES = {
    "U": "strings (text is not parsed as numbers)",
    "S": "byte strings (text is not parsed as numbers)",
    "O": "Python objects",
    "c": "complex numbers (the imaginary part would be dropped)",
    "M": "dates",
    "m": "time deltas",
    "V": "records",
}


def foreign_array(value: object) -> str | None:
    """What is wrong with ``value`` if it is a masked array or an ``np.matrix``, else ``None``.

    Both are ``ndarray`` subclasses, so ``isinstance(value, np.ndarray)`` holds, but NumPy code
    written for arrays gives them another meaning: a masked array's mask is ignored by ``@`` and
    dropped by ``np.asarray`` (so the hidden values count), and an ``np.matrix`` is always 2-D,
    multiplies with ``*`` and keeps two axes after a reduction. The text says what was found and
    what to pass instead, for the caller's message.

    Example:
        >>> foreign_array(np.ones(2)) is None
        True
        >>> foreign_array(np.ma.masked_array([1.0, 2.0], mask=[False, True]))  # doctest: +ELLIPSIS
        'a masked array (np.ma.MaskedArray), ... or m.compressed() for the unmasked ones alone'
    """
    if isinstance(value, np.matrix):
        return (
            "an np.matrix (always 2-D, * is a matrix product, reductions stay 2-D); "
            "pass np.asarray(m), a plain array of the same numbers"
        )
    # NumPy imports numpy.ma only when it is first used, and no masked array exists before that:
    # looking it up here keeps the library from importing it (and the collector from tracing it).
    ma = sys.modules.get("numpy.ma")
    if ma is not None and isinstance(value, ma.MaskedArray):
        return (
            "a masked array (np.ma.MaskedArray), whose mask the arithmetic here would ignore "
            "(the hidden values would count); pass m.filled(value) to fill the masked entries, or "
            "m.compressed() for the unmasked ones alone"
        )
    return None


def _describe_kind(dtype: np.dtype[Any]) -> str:
    return _KIND_NAMES.get(dtype.kind, f"dtype {dtype}")


def as_numeric(
    value: object, what: str, where: str, *, error: type[LayerError] = DTypeError
) -> npt.NDArray[Any]:
    """``value`` as a NumPy array of numbers (bool, int or real float), by the rule above.

    Args:
        value: an array or array-like.
        what: the argument's name for messages (``"target"``, ``"weights"``).
        where: the function's name (``"mean_squared_error"``).
        error: the error class for a non-numeric dtype (``LabelError`` for targets).

    Returns:
        ``value`` itself when it is an ``ndarray`` of numbers, else ``np.asarray(value)``.

    Raises:
        ShapeError: a ragged nested list.
        DTypeError: (or ``error``) strings, objects, complex numbers and other non-numbers, or a
            masked array or an ``np.matrix`` (:func:`foreign_array`).

    Example:
        >>> as_numeric([[1, 2], [3, 4]], "target", "mse").shape
        (2, 2)
        >>> as_numeric(["1.5"], "target", "mse")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        functional_dl.errors.DTypeError: mse: expected target as numbers (bool, int or float), got strings...
    """
    if type(value) is np.ndarray and value.dtype.kind in NUMERIC_KINDS:
        return value
    foreign = foreign_array(value)
    if foreign is not None:
        raise error(where, f"expected {what} as a plain array, got {foreign}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:  # a ragged nested list
        raise ShapeError(where, f"{what} is not a rectangular array: {err}") from None
    if arr.dtype.kind not in NUMERIC_KINDS:
        raise error(
            where, f"expected {what} as numbers (bool, int or float), got {_describe_kind(arr.dtype)}"
        )
    return arr
