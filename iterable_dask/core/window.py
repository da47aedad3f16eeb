"""The one in-flight window: every place that submits work keeps a bounded number of tasks in flight through it.

The design document's sketch submits every chunk before collecting any, so
the caller holds the whole input. :class:`InFlight` holds at most ``limit``
tasks submitted and not yet taken, hands them back in submission order or as
they finish, and on close cancels what is still pending (and, when asked,
waits until running tasks of a key prefix have stopped, so that a sweep of
temporaries after it finds nothing still being written). It takes Dask
futures and :mod:`concurrent.futures` futures alike, so a thread pool and a
cluster are driven by the same loop. :func:`windowed_results` is the window
over a lazy iterator of task inputs.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from distributed import Future

from . import config
from .cluster import cluster_threads
from .exceptions import SchedulerLostError
from .lost import cancel_quietly, is_connected, raise_if_lost

__all__ = ["Done", "InFlight", "in_flight_limit", "wait_until_stopped", "windowed_results"]

logger = logging.getLogger(__name__)

#: Seconds one wait for a finished task lasts before the stop event is looked at again.
_POLL = 0.05


def in_flight_limit(client: Any) -> int:
    """Tasks in flight for ``client``: ``iterable-dask.in-flight-per-worker`` per worker thread, at least 2."""
    return max(2, cluster_threads(client) * int(config.get("in-flight-per-worker")))


@dataclass
class Done:
    """A task taken from the window: its ``tag``, and its ``value`` or the ``error`` it raised."""

    tag: Any
    value: Any = None
    error: BaseException | None = None


@dataclass
class _Entry:
    tag: Any
    future: Any = None  # a distributed or concurrent.futures future; None: an entry with no task
    error: BaseException | None = None

    def ready(self) -> bool:
        return self.future is None or self.future.done()


class InFlight:
    """At most ``limit`` tasks submitted and not yet taken, taken in order or as they finish.

    Parameters
    ----------
    client : distributed.Client or None
        Where :meth:`submit` runs tasks; None for a window of
        :mod:`concurrent.futures` futures (:meth:`add`).
    limit : int, optional
        Most entries held; by default :func:`in_flight_limit`.
    ordered : bool
        :meth:`take` hands entries back in the order they were added (one that
        finishes early waits for its turn), else as they finish.
    stop_prefix : str, optional
        On :meth:`close` after a cancellation, wait until no task whose key
        starts with this is still running (a running task is not stopped by a
        cancel; its outputs must be finished before temporaries are swept).

    Examples
    --------
    >>> from iterable_dask import local_cluster
    >>> with local_cluster(workers=2, mode="thread", dashboard_address=None) as client:
    ...     with InFlight(client, limit=2) as window:
    ...         taken = []
    ...         for x in [-1, -2, -3]:
    ...             if window.full:
    ...                 taken.append(window.take().value)
    ...             _ = window.submit(abs, x, tag=x)
    ...         while window:
    ...             taken.append(window.take().value)
    >>> taken
    [1, 2, 3]
    """

    def __init__(
        self, client: Any, limit: int | None = None, *, ordered: bool = True, stop_prefix: str | None = None
    ) -> None:
        self.client = client
        self.limit = in_flight_limit(client) if limit is None else limit
        if self.limit < 1:
            raise ValueError(f"window must be >= 1, got {self.limit}")
        self.ordered = ordered
        self.stop_prefix = stop_prefix
        self._entries: collections.deque[_Entry] = collections.deque()
        self._cancelled = False
        self._signal = threading.Event()  # set by a future's done callback

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        """Whether the window holds ``limit`` entries: take one before adding another."""
        return len(self._entries) >= self.limit

    def submit(self, func: Callable[..., Any], *args: Any, tag: Any = None, **kwargs: Any) -> Any:
        """``client.submit(func, *args, **kwargs)`` held in the window; a lost scheduler raises at once."""
        with raise_if_lost(self.client):  # a closed client refuses new tasks
            future = self.client.submit(func, *args, **kwargs)
        self._hold(_Entry(tag, future))
        return future

    def add(self, future: Any = None, tag: Any = None, error: BaseException | None = None) -> None:
        """Hold a future submitted elsewhere (a thread pool's), or an entry with no task: ``error`` or nothing."""
        self._hold(_Entry(tag, future, error))

    def _hold(self, entry: _Entry) -> None:
        self._entries.append(entry)
        if entry.future is not None:
            entry.future.add_done_callback(self._finished)

    def _finished(self, future: Any) -> None:
        self._signal.set()

    def tags(self) -> list[Any]:
        """The tags of the entries held, in the order they were added."""
        return [entry.tag for entry in self._entries]

    def take(self, stop: threading.Event | None = None, *, raise_lost: bool = True) -> Done | None:
        """The next entry with its value or error, waiting for it; None when empty or when ``stop`` is set.

        The future is released as it is taken. A lost scheduler raises
        :class:`~iterable_dask.SchedulerLostError` (with ``raise_lost=False``
        it is the taken entry's ``error``, for a consumer that reports errors
        per entry); a task's own error is the :class:`Done`'s ``error``.
        """
        while self._entries:
            entry = self._ready()
            if entry is not None:
                self._entries.remove(entry)
                return self._done(entry, raise_lost)
            if stop is not None and stop.is_set():
                return None
            self._signal.clear()
            if self._ready() is None:  # not finished since the clear: wait for a done callback
                self._wait(_POLL if stop is not None else None)
        return None

    def cancel(self, keep: Callable[[Any], bool] | None = None) -> None:
        """Cancel the entries held (those whose tag ``keep`` rejects), and drop them."""
        kept: collections.deque[_Entry] = collections.deque()
        dropped: list[_Entry] = []
        for entry in self._entries:
            (kept if keep is not None and keep(entry.tag) else dropped).append(entry)
        self._entries = kept
        futures = [e.future for e in dropped if e.future is not None]
        self._cancel(futures)

    def close(self) -> None:
        """Cancel what is still held; with ``stop_prefix``, wait for tasks already running to stop."""
        if self._entries:
            self.cancel()
        if self._cancelled and self.stop_prefix is not None and self.client is not None:
            wait_until_stopped(self.client, self.stop_prefix)

    def __enter__(self) -> InFlight:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _ready(self) -> _Entry | None:
        if self.ordered:
            return self._entries[0] if self._entries[0].ready() else None
        return next((e for e in self._entries if e.ready()), None)

    def _wait(self, timeout: float | None) -> None:
        """Until an entry may have finished (a done callback fired), or ``timeout`` seconds."""
        self._signal.wait(_POLL * 10 if timeout is None else timeout)
        self._signal.clear()

    def _done(self, entry: _Entry, raise_lost: bool = True) -> Done:
        if entry.future is None:
            return Done(entry.tag, None, entry.error)
        future, entry.future = entry.future, None
        try:
            with raise_if_lost(self.client):
                return Done(entry.tag, future.result())
        except (Exception, asyncio.CancelledError) as e:  # a cancelled task's, too
            if isinstance(e, SchedulerLostError) and raise_lost:  # raised by raise_if_lost: the run's error
                raise
            return Done(entry.tag, None, e)
        finally:
            if isinstance(future, Future):
                future.release()

    def _cancel(self, futures: list[Any]) -> None:
        if not futures:
            return
        self._cancelled = True
        dask_futures = [f for f in futures if isinstance(f, Future)]
        cancel_quietly(self.client, dask_futures)
        for f in futures:
            if not isinstance(f, Future):
                f.cancel()


def windowed_results(
    client: Any,
    func: Any,
    items: Iterable[Any],
    *args: Any,
    window: int,
    key_prefix: str,
    retries: int = 0,
    ordered: bool = True,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` of ``func(item, *args)`` for each item, computed on ``client`` (an :class:`InFlight`).

    Parameters
    ----------
    client : distributed.Client
    func : callable
        Picklable task function.
    items : iterable
        Task inputs, consumed lazily (only when the window has room).
    *args
        Further task arguments (futures of scattered data are fine).
    window : int
        Most tasks submitted and not yet yielded.
    key_prefix : str
        Task keys are ``(key_prefix, index)``: the dashboard groups them by prefix.
    retries : int
        Retries of a failed task.
    ordered : bool
        Yield in input order (results that finish early wait, within the window;
        a failure is raised when its turn comes, so the first failure in input
        order is the one raised) or as tasks complete.

    Raises
    ------
    SchedulerLostError
        The scheduler went away: raised as soon as the client notices.
    Exception
        A task's exception, re-raised with the worker's traceback; the tasks
        still in flight are cancelled.

    Examples
    --------
    >>> from iterable_dask import local_cluster
    >>> with local_cluster(workers=2, mode="thread", dashboard_address=None) as client:
    ...     list(windowed_results(client, abs, [-1, -2, -3], window=2, key_prefix="abs-demo"))
    [(0, 1), (1, 2), (2, 3)]
    """
    source = enumerate(items)
    with InFlight(client, window, ordered=ordered) as flight:
        while True:
            while not flight.full and (item := next(source, None)) is not None:  # pulled only when there is room
                index, value = item
                flight.submit(func, value, *args, tag=index, key=(key_prefix, index), retries=retries)
            if not flight:
                return
            yield _value(flight.take())


def _value(done: Done | None) -> tuple[int, Any]:
    assert done is not None  # the window was not empty and no stop event was given
    if done.error is not None:
        raise done.error
    return done.tag, done.value


def _executing(prefix: str, dask_worker: Any = None) -> list[str]:
    names = (str(key) for key, ts in dask_worker.state.tasks.items() if ts.state in _RUNNING)
    return [name for name in names if prefix in name]


_RUNNING = frozenset({"executing", "long-running", "cancelled", "resumed"})


def wait_until_stopped(client: Any, prefix: str, timeout: float = 60.0) -> bool:
    """Wait until no worker still runs a task whose key holds ``prefix``; whether that happened in time.

    Cancelling a future does not stop a task a worker already runs: its
    side effects (a temporary file) may still appear. Sweep after this.
    Without a scheduler there is no one to ask: False at once.
    """
    if not is_connected(client):
        return False
    deadline = time.monotonic() + timeout
    while True:
        try:
            running = [k for keys in client.run(_executing, prefix).values() for k in keys]
        except Exception:  # a worker gone: nothing of ours runs there any more
            return True
        if not running:
            return True
        if time.monotonic() > deadline:
            logger.warning("tasks %s still run after %ss; their temporaries may stay", running[:3], timeout)
            return False
        time.sleep(0.05)
