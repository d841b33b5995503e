"""The export rule: a layer module exports its factories and the types in their signatures, nothing else."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import functional_dl.layers

_MODULES = sorted(
    info.name for info in pkgutil.iter_modules(functional_dl.layers.__path__) if not info.name.startswith("_")
)


@pytest.mark.parametrize("name", _MODULES)
def test_a_layer_module_exports_factories_and_types_only(name: str) -> None:
    module = importlib.import_module(f"functional_dl.layers.{name}")
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    for attr in exported:
        obj = getattr(module, attr)
        if isinstance(obj, type):
            continue
        returns = str(inspect.signature(obj).return_annotation)
        assert returns.startswith("Layer["), f"{name}.{attr} is neither a type nor a factory of layers"


def test_the_rule_covers_every_layer_module() -> None:
    assert {"dense", "conv", "conv_transpose", "pool", "norm", "batch_norm", "reshape", "activations"} <= set(
        _MODULES
    )
