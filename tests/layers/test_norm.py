"""layer_norm and group_norm: arguments and inputs they refuse, with messages naming the layer.

Their maths (finite differences, PyTorch agreement, purity) is checked through the registry in
``cases.py``; this file covers what the registry cannot: bad construction arguments and shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import ShapeError


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_eps_must_be_positive(eps: float) -> None:
    with pytest.raises(ValueError, match=r"^layer_norm: eps must be positive"):
        L.layer_norm(eps=eps)
    with pytest.raises(ValueError, match=r"^group_norm: eps must be positive"):
        L.group_norm(2, eps=eps)


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_axis_and_group_counts_must_be_positive_ints(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^layer_norm: n_axes must be a positive int"):
        L.layer_norm(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^group_norm: num_groups must be a positive int"):
        L.group_norm(bad)  # type: ignore[arg-type]


def test_group_norm_refuses_channels_it_cannot_split() -> None:
    with pytest.raises(ShapeError, match="6 channels cannot be split into 4 groups"):
        L.group_norm(4).init(fdl.random.key(0), (None, 6, 5))


def test_wrong_input_shapes_name_the_layer_path_and_both_shapes() -> None:
    net = fdl.serial(L.dense(4), L.layer_norm())
    _, params = net.init(fdl.random.key(0), (None, 3))
    bad = fdl.params.FrozenParams(
        {**params, "1.scale": np.ones(5, np.float32), "1.bias": np.zeros(5, np.float32)}
    )
    with pytest.raises(
        ShapeError, match=r"^1\.layer_norm: expected input of shape \(batch, \.\.\., 5\), got \(2, 4\)"
    ):
        net.forward(bad, np.ones((2, 3), np.float32))
    norm = L.group_norm(2)
    _, gparams = norm.init(fdl.random.key(0), (None, 4, 3))
    with pytest.raises(ShapeError, match=r"^group_norm: expected input of shape .*got \(2, 6, 3\)"):
        norm.forward(gparams, np.ones((2, 6, 3), np.float32))
