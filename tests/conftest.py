"""Shared fixtures: one real LocalCluster (2 worker processes, 1 thread each) per session."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import dask
import pytest
from distributed import Client, LocalCluster

# Clusters closing after pytest has closed its capture streams must not log into them.
logging.getLogger("distributed").setLevel(logging.WARNING)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    from iterable_dask.core.cluster import close_embedded_clusters

    close_embedded_clusters()


@pytest.fixture(scope="session")
def real_scheduler():
    """Real `dask scheduler` and `dask worker` processes on 127.0.0.1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    bindir = os.path.dirname(sys.executable)
    dask_cli = os.path.join(bindir, "dask")
    # PYTHONPATH: the worker can import functions defined in the test modules.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    sched = subprocess.Popen(
        [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    worker = subprocess.Popen(
        [
            dask_cli,
            "worker",
            address,
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--host",
            "127.0.0.1",
            "--dashboard-address",
            "127.0.0.1:0",
            "--no-nanny",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        with Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in (worker, sched):
            p.terminate()
            p.wait(20)
