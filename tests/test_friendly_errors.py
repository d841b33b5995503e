"""The common slips get the library's own errors, saying what to do instead."""

from __future__ import annotations

from typing import Any

import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import FunctionalDLError, KeyTypeError


@pytest.mark.parametrize(
    "net",
    [
        L.dense(3),
        L.conv2d(2, 3),
        fdl.serial(L.relu(), L.dense(2)),
        fdl.residual(L.dense(4)),
    ],
    ids=["dense", "conv2d", "serial", "residual"],
)
@pytest.mark.parametrize("seed", [0, 7, None, "0"], ids=["int0", "int7", "None", "str"])
def test_a_seed_where_a_key_belongs(net: fdl.Layer[Any], seed: Any) -> None:
    shape: fdl.Shape = (None, 3, 4, 4) if net.name == "conv2d" else (None, 4)
    with pytest.raises(
        KeyTypeError, match=rf"expected a Key from fdl.random.key\(seed\), got {type(seed).__name__} {seed!r}"
    ):
        net.init(seed, shape)


def test_the_key_error_is_a_type_error_of_the_library() -> None:
    assert issubclass(KeyTypeError, TypeError)
    assert issubclass(KeyTypeError, FunctionalDLError)
    with pytest.raises(TypeError):
        fdl.random.split(0)  # type: ignore[arg-type]
