"""Tests for functional_dl.random: pure keys, determinism within and across processes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import random
from functional_dl.errors import DomainError
from functional_dl.testing import strategies as fst
from functional_dl.types import Key


@given(fst.keys(), st.integers(1, 5))
def test_split_is_pure_and_children_differ(key: Key, n: int) -> None:
    children = random.split(key, n)
    assert children == random.split(key, n)
    assert len(set(children)) == n
    assert key not in children
    draws = {random.normal(c, (4,), np.float64).tobytes() for c in children}
    assert len(draws) == n


@given(fst.keys())
def test_same_key_same_numbers(key: Key) -> None:
    for dtype in (np.float32, np.float64):
        a = random.normal(key, (3, 2), dtype)
        assert a.dtype == dtype
        assert a.tobytes() == random.normal(key, (3, 2), dtype).tobytes()
    u = random.uniform(key, (50,), np.float32, -2.0, 3.0)
    assert u.dtype == np.float32 and u.min() >= -2.0 and u.max() < 3.0
    assert random.permutation(key, 10).tolist() == random.permutation(key, 10).tolist()
    assert sorted(random.permutation(key, 10).tolist()) == list(range(10))


def test_fold_in_differs_from_split() -> None:
    k = random.key(1)
    assert random.fold_in(k, 0) != random.split(k)[0]
    assert random.fold_in(k, 3) == random.fold_in(k, 3)
    assert random.fold_in(k, 3) != random.fold_in(k, 4)


@pytest.mark.parametrize("data", [-1, 2.5, 3.0, True, "3", None, np.float32(1.0)])
def test_fold_in_refuses_what_is_not_a_non_negative_integer(data: Any) -> None:
    with pytest.raises(DomainError, match=r"^random\.fold_in: data must be an integer >= 0, got "):
        random.fold_in(random.key(0), data)


def test_truncated_normal_is_bounded_with_unit_scale() -> None:
    z = random.truncated_normal(random.key(0), (20000,), np.float64, bound=2.0)
    assert np.abs(z).max() <= 2.0
    # The standard deviation of N(0,1) truncated to [-2, 2] is 0.8796.
    assert z.std() == pytest.approx(0.8796, abs=0.01)


def test_bernoulli_frequency() -> None:
    b = random.bernoulli(random.key(0), 0.3, (20000,))
    assert b.dtype == np.bool_
    assert b.mean() == pytest.approx(0.3, abs=0.015)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_key_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        random.key(bad)  # type: ignore[arg-type]


def test_bad_dtype_and_probability() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        random.normal(random.key(0), (2,), np.int32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        random.bernoulli(random.key(0), 1.5, (2,))


_PROGRAM = """
import hashlib, numpy as np
import functional_dl as fdl
from functional_dl import layers as L
net = fdl.serial(L.dense(8), L.relu(), L.dense(3))
_, params = net.init(fdl.random.key(123), (None, 5))
h = hashlib.sha256()
for k in sorted(params):
    h.update(k.encode()); h.update(params[k].tobytes())
h.update(fdl.random.normal(fdl.random.split(fdl.random.key(9), 3)[2], (7,)).tobytes())
print(h.hexdigest())
"""


def test_same_seed_same_params_across_processes() -> None:
    digests = [
        subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert digests[0] == digests[1]
    assert len(digests[0].strip()) == 64
