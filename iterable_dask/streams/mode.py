"""Where a stream runs: ``"thread"`` (threads of this process) or ``"process"`` (Dask workers), decided in one place."""

from __future__ import annotations

from typing import Any

from ..core import config

__all__ = ["stream_mode"]


def stream_mode(mode: str | None, client: Any, scheduler: str | None, does: str) -> str:
    """``"process"`` when asked for or when a cluster is given (``client`` or ``scheduler``), else ``"thread"``.

    ``mode=None`` is ``iterable-dask.parallel-mode``; ``"auto"`` is
    ``"process"`` when a cluster is given, else ``"thread"``. ``does`` says
    what the caller does in thread mode, for the error message.

    Examples
    --------
    >>> stream_mode("auto", None, "tcp://scheduler:8786", "reads")
    'process'
    >>> stream_mode("thread", None, "tcp://scheduler:8786", "reads")
    Traceback (most recent call last):
    ...
    ValueError: mode='thread' reads in this process: do not pass client= or scheduler=
    """
    if mode not in (None, "auto", "thread", "process"):
        raise ValueError(f"mode must be 'thread' or 'process'; got {mode!r}")
    if mode == "thread" and (client is not None or scheduler is not None):
        raise ValueError(f"mode='thread' {does} in this process: do not pass client= or scheduler=")
    mode = config.resolve_parallel_mode(None) if mode is None else mode  # "auto": thread, unless a cluster is given
    return "process" if mode == "process" or client is not None or scheduler is not None else "thread"
