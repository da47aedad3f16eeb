"""What a call does when its Dask scheduler goes away mid-run.

When the scheduler's connection closes, distributed's Client cancels every
future with the reason ``"scheduler-connection-lost"`` at once, then tries
to reconnect for its ``timeout`` (``iterable-dask.connect-timeout`` for the
clients iterable_dask connects) and closes. The waits of every entry point
run inside :func:`raise_if_lost`, which turns what surfaces then (a cancelled
future, a closed comm or client) into :class:`SchedulerLostError` naming the
address; cleanup steps that would need the scheduler (cancelling, asking the
workers what still runs) are skipped, so the call fails within a bounded time.

Workers notice too: they stop when their scheduler connection breaks (or at
their ``--death-timeout``), letting the task they run end. A task that writes
several files checks :func:`worker_stopping` between files, so at most the
file in progress is completed, always through its atomic rename.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from distributed.client import ClosedClientError
from distributed.comm.core import CommClosedError

from .exceptions import SchedulerLostError

__all__ = [
    "LOST_REASON",
    "cancel_quietly",
    "is_connected",
    "lost_error",
    "raise_if_lost",
    "scheduler_address",
    "scheduler_lost",
    "worker_stopping",
]

#: The reason distributed gives the futures it cancels when the scheduler connection closes.
LOST_REASON = "scheduler-connection-lost"
_LOST_STATES = frozenset({"connecting", "closing", "closed"})
_COMM_ERRORS = (CancelledError, CommClosedError, ClosedClientError, OSError)
#: How long a comm error may precede the client noticing its scheduler connection closed.
NOTICE_GRACE = 5.0


def is_connected(client: Any) -> bool:
    """Whether the client is connected to its scheduler right now."""
    return getattr(client, "status", "running") in ("running", "newly-created")


def scheduler_address(client: Any) -> str:
    """The scheduler address of ``client``, also after it lost the scheduler and closed."""
    with contextlib.suppress(Exception):
        return str(client.scheduler.address)
    start = getattr(client, "_start_arg", None)
    if isinstance(start, str):
        return start
    with contextlib.suppress(Exception):
        return str(client.cluster.scheduler_address)
    return "an unknown address"


def _lost_reason(error: BaseException) -> bool:
    if getattr(error, "reason", None) == LOST_REASON:  # FutureCancelledError
        return True
    groups = getattr(error, "error_groups", None) or ()  # FuturesCancelledError (gather)
    return any(getattr(group, "reason", None) == LOST_REASON for group in groups)


def _other_reason(error: BaseException) -> bool:
    """A cancellation that says why, and not because the scheduler was lost (a user's cancel, say)."""
    reason = getattr(error, "reason", None)
    if reason is not None:
        return reason != LOST_REASON
    groups = getattr(error, "error_groups", None) or ()
    return bool(groups) and all(getattr(g, "reason", None) not in (None, LOST_REASON) for g in groups)


def scheduler_lost(client: Any, error: BaseException) -> bool:
    """Whether ``error``, raised while waiting on ``client``, means that its scheduler was lost.

    A future cancelled for the reason ``"scheduler-connection-lost"``, or a
    cancellation, closed comm or closed client while the client reconnects or
    has closed (or starts to within ``NOTICE_GRACE`` seconds); the error's
    ``__cause__`` chain is searched too.
    """
    seen: set[int] = set()
    comm_error = closed_comm = False
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _lost_reason(current):
            return True
        comm_error = comm_error or isinstance(current, _COMM_ERRORS)
        closed_comm = closed_comm or isinstance(current, CommClosedError)
        closed_comm = closed_comm or (isinstance(current, CancelledError) and not _other_reason(current))
        current = current.__cause__
    # A task's own OSError (a missing file) or a cancellation with its reason is judged at
    # once; a closed comm or a cancellation without a reason gets the grace.
    return comm_error and _noticed_lost(client, NOTICE_GRACE if closed_comm else 0.0)


def _noticed_lost(client: Any, grace: float) -> bool:
    """Whether the client is (or within ``grace`` seconds becomes) disconnected from its scheduler.

    A gather from a dying cluster can fail with a closed comm a moment before
    the client's own scheduler stream reports the loss; the client notices a
    reset connection at once, so a short bounded wait tells the two apart.
    """
    deadline = time.monotonic() + grace
    while True:
        if getattr(client, "status", None) in _LOST_STATES:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def lost_error(client: Any, error: BaseException | None = None) -> SchedulerLostError:
    """A :class:`SchedulerLostError` naming the client's scheduler address."""
    address = scheduler_address(client)
    cause = f" ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})" if error else ""
    return SchedulerLostError(
        f"The Dask scheduler at {address!r} was lost during the run{cause}. Outputs already "
        "completed stay, each whole; this call's temporaries were removed. Check the scheduler and run again "
        "(resume=True skips completed conversions).",
        address=address,
    )


@contextlib.contextmanager
def raise_if_lost(client: Any) -> Iterator[None]:
    """Re-raise an error that means the scheduler was lost as :class:`SchedulerLostError`."""
    try:
        yield
    except SchedulerLostError:
        raise
    except Exception as e:
        if client is not None and scheduler_lost(client, e):
            raise lost_error(client, e) from e
        raise


def cancel_quietly(client: Any, futures: Iterable[Any]) -> None:
    """Cancel futures; nothing to do (and nothing raised) when the scheduler is gone."""
    futures = [f for f in futures if f is not None]
    if futures and is_connected(client):
        with contextlib.suppress(Exception):
            client.cancel(futures)


def worker_stopping() -> bool:
    """Whether the current task runs on a worker that is closing (its scheduler lost, its cluster shutting down).

    False outside a worker, and while a worker retires gracefully (its tasks finish normally).
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:
        return False
    return getattr(getattr(worker, "status", None), "name", "running") in ("closing", "closed", "failed")
