"""Hypothesis strategies for property-testing layers, losses and optimizers.

Import this module explicitly (``from functional_dl.testing import strategies``); it needs
``hypothesis``, a development dependency that ``import functional_dl`` never loads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl import random
from functional_dl.types import Array, Key

__all__ = ["LayerInput", "arrays", "keys", "layer_inputs", "shapes"]


def shapes(
    *, min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` each."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
    *,
    dtype: npt.DTypeLike = np.float64,
    bound: float = 3.0,
    min_magnitude: float = 0.0,
) -> st.SearchStrategy[Array]:
    """Finite float arrays with entries in ``[-bound, bound]`` and ``|entry| >= min_magnitude``.

    ``min_magnitude`` keeps entries away from a kink at 0 (relu, abs) so that finite differences
    are meaningful. Entries are drawn at float32 width so the same values exist in both dtypes.
    """
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)
    if min_magnitude > 0:
        elements = elements.filter(lambda v: abs(v) >= min_magnitude)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def keys() -> st.SearchStrategy[Key]:
    """Random keys (root keys from seeds in ``[0, 2**32)``)."""
    return st.integers(0, 2**32 - 1).map(random.key)


class LayerInput(NamedTuple):
    """A key for ``init``, an input batch, and the shape (batch axis ``None``) to initialise with."""

    key: Key
    x: Array
    in_shape: tuple[int | None, ...]


@st.composite
def layer_inputs(
    draw: st.DrawFn,
    *,
    feature_shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    max_batch: int = 4,
    dtype: npt.DTypeLike = np.float64,
    bound: float = 3.0,
    min_magnitude: float = 0.0,
) -> LayerInput:
    """A batch ``x`` of shape ``(batch, *feature_shape)`` with a key and the matching ``in_shape``.

    ``feature_shape`` defaults to one axis of 1..5 features.
    """
    features = feature_shape if feature_shape is not None else shapes(max_dims=1)
    fshape = draw(features) if isinstance(features, st.SearchStrategy) else features
    batch = draw(st.integers(1, max_batch))
    x = draw(arrays((batch, *fshape), dtype=dtype, bound=bound, min_magnitude=min_magnitude))
    return LayerInput(draw(keys()), x, (None, *fshape))
