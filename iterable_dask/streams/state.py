"""What the readers of :func:`~iterable_dask.parallel_read` share with its consumer: bounded buffers and a stop event.

Reader threads (thread mode) or one feeder thread (process mode) fill the
buffers the consumer drains; :class:`State` holds them, :class:`Buffer` is one
bounded FIFO. Each item is ``(kind, source index, payload)``, ``kind`` one of
:data:`DATA` (a chunk of records), :data:`DONE` (the source is read) or
:data:`ERROR` (the source failed; the payload is its error).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["DATA", "DONE", "ERROR", "Buffer", "State"]

logger = logging.getLogger(__name__)

DATA, DONE, ERROR = 0, 1, 2
_POLL = 0.1  # seconds between checks of the stop event by a blocked thread
_JOIN_TIMEOUT = 30.0


class Buffer:
    """A FIFO holding at most ``limit`` records; an item bigger than the room waits for an empty buffer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._items: collections.deque[tuple[Any, int]] = collections.deque()
        self._cond = threading.Condition()

    def put(self, item: Any, n: int, stop: threading.Event) -> bool:
        with self._cond:
            while self.held and self.held + n > self.limit and not stop.is_set():
                self._cond.wait(_POLL)
            if stop.is_set():
                return False
            self._items.append((item, n))
            self.held += n
            self._cond.notify_all()
            return True

    def get(self, stop: threading.Event) -> Any:
        with self._cond:
            while not self._items and not stop.is_set():
                self._cond.wait(_POLL)
            if stop.is_set():
                return None
            item, n = self._items.popleft()
            self.held -= n
            self._cond.notify_all()
            return item

    def release(self) -> None:
        """Drop the content and wake every waiter (after the stop event is set)."""
        with self._cond:
            self._items.clear()
            self.held = 0
            self._cond.notify_all()


class State:
    """What the reader threads share. It holds no reference to the ParallelReader, so that can be collected.

    Parameters
    ----------
    sources : list
        The expanded sources (paths, URLs, open iterables), in order.
    iterableargs, storage_options : dict
        How the readers open a source.
    chunk : int
        Records per chunk a reader hands over.
    buffer : int
        Records held between the readers and the consumer.
    ordered : bool
        One buffer per source, filled at most ``window`` sources ahead of the
        consumer; else one buffer shared by all.
    window : int
        Sources read at once.
    local : iterable of int
        The sources read by threads here (:meth:`next_local` hands them out).
    """

    def __init__(
        self,
        sources: list[Any],
        *,
        iterableargs: dict[str, Any],
        storage_options: dict[str, Any] | None,
        chunk: int,
        buffer: int,
        ordered: bool,
        window: int,
        local: Iterable[int] = (),
    ) -> None:
        self.stop = threading.Event()
        self.sources = sources
        self.iterableargs = iterableargs
        self.storage_options = storage_options
        self.chunk = chunk
        self.ordered = ordered
        self.window = window
        n = len(sources)
        if ordered:  # one buffer per source, at most `window` sources buffered at once
            self.buffers = [Buffer(max(chunk, buffer // window)) for _ in range(n)]
        else:
            self.buffers = [Buffer(buffer)] * n
        self.position = 0  # the source the consumer reads (ordered)
        self._admit = threading.Condition()
        self._lock = threading.Lock()
        self._local = iter(local)
        self.threads: list[threading.Thread] = []

    def next_local(self) -> int | None:
        with self._lock:
            return next(self._local, None)

    def admit(self, idx: int) -> bool:
        """Wait until source ``idx`` may fill its buffer (ordered: within ``window`` of the consumer)."""
        if self.ordered:
            with self._admit:
                while idx >= self.position + self.window and not self.stop.is_set():
                    self._admit.wait(_POLL)
        return not self.stop.is_set()

    def advance(self) -> None:
        with self._admit:
            self.position += 1
            self._admit.notify_all()

    def put(self, idx: int, kind: int, payload: Any, n: int = 0) -> bool:
        return self.buffers[idx].put((kind, idx, payload), n, self.stop)

    def shutdown(self) -> None:
        self.stop.set()
        with self._admit:
            self._admit.notify_all()
        for buffer in {id(b): b for b in self.buffers}.values():
            buffer.release()
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_TIMEOUT)
                if thread.is_alive():
                    logger.warning(
                        "parallel_read: reader thread %s did not stop within %ss", thread.name, _JOIN_TIMEOUT
                    )
