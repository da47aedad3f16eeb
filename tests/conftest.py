"""Shared fixtures and the suite's two ways to start a cluster.

``own_cluster`` starts a LocalCluster (2 worker processes, 1 thread each, on
127.0.0.1) and yields a Client of it: the session's ``cluster``/``client``
fixtures are one, and every test that kills or changes workers starts its own.
``real_cluster`` starts real `dask scheduler` and `dask worker` processes
(the ``real_scheduler`` fixture, the TLS cluster, the clusters whose scheduler
a test kills, the compose file's command lines).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster

# Clusters closing after pytest has closed its capture streams must not log into them.
logging.getLogger("distributed").setLevel(logging.WARNING)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK_CLI = os.path.join(os.path.dirname(sys.executable), "dask")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def own_cluster(workers: int = 2, *, allowed_failures: int = 3, **options: Any) -> Iterator[Client]:
    """A LocalCluster of ``workers`` worker processes (1 thread each) on 127.0.0.1, and a Client of it.

    ``allowed_failures`` is the scheduler's ``allowed-failures`` (0: a killed
    worker fails its task at once). ``options`` go to LocalCluster over the
    defaults here (``dashboard_address=None``, ``processes=False``, ...); the
    cluster itself is ``client.cluster``. The client is not the default one.
    """
    settings = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "worker_dashboard_address": "127.0.0.1:0",
        "silence_logs": 50,
        **options,
    }
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        LocalCluster(**settings) as local,
        Client(local, set_as_default=False) as own,
    ):
        yield own


@pytest.fixture(scope="session")
def client():
    """The session's cluster (2 worker processes), for tests that leave its workers as they found them."""
    with own_cluster(silence_logs=40) as c:
        yield c


@pytest.fixture(scope="session")
def cluster(client):
    """The session's LocalCluster itself."""
    return client.cluster


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


@dataclasses.dataclass
class RealCluster:
    """Real `dask scheduler` and `dask worker` processes: the scheduler's address, and the processes."""

    address: str
    procs: list[subprocess.Popen]  # the scheduler first, then the workers

    @property
    def scheduler(self) -> subprocess.Popen:
        return self.procs[0]

    @property
    def workers(self) -> list[subprocess.Popen]:
        return self.procs[1:]


def dask_command(role: str, address: str, port: int, protocol: str = "tcp") -> list[str]:
    """The suite's `dask scheduler` / `dask worker` command line (tests/test_compose.py compares it with compose's)."""
    if role == "scheduler":
        protocol_args = ["--protocol", protocol] if protocol != "tcp" else []
        return [DASK_CLI, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                "127.0.0.1:0", *protocol_args]  # fmt: skip
    return [DASK_CLI, "worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
            "--dashboard-address", "127.0.0.1:0", "--no-nanny"]  # fmt: skip


def _test_environment(role: str, address: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))


@contextlib.contextmanager
def real_cluster(
    cwd: str,
    workers: int = 1,
    *,
    protocol: str = "tcp",
    scheduler_args: Sequence[str] = (),
    worker_args: Sequence[str] = (),
    security: Any = None,
    command: Callable[[str, str, int], list[str]] | None = None,
    environment: Callable[[str, str], dict[str, str]] = _test_environment,
    expect_workers: int | None = None,
) -> Iterator[RealCluster]:
    """Start a real `dask scheduler` and ``workers`` `dask worker` processes in ``cwd``, on 127.0.0.1.

    Yields once ``expect_workers`` (default ``workers``) workers have joined;
    stops every process on exit (SIGTERM, then SIGKILL), also the ones a test
    has killed already. ``protocol="tls"`` with the ``--tls-*`` options in
    ``scheduler_args`` and ``worker_args``, and ``security`` for the client
    that waits, starts a TLS cluster. ``command(role, address, port)`` and
    ``environment(role, address)`` replace the suite's command lines and environment
    (``role`` is ``"scheduler"`` or ``"worker"``).
    """
    port = free_port()
    address = f"{protocol}://127.0.0.1:{port}"
    command = command or (lambda role, address, port: dask_command(role, address, port, protocol))
    extra = {"scheduler": list(scheduler_args), "worker": list(worker_args)}

    def start(role: str) -> subprocess.Popen:
        args = [*command(role, address, port), *extra[role]]
        return subprocess.Popen(
            args, cwd=cwd, env=environment(role, address), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    procs = [start("scheduler")]
    try:
        procs += [start("worker") for _ in range(workers)]
        with Client(address, security=security, timeout=60, set_as_default=False) as c:
            c.wait_for_workers(workers if expect_workers is None else expect_workers, timeout=90)
        yield RealCluster(address, procs)
    finally:
        stop_processes(procs)


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
    """The address of real `dask scheduler` and `dask worker` processes on 127.0.0.1, for the session."""
    with real_cluster(REPO) as real:
        yield real.address
