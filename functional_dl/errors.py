"""The exceptions the library raises for bad input.

Every error that concerns a layer carries the layer's *path* in the network (``"encoder.2.dense"``):
the leaf layer raises with its own name and each combinator it sits in prefixes its own segment on the
way out, so the message names exactly where the bad input met the network. The classes subclass the
built-in ``ValueError``/``TypeError``/``KeyError``/``RuntimeError`` that a NumPy user would expect to
catch, so ``except ValueError`` keeps working; outside :mod:`functional_dl.testing` (whose checks fail
with ``AssertionError``, as a test does) the library raises no plain built-in exception
(``NotImplementedError`` of an abstract method aside).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "ClusterError",
    "DTypeError",
    "DomainError",
    "FrozenError",
    "FunctionalDLError",
    "KeyTypeError",
    "LabelError",
    "LayerError",
    "MissingError",
    "NotPicklableError",
    "ParamsError",
    "ShapeError",
    "describe_shape",
]

E = TypeVar("E", bound="LayerError")


class FunctionalDLError(Exception):
    """Base class of every error raised on purpose by functional_dl."""


class LayerError(FunctionalDLError):
    """An error located at a layer; ``str(err)`` is ``"<path>: <detail>"``.

    Attributes:
        path: dotted path of the layer in the network, ending with its kind (``"2.dense"``).
        detail: what was expected and what was found.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail

    def __reduce__(self) -> tuple[type[LayerError], tuple[str, str]]:
        return (type(self), (self.path, self.detail))

    def under(self: E, segment: str) -> E:
        """The same error one level further out, with ``segment`` prefixed to the path."""
        return type(self)(f"{segment}.{self.path}", self.detail)


class ShapeError(LayerError, ValueError):
    """An array reached a layer or loss with the wrong shape or rank."""


class DTypeError(LayerError, TypeError):
    """An array reached a layer or loss with the wrong dtype (integer, object, or mixed float)."""


class ParamsError(LayerError, ValueError):
    """A parameter (or state, or gradient) mapping does not have the structure that was expected."""


class LabelError(LayerError, ValueError):
    """Labels or targets are invalid: NaN, out of range, or not the values a loss accepts."""


class DomainError(LayerError, ValueError):
    """An input outside a function's domain (a probability outside ``[0, 1]``, a bad hyperparameter)."""


class ArgumentError(LayerError, TypeError):
    """A layer function was called with arguments it does not take (``forward(params, x, train=True)``)."""


class MissingError(LayerError, KeyError):
    """A name looked up is not there: a hyperparameter, a logged metric, a kind of optimizer state.

    ``str(err)`` is ``"<path>: <detail>"`` like every :class:`LayerError` (a plain ``KeyError``
    would print its message quoted).
    """

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


class FrozenError(LayerError, TypeError):
    """An attempt to modify a read-only value in place (a frozen parameter mapping)."""


class KeyTypeError(FunctionalDLError, TypeError):
    """Something other than a :class:`~functional_dl.types.Key` was given where a key is expected."""


class CheckpointError(FunctionalDLError, ValueError):
    """A checkpoint file is corrupt, tampered with, or does not match what it is loaded into."""


class NotPicklableError(FunctionalDLError, TypeError):
    """A function or value that must travel to another process does not pickle (a lambda, a closure).

    Use module-level functions and :func:`functools.partial`, as the library itself does.
    """


class ClusterError(FunctionalDLError, RuntimeError):
    """The cluster running a distributed computation went away or lost the data it was given."""


def describe_shape(shape: Iterable[int | None]) -> str:
    """Render a shape for a message; ``None`` (the batch axis) prints as ``batch``.

    Example:
        >>> describe_shape((None, 30))
        '(batch, 30)'
        >>> describe_shape((5,))
        '(5,)'
    """
    parts = ["batch" if d is None else str(d) for d in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
