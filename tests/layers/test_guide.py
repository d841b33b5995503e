"""The "writing your own layer" guide runs, and the README shows the same example as the package docstring."""

from __future__ import annotations

import doctest
from pathlib import Path

import functional_dl.layers

_README = Path(__file__).resolve().parents[2] / "README.md"
_MARK = "<!-- ci: writing-a-layer doctest -->\n```pycon\n"


def _readme_example() -> str:
    text = _README.read_text(encoding="utf-8")
    start = text.index(_MARK) + len(_MARK)
    return text[start : text.index("```", start)]


def test_readme_example_runs() -> None:
    test = doctest.DocTestParser().get_doctest(_readme_example(), {}, "README", str(_README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).attempted > 10
    assert runner.summarize(verbose=False).failed == 0


def test_readme_example_is_the_package_docstring_example() -> None:
    doc = functional_dl.layers.__doc__
    assert doc is not None
    assert _readme_example().strip() in doc
