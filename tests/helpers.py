"""Test helpers: sequential reference reads with iterabledata itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from iterable import open_iterable


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
