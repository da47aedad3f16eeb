"""Test helpers: sequential reference reads with iterabledata itself, polling, threads, leftover temporaries."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from iterable import open_iterable

from iterable_dask.io.atomic import TEMP_PREFIX


def sequential(path: str, **iterableargs: Any) -> list[Any]:
    """Records of ``path`` as iterabledata reads them, one by one."""
    it = open_iterable(path, iterableargs=iterableargs)
    try:
        return list(it)
    finally:
        it.close()


def read_in_process(readers: list[Any]) -> list[Any]:
    """Call partition readers in this process, in order (pure logic, no cluster)."""
    out: list[Any] = []
    for reader in readers:
        out.extend(reader())
    return out


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``call`` in a daemon thread; the thread, and the list that receives what it raises."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as e:  # handed to the test thread
            errors.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def temporaries(folder: str | os.PathLike[str], job: str | None = None, *, recursive: bool = False) -> list[str]:
    """The temporary files :mod:`iterable_dask.io.atomic` left in ``folder``, sorted (none for a missing folder).

    A temporary is a name that starts with ``TEMP_PREFIX`` (``.iterable-dask-``):
    ``atomic.temp_path`` names them ``TEMP_PREFIX<job>-<random>.<target name>``
    beside their target, and the writability probe of a conversion's checks
    carries the prefix too. ``job`` narrows to one job's temporaries (the
    names ``atomic.sweep_temporaries`` removes); ``recursive`` looks into
    subfolders as well and gives paths relative to ``folder``.
    """
    prefix = TEMP_PREFIX if job is None else f"{TEMP_PREFIX}{job}-"
    if not os.path.isdir(folder):
        return []
    if not recursive:
        return sorted(n for n in os.listdir(folder) if n.startswith(prefix))
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in files if n.startswith(prefix)]
    return sorted(found)
