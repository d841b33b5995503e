"""threads: one setting, capped by the cores and by threadpoolctl's limits; parallel_map keeps order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from functional_dl import threads


@pytest.fixture(autouse=True)
def _restore_setting() -> Iterator[None]:
    yield
    threads.set_num_threads(None)


def test_the_setting_wins_over_the_environment_and_is_capped_by_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "_cores", lambda: 4)
    monkeypatch.setattr(threads, "_pool_limits", lambda: None)
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.num_threads() == 2  # the default
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert threads.num_threads() == 3
    threads.set_num_threads(1)
    assert threads.num_threads() == 1
    threads.set_num_threads(16)
    assert threads.num_threads() == 4
    threads.set_num_threads(None)
    assert threads.num_threads() == 3


def test_threadpoolctl_limits_are_respected() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    threads.set_num_threads(2)
    outside = threads.num_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        assert threads.num_threads() == 1
    assert threads.num_threads() == outside


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_setting_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="set_num_threads: expected a positive int or None"):
        threads.set_num_threads(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["zero", "0"])
def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(threads.ENV_VAR, raw)
    with pytest.raises(ValueError, match=threads.ENV_VAR):
        threads.num_threads()


def test_parallel_map_keeps_the_order_and_uses_other_threads() -> None:
    names: list[str] = []

    def work(i: int) -> int:
        names.append(threading.current_thread().name)
        return i * i

    assert threads.parallel_map(work, [1, 2, 3], 3) == [1, 4, 9]
    assert names.count(threading.current_thread().name) == 1  # the caller ran the first item only
    names.clear()
    assert threads.parallel_map(work, [1, 2, 3], 1) == [1, 4, 9]
    assert set(names) == {threading.current_thread().name}


def test_parallel_map_raises_a_workers_exception_in_the_caller() -> None:
    def work(i: int) -> int:
        if i == 2:
            raise RuntimeError("two")
        return i

    with pytest.raises(RuntimeError, match="two"):
        threads.parallel_map(work, [1, 2], 2)
