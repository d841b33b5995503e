"""A real local Dask cluster for the distributed tests: 2 worker processes, one thread each, loopback only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("distributed")

from distributed import Client

from functional_dl.distributed import local_cluster


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """One cluster per test module: starting one takes seconds on a small machine."""
    with local_cluster(2) as c:
        yield c
