"""Shared fixtures: one real LocalCluster (2 worker processes, 1 thread each) per session."""

from __future__ import annotations

import os

import dask
import pytest
from distributed import Client, LocalCluster

os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="session")
def cluster():
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 3}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as c,
    ):
        yield c


@pytest.fixture(scope="session")
def client(cluster):
    with Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_embedded_leaks():
    """Tests must not leave an active default client or an embedded cluster behind."""
    yield
    from iterable_dask.cluster import close_embedded_clusters

    close_embedded_clusters()
