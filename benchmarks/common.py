"""Shared benchmark helpers: data, a 2-worker cluster on 127.0.0.1, timing, reporting."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from distributed import Client, LocalCluster

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def data_path(name: str) -> str:
    os.makedirs(DATA, exist_ok=True)
    return os.path.join(DATA, name)


def sample_csv(name: str, rows: int) -> str:
    """A sample CSV of ``rows`` records under benchmarks/data (made once)."""
    from iterable_dask.sample import write_sample

    path = data_path(name)
    if not os.path.exists(path):
        write_sample(path, rows)
    return path


def ensure_sample(path: str, rows: int, seed: int, root: str) -> str:
    """Write a sample file of ``rows`` rows at ``path`` unless the same one is there (a stamp under ``root`` says)."""
    from iterable_dask.sample import write_sample

    stamp = os.path.join(root, "stamps", os.path.relpath(path, root).replace(os.sep, "--") + f".{rows}.{seed}")
    if not (os.path.exists(path) and os.path.exists(stamp)):
        write_sample(path, rows, seed=seed, start=seed * rows)
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w"):
            pass
    return path


@contextlib.contextmanager
def two_worker_cluster() -> Iterator[Client]:
    """2 worker processes, 1 thread each, everything on 127.0.0.1."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, ready: Any, stop: Any) -> None:
    """Run moto's S3 server on 127.0.0.1:``port`` until ``stop`` is set (in a child process)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    stop.wait()
    server.stop()


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server in a child process; yields the s3fs ``storage_options`` that reach it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    port = free_port()
    process = ctx.Process(target=_serve, args=(port, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the moto S3 server did not start within 60 s")
        yield {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def report(label: str, baseline: float, candidate: float, target: float | None, higher_is_better: bool = True) -> bool:
    """Print one ratio next to its target; return whether it met it."""
    ratio = baseline / candidate if candidate > 0 else float("inf")
    met = target is None or (ratio >= target if higher_is_better else ratio <= target)
    goal = "" if target is None else f"  (target >= {target:.2f}: {'met' if met else 'NOT met'})"
    print(f"{label:<62} {baseline:8.2f}s vs {candidate:8.2f}s  ratio {ratio:5.2f}x{goal}", flush=True)
    return met


def small() -> bool:
    return "--small" in sys.argv
