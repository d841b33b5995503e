"""Packaging promises: no optional dependency imported, a suite that collects without torch, no global RNG,
PEP 561 marker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "functional_dl"

_IMPORT_PROBE = """
import sys
import functional_dl
optional = ("torch", "sklearn", "matplotlib", "tqdm", "hypothesis", "scipy", "mnist1d")
print(",".join(sorted(m for m in optional if m in sys.modules)))
"""


def test_import_pulls_in_no_optional_dependency() -> None:
    # How long the import takes is a benchmark's question (a busy machine fails any fixed bound).
    heavy = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert heavy == "", f"import functional_dl pulled in {heavy}"


# Collect the whole suite (doctests included) in a process where torch cannot be imported, as if it
# were not installed: only the PyTorch comparisons may be skipped, nothing may fail to collect.
_COLLECT_WITHOUT_TORCH = """
import importlib.abc, sys

class HideTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideTorch())
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:xdist"]))
"""


def test_the_suite_collects_without_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _COLLECT_WITHOUT_TORCH],
        check=False,
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    # pytest exits with 2 when a module fails to collect (an import of torch outside importorskip).
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_py_typed_marker_ships() -> None:
    assert (PACKAGE / "py.typed").is_file()


# Any use of NumPy's or Python's global random state, or an unseeded generator.
_GLOBAL_RNG = re.compile(
    r"np\.random\.(seed|rand|randn|randint|random|normal|uniform|choice|shuffle|permutation|default_rng\(\s*\))"
    r"|^\s*import random\b|^\s*from random import",
    re.MULTILINE,
)


def test_no_global_random_state_in_the_package() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}: {m.group(0)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for m in _GLOBAL_RNG.finditer(path.read_text())
    ]
    assert offenders == []


def test_the_rng_pattern_catches_what_it_should() -> None:
    assert _GLOBAL_RNG.search("x = np.random.randn(3)")
    assert _GLOBAL_RNG.search("rng = np.random.default_rng()")
    assert _GLOBAL_RNG.search("import random\n")
    assert not _GLOBAL_RNG.search("np.random.Generator(np.random.PCG64(seq))")
