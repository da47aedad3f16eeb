"""Retries inside a task, for transient failures only.

Dask's ``retries`` rerun a task whatever it raised: a malformed file would be
read three times and its error logged three times. Our tasks retry in place
instead, and only what may pass on another try (an I/O error such as EIO or
ENOSPC, a timeout, a lost connection, memory); a data error is raised at once.
Workers lost mid-task are still recovered by Dask itself
(``distributed.scheduler.allowed-failures``).
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Retrying", "is_transient", "mark_transient"]

_TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR, errno.ENOMEM})
_TRANSIENT_ERRNOS |= {getattr(errno, name) for name in ("ESTALE", "EDQUOT") if hasattr(errno, name)}
_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 2.0


def is_transient(e: BaseException | None) -> bool:
    """Whether ``e`` (or its cause chain) may pass on a retry; errors may also carry ``transient = True``."""
    while e is not None:
        if getattr(e, "transient", False):
            return True
        if isinstance(e, (MemoryError, TimeoutError, ConnectionError)):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return True
        e = e.__cause__
    return False


def mark_transient(error: BaseException, original: BaseException) -> BaseException:
    """``error`` (a wrapper raised without its cause) marked transient when ``original`` is."""
    if is_transient(original):
        error.transient = True  # type: ignore[attr-defined]
    return error


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt + 1``."""
    return min(_MAX_BACKOFF_SECONDS, _BACKOFF_SECONDS * 2**attempt)


@dataclass(frozen=True)
class Retrying:
    """Call ``func``; retry it up to ``retries`` times in place when it fails transiently.

    Examples
    --------
    >>> Retrying(abs, 2)(-3)
    3
    """

    func: Any
    retries: int = 0

    def __call__(self, *args: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return self.func(*args)
            except Exception as e:
                if attempt >= self.retries or not is_transient(e):
                    raise
            time.sleep(backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover
