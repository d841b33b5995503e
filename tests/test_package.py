"""Packaging promises: light import, no optional dependency imported, no global RNG, PEP 561 marker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "functional_dl"

_IMPORT_PROBE = """
import sys, time
t = time.perf_counter()
import functional_dl
elapsed = time.perf_counter() - t
optional = ("torch", "sklearn", "matplotlib", "tqdm", "hypothesis", "scipy", "mnist1d")
heavy = sorted(m for m in optional if m in sys.modules)
print(elapsed, ",".join(heavy))
"""


def test_import_is_light_and_fast() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
    ).stdout
    elapsed, heavy = out.split(" ")
    assert heavy.strip() == "", f"import functional_dl pulled in {heavy.strip()}"
    assert float(elapsed) < 1.0


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
