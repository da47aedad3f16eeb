"""Running the installed ``iterable-dask`` console script in a subprocess, and the processes it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psutil

from .helpers import wait_for

SCRIPT = os.path.join(os.path.dirname(sys.executable), "iterable-dask")
#: Fail fast on an unreachable scheduler, and keep the child's output free of colour codes.
ENV = dict(os.environ, DASK_ITERABLE_DASK__CONNECT_TIMEOUT="2s", NO_COLOR="1")


def run_cli(*args: str, cwd: str | None = None, timeout: float = 120, env: dict[str, str] | None = None):
    """Run ``iterable-dask ARGS``; the completed process (text stdout and stderr)."""
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or ENV, check=False
    )


def start_cli(*args: str, cwd: str | None = None) -> subprocess.Popen:
    """Start ``iterable-dask ARGS`` in its own session (signals reach it alone)."""
    return subprocess.Popen(
        [SCRIPT, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        start_new_session=True,
    )  # fmt: skip


def summary(completed: subprocess.CompletedProcess) -> dict[str, Any]:
    """The ``--json`` summary a command printed (the last stdout line)."""
    assert completed.stdout.strip(), f"no JSON on stdout; stderr: {completed.stderr}"
    return json.loads(completed.stdout.strip().splitlines()[-1])


def descendants(pid: int) -> list[psutil.Process]:
    """Every process started under ``pid``."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def all_gone(processes: list[psutil.Process], timeout: float = 60.0) -> None:
    """Fail unless every process in ``processes`` has exited within ``timeout`` seconds."""

    def alive(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def gone() -> bool:
        return not [p for p in processes if alive(p)]

    wait_for(gone, timeout, f"processes {[p.pid for p in processes]} to exit")
