"""Embedding: integer ids to learned vectors, ``y[..., :] = weight[ids[...], :]``, as ``torch.nn.Embedding``.

Shapes: ``ids`` is an integer array ``(batch, ...)`` (typically ``(batch, time)``) of values in
``[0, num_embeddings)``, ``weight`` is ``(num_embeddings, embedding_dim)`` (PyTorch's key and
layout, so a ``state_dict`` maps across unchanged) and ``y`` is ``(batch, ..., embedding_dim)``.

Gradient: every occurrence of id ``v`` adds its output gradient to row ``v``::

    d weight[v] = sum over positions p with ids[p] == v of dy[p]

and the ids, being integers, get ``None`` (the multi-input contract of :mod:`functional_dl.types`).
With ``padding_idx`` that row starts at zero and never gets a gradient, as in PyTorch, and
padding positions output the zero vector whatever the row holds, so the gradient is the true
derivative (PyTorch reads the row, which is the same as long as it is the zero it starts as).

The sum is the classic ``np.add.at(dweight, ids, dy)``, which is unbuffered and slow; the layer
sorts the positions by id instead and adds each id's run of rows with one ``np.add.reduceat``
(:func:`_row_sums`). ``tests/layers/test_embedding.py`` holds ``np.add.at`` as the reference.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import check_cache, check_dy, check_keys, check_param, refuse_forward_keywords
from functional_dl.errors import DomainError, DTypeError, ShapeError
from functional_dl.initializers import Initializer, normal
from functional_dl.layers._args import initializer, positive_int
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.types import EVAL, Array, Context, IntArray, Key, Layer, Params, Shape

__all__ = ["EmbeddingCache", "embedding"]

_KEYS = frozenset({"weight"})


class EmbeddingCache(NamedTuple):
    """What backward needs from forward."""

    ids: IntArray  # (batch, ...), each in [0, num_embeddings)


def _with_padding_row(
    base: Initializer, key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /, *, row: int
) -> Array:
    """``base``'s weight with row ``row`` set to zero (the padding vector)."""
    weight = base(key, shape, dtype)
    weight[row] = 0  # weight is the initializer's fresh array, not yet frozen
    return weight


