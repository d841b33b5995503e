"""Standard-library docstrings as a text, read in a fresh, isolated interpreter (``char_lm``'s corpus).

Importing a module runs code, and a running program may have replaced what a module holds: pytest
swaps ``warnings.showwarning`` for its own, Jupyter and debuggers patch others. The docstrings read
in such a process are not those of the modules as Python ships them. So :func:`read_docstrings`
starts ``python -I -S`` (isolated mode: no environment variables, no site-packages, no ``.pth``
files, nothing imported before) on this file, which imports only the standard library and writes
the text to its standard output as UTF-8. For one Python version the text is then the same in every
process and on every machine.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType


def _documented(obj: object) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj)


def _docstrings(module: ModuleType) -> list[str]:
    name = module.__name__
    docs = [inspect.getdoc(module)]
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or not _documented(obj) or getattr(obj, "__module__", None) != name:
            continue
        docs.append(inspect.getdoc(obj))
        if inspect.isclass(obj):
            for member_name, member in sorted(vars(obj).items()):
                if member_name.startswith("_"):
                    continue
                func = member.__func__ if isinstance(member, classmethod | staticmethod) else member
                if inspect.isfunction(func) or isinstance(func, property):
                    docs.append(inspect.getdoc(func))
    return [doc for doc in docs if doc]


def module_docstrings(name: str) -> list[str]:
    """The docstrings of module ``name`` as this process sees it: its own, then its public members'.

    Members are the functions and classes defined in the module itself (not what it imports), by
    name; a class's docstring is followed by those of its public methods and properties, by name.
    """
    module = importlib.import_module(name)
    with warnings.catch_warnings():  # typing's deprecated io and re namespaces warn when read
        warnings.simplefilter("ignore", DeprecationWarning)
        return _docstrings(module)


def join_docstrings(modules: Sequence[str]) -> str:
    """Every docstring of ``modules`` in order, each distinct one once, separated by blank lines.

    ``inspect.getdoc`` gives an undocumented class or method its base's docstring, so the same text
    recurs; only its first occurrence is kept (a repeat would also leak into a validation split).
    """
    docs = [doc for name in modules for doc in module_docstrings(name)]
    return "\n\n".join(dict.fromkeys(docs)) + "\n"


def read_docstrings(modules: Sequence[str]) -> str:
    """:func:`join_docstrings` of ``modules`` computed in a fresh ``python -I -S`` process."""
    done = subprocess.run([sys.executable, "-I", "-S", __file__, *modules], capture_output=True, check=True)
    return done.stdout.decode("utf-8")


if __name__ == "__main__":
    sys.stdout.buffer.write(join_docstrings(sys.argv[1:]).encode("utf-8"))
