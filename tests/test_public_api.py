"""The curated public API: everything in ``__all__`` imports and has a docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import functional_dl

_OPTIONAL = ("functional_dl.testing.strategies",)  # needs hypothesis, which the dev extra installs


def _public_modules() -> list[ModuleType]:
    mods = [functional_dl]
    for info in pkgutil.walk_packages(functional_dl.__path__, "functional_dl."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            mods.append(importlib.import_module(info.name))
    return mods


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_all_names_exist_and_are_documented(module: ModuleType) -> None:
    assert module.__doc__, f"{module.__name__} has no module docstring"
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} has no __all__"
    for name in names:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_top_level_namespaces() -> None:
    for name in (
        "serial",
        "layers",
        "losses",
        "optim",
        "random",
        "testing",
        "params",
        "initializers",
        "errors",
    ):
        assert name in functional_dl.__all__
    assert set(_OPTIONAL) <= {m.__name__ for m in _public_modules()}
