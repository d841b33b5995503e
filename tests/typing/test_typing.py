"""Type-level tests: files that must type-check and files that must fail with the expected messages.

``pass/`` files are checked with ``mypy --strict --disallow-any-expr``: a user's script written
against our API must see no ``Any``. Errors mypy reports inside NumPy-typed library internals are
not the user's, so only lines of the checked file itself count.

Each line of a ``fail/`` file that must fail carries a trailing ``# E: <fragment of the message>``;
every such line must get an error containing its fragment, and no other line may get one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<msg>.*)$")


def _mypy(*args: str) -> list[tuple[str, int, str]]:
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--cache-dir",
            "/dev/null",
            "--config-file",
            str(ROOT / "mypy.ini"),
            "--show-error-codes",
            *args,
        ]
    )
    assert "Traceback" not in stderr, stderr
    found = []
    for line in stdout.splitlines():
        m = _ERROR.match(line)
        if m:
            found.append((Path(m["file"]).name, int(m["line"]), m["msg"]))
    return found


def test_pass_files_have_no_errors_and_see_no_any() -> None:
    files = sorted(str(p) for p in (HERE / "pass").glob("*.py"))
    names = {Path(f).name for f in files}
    errors = [e for e in _mypy("--disallow-any-expr", *files) if e[0] in names]
    assert errors == []


def _expected(path: Path) -> dict[int, str]:
    return {
        number: line.split("# E: ", 1)[1].strip()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "# E: " in line
    }


FAIL_FILES = sorted((HERE / "fail").glob("*.py"))


@pytest.fixture(scope="module")
def fail_errors() -> list[tuple[str, int, str]]:
    # One mypy run for every fail file: each run costs seconds, and files do not affect each other.
    return _mypy(*(str(p) for p in FAIL_FILES))


@pytest.mark.parametrize("path", FAIL_FILES, ids=lambda p: p.stem)
def test_fail_files_fail_as_expected(path: Path, fail_errors: list[tuple[str, int, str]]) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} declares no expected error"
    errors = [e for e in fail_errors if e[0] == path.name]
    by_line: dict[int, list[str]] = {}
    for _, line, msg in errors:
        by_line.setdefault(line, []).append(msg)
    for line, fragment in expected.items():
        assert any(fragment in msg for msg in by_line.get(line, [])), (line, fragment, by_line.get(line))
    assert set(by_line) <= set(expected), f"unexpected errors: {by_line}"
