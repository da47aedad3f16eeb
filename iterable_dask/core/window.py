"""Bounded task windows: submit tasks from a lazy iterator, keep only a few in flight.

The design document's sketch submits every chunk before collecting any, so
the caller holds the whole input. :func:`windowed_results` keeps at most
``window`` tasks submitted but not yet handed to the consumer, whatever the
input's length, and cancels what is still running if the consumer stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from distributed import Client, as_completed

from .lost import cancel_quietly, raise_if_lost

__all__ = ["windowed_results"]


def windowed_results(
    client: Client,
    func: Any,
    items: Iterable[Any],
    *args: Any,
    window: int,
    key_prefix: str,
    retries: int = 0,
    ordered: bool = True,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` of ``func(item, *args)`` for each item, computed on ``client``.

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
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    source = iter(items)
    futures: dict[Any, int] = {}
    done: dict[int, Any] = {}
    pending = as_completed(loop=client.loop)
    submitted = yielded = 0
    exhausted = False
    try:
        while True:
            while not exhausted and submitted - yielded < window:
                item = next(source, _END)
                if item is _END:
                    exhausted = True
                    break
                with raise_if_lost(client):  # a closed client refuses new tasks
                    future = client.submit(func, item, *args, key=(key_prefix, submitted), retries=retries)
                futures[future] = submitted
                pending.add(future)
                submitted += 1
            if not futures and not done:
                return
            future = next(pending)
            index = futures.pop(future)
            if not ordered:
                yielded += 1
                yield index, _take(client, future)
                continue
            done[index] = future  # an error waits for its turn too: the first failure in input order wins
            while yielded in done:
                yielded += 1
                yield yielded - 1, _take(client, done.pop(yielded - 1))
    finally:
        cancel_quietly(client, [*futures, *done.values()])


def _take(client: Client, future: Any) -> Any:
    """A finished future's result (or its exception, raised), releasing it either way."""
    try:
        with raise_if_lost(client):
            return future.result()
    finally:
        future.release()


_END = object()
