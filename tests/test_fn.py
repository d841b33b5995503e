"""Tests for the typed toolz facade."""

from __future__ import annotations

from functional_dl import _fn


def _inc(v: int) -> int:
    return v + 1


def test_pipe_and_compose_left_thread_left_to_right() -> None:
    assert _fn.pipe(2, _inc, str, len) == 1
    assert _fn.pipe(5) == 5
    f = _fn.compose_left(_inc, _inc, str)
    assert f(1) == "3"


def test_dict_helpers_are_pure() -> None:
    d = {"a": 1, "b": 2}
    assert _fn.valmap(_inc, d) == {"a": 2, "b": 3}
    assert _fn.keymap(str.upper, d) == {"A": 1, "B": 2}
    assert _fn.merge(d, {"b": 5}) == {"a": 1, "b": 5}
    assert d == {"a": 1, "b": 2}
    assert _fn.groupby(len, ["x", "yy", "z"]) == {1: ["x", "z"], 2: ["yy"]}
    assert list(_fn.accumulate(lambda acc, v: acc * v, [2, 3], 1)) == [1, 2, 6]
