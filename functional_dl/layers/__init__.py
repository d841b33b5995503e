"""Layers: each a factory returning a :class:`~functional_dl.types.Layer` (``dense(10)``, ``relu()``)."""

from functional_dl.layers.activations import identity, relu, sigmoid, tanh
from functional_dl.layers.dense import dense

__all__ = ["dense", "identity", "relu", "sigmoid", "tanh"]