def _shapes(
    in_shape: Shape, /, *, num: int, dim: int, padding_idx: int | None, w_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    """``{"weight": (num, dim)}``; any input shape ``(batch, ...)`` gains a last axis ``dim``."""
    if len(in_shape) < 1:
        raise ShapeError("embedding", "expected an input shape (batch, ...), got ()")
    init = w_init if padding_idx is None else partial(_with_padding_row, w_init, row=padding_idx)
    return (*in_shape, dim), {"weight": ArraySpec((num, dim), init)}


def _check_ids(ids: object, num: int) -> IntArray:
    if not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu":
        got = ids.dtype if isinstance(ids, np.ndarray) else type(ids).__name__
        raise DTypeError("embedding", f"expected integer ids, got {got}")
    if ids.ndim < 1:
        raise ShapeError("embedding", "expected ids of shape (batch, ...), got a scalar")
    if ids.size and (ids.min() < 0 or ids.max() >= num):
        raise DomainError(
            "embedding", f"ids must lie in [0, {num - 1}] (the vocabulary), got {ids.min()}..{ids.max()}"
        )
    return ids


def _weight(params: Params, num: int, dim: int) -> Array:
    check_keys(params, _KEYS, "embedding")
    return check_param(params, "weight", (num, dim), "embedding")


def _forward(
    params: Params,
    x: Any,
    ctx: Context = EVAL,
    /,
    *,
    num: int,
    dim: int,
    padding_idx: int | None,
    **slips: object,
) -> tuple[Array, EmbeddingCache]:
    """``y = weight[ids]``: ``(batch, ...)`` integers to ``(batch, ..., dim)``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("embedding", slips)
    weight = _weight(params, num, dim)
    ids = _check_ids(x, num)
    y: Array = weight[ids]  # advanced indexing: a fresh array
    if padding_idx is not None:
        y[ids == padding_idx] = 0  # the constant padding vector, whatever the row holds
    return y, EmbeddingCache(ids)


def _row_sums_reference(ids: IntArray, dy: Array, num: int) -> Array:
    """``d weight``: the formula, with ``np.add.at`` (the fast path's reference)."""
    grad = np.zeros((num, dy.shape[-1]), dy.dtype)
    np.add.at(grad, ids.reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return grad


def _row_sums(ids: IntArray, dy: Array, num: int) -> Array:
    """:func:`_row_sums_reference` by sorting: each id's rows are contiguous, then one ``reduceat``.

    ``argsort(kind="stable")`` keeps equal ids in position order, so each row of the result adds
    its terms in the same order as ``np.add.at`` does; the tests check the two agree to rounding.
    """
    flat = ids.reshape(-1)
    grad = np.zeros((num, dy.shape[-1]), dy.dtype)
    if flat.size == 0:
        return grad
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    grad[sorted_ids[starts]] = np.add.reduceat(dy.reshape(-1, dy.shape[-1])[order], starts, axis=0)
    return grad


def _weight_grad(
    params: Params, cache: EmbeddingCache, dy: Array, *, num: int, dim: int, padding_idx: int | None
) -> Params:
    check_cache(cache, EmbeddingCache, "embedding")
    weight = _weight(params, num, dim)
    check_dy(dy, (*cache.ids.shape, dim), weight.dtype, "embedding")
    grad = _row_sums(cache.ids, dy, num)
    if padding_idx is not None:
        grad[padding_idx] = 0  # the padding vector is a constant
    return {"weight": grad}


def _backward(
    params: Params, cache: EmbeddingCache, dy: Array, /, *, num: int, dim: int, padding_idx: int | None
) -> tuple[Any, Params]:
    """``(None, {"weight": dweight})``: the ids are integers and have no gradient."""
    return None, _weight_grad(params, cache, dy, num=num, dim=dim, padding_idx=padding_idx)


def _backward_params(
    params: Params, cache: EmbeddingCache, dy: Array, /, *, num: int, dim: int, padding_idx: int | None
) -> Params:
    return _weight_grad(params, cache, dy, num=num, dim=dim, padding_idx=padding_idx)


def embedding(
    num_embeddings: int,
    embedding_dim: int,
    *,
    padding_idx: int | None = None,
    w_init: Initializer | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[EmbeddingCache]:
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

    Args:
        num_embeddings: the vocabulary size; ids must lie in ``[0, num_embeddings)``.
        embedding_dim: the size of each vector.
        padding_idx: an id whose vector is zero and never trained (PyTorch's ``padding_idx``;
            negative values count from the end, as there).
        w_init: the initializer of ``weight``; ``N(0, 1)`` by default, as in PyTorch.
        dtype: dtype of ``weight`` and so of the output.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = embedding(10, 3, padding_idx=0)
        >>> out_shape, params = layer.init(random.key(0), (None, 5))
        >>> out_shape, params["weight"].shape, params["weight"][0].tolist()
        ((None, 5, 3), (10, 3), [0.0, 0.0, 0.0])
        >>> y, cache = layer.forward(params, np.array([[1, 2, 0, 0, 0]]))
        >>> y.shape, y[0, 2].tolist()
        ((1, 5, 3), [0.0, 0.0, 0.0])
    """
    num = positive_int(num_embeddings, "num_embeddings", "embedding")
    dim = positive_int(embedding_dim, "embedding_dim", "embedding")
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) or not -num <= padding_idx < num:
            raise DomainError(
                "embedding", f"padding_idx must be an id in [-{num}, {num}), got {padding_idx!r}"
            )
        padding_idx %= num
    shapes = partial(_shapes, w_init=initializer(w_init, normal(1.0), "w_init", "embedding"))
    return build(
        "embedding",
        shapes,
        _forward,
        _backward,
        dtype=dtype,
        backward_params=_backward_params,
        num=num,
        dim=dim,
        padding_idx=padding_idx,
    )
