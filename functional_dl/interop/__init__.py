"""Weights to and from other libraries: a PyTorch ``state_dict`` (needs only the ``torch`` extra).

:func:`from_torch` reads a network's params and buffers from ``module.state_dict()``;
:func:`to_torch` writes them for ``module.load_state_dict``. Modules are paired through our
network's children, parameterised layers in order (or by an explicit ``key_map``); the per-kind
table :data:`KINDS` names each layer kind's arrays on both sides. A weight tied with
:func:`~functional_dl.combinators.tie` (stored once here, listed under both names in a tied
PyTorch model's ``state_dict``) is checked on import and written under both names on export. See
:mod:`functional_dl.interop.torch_state` for the pairing rule and the strict checks. The package
imports without PyTorch.
"""

from functional_dl.interop.kinds import KINDS, ArrayConversion, KindMapping, same_layout
from functional_dl.interop.torch_state import Pair, from_torch, pairs, to_torch

__all__ = [
    "KINDS",
    "ArrayConversion",
    "KindMapping",
    "Pair",
    "from_torch",
    "pairs",
    "same_layout",
    "to_torch",
]
