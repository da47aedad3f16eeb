"""Shared fixtures: one real LocalCluster (2 worker processes, 1 thread each) per session."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

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


@contextlib.contextmanager
def own_cluster(allowed_failures: int = 3, **options):
    """A cluster of 2 worker processes (1 thread each) on 127.0.0.1 for one test that kills or changes workers."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=50,
            **options,
        ) as local,
        Client(local, set_as_default=False) as own,
    ):
        yield own


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
def s3_server():
    """A real S3-protocol server (moto) on 127.0.0.1, reached through s3fs: ``(endpoint, storage_options)``."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
    }
    try:
        yield endpoint, options
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, request):
    """A fresh bucket on the S3 server: ``(s3fs filesystem, "s3://bucket", storage_options)``."""
    import s3fs

    _, options = s3_server
    fs = s3fs.S3FileSystem(**options)
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    fs.mkdir(name)
    try:
        yield fs, f"s3://{name}", dict(options)
    finally:
        fs.invalidate_cache()
        with contextlib.suppress(Exception):
            fs.rm(name, recursive=True)


def dask_processes(
    cwd: str,
    workers: int = 1,
    *,
    protocol: str = "tcp",
    scheduler_args: Sequence[str] = (),
    worker_args: Sequence[str] = (),
) -> tuple[str, list[subprocess.Popen]]:
    """Start a real `dask scheduler` and `workers` `dask worker` processes in ``cwd``; return the address.

    The scheduler is the first process. ``protocol="tls"`` with the ``--tls-*``
    options in ``scheduler_args`` and ``worker_args`` starts a TLS cluster.
    """
    port = free_port()
    address = f"{protocol}://127.0.0.1:{port}"
    dask_cli = os.path.join(os.path.dirname(sys.executable), "dask")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": cwd}
    scheduler = [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    scheduler += ["--dashboard-address", "127.0.0.1:0", *(["--protocol", protocol] if protocol != "tcp" else [])]
    procs = [subprocess.Popen([*scheduler, *scheduler_args], **quiet)]
    for _ in range(workers):
        procs.append(
            subprocess.Popen(
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
                    *worker_args,
                ],
                **quiet,
            )
        )
    return address, procs


def stop_processes(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM, and SIGKILL what has not exited ``grace`` seconds later (throwaway test processes)."""
    for p in reversed(procs):
        p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(20)


@pytest.fixture(scope="session")
def real_scheduler():
    """Real `dask scheduler` and `dask worker` processes on 127.0.0.1."""
    address, procs = dask_processes(REPO)
    try:
        with Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=60)
        yield address
    finally:
        stop_processes(procs)
