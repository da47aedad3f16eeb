"""The engines under :class:`~iterable_dask.streams.read.ParallelReader`: who fills the buffers.

Reader threads (thread mode) read one source at a time here; one feeder
thread (process mode) submits partition tasks and hands their packed
results over. Both fill the bounded buffers of a :class:`~.state.State`
that the consumer drains.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator
from itertools import count, islice
from typing import Any

from iterable.base import BaseIterable
from iterable.helpers.detect import open_iterable

from ..core import config
from ..core.lost import cancel_quietly
from ..core.names import READ_SOURCE, task_key
from ..core.retry import Retrying
from ..core.runs import TASKS_PER_THREAD, run_count, run_ids
from ..io.fs import file_size, local_input
from ..io.read import plan_sized
from ..io.readers import WholeFile
from ..io.records import records_of
from .packed import ReadGroupPacked, ReadPacked
from .state import DATA, DONE, ERROR, State

__all__ = ["cluster_main", "read_source", "thread_main"]


def read_source(state: State, idx: int) -> None:
    """Thread body for one source: chunks of records, then a DONE or ERROR marker."""
    source = state.sources[idx]
    owned = not isinstance(source, BaseIterable)
    it = None
    chunk: list[Any] = []
    stack = contextlib.ExitStack()  # a URL's local copy, removed when the source is done
    try:
        if not state.admit(idx):
            return
        if owned:
            local = stack.enter_context(local_input(source, state.storage_options))

            def reopen() -> Any:
                return open_iterable(local, iterableargs=dict(state.iterableargs))

            it = reopen()
            records = stack.enter_context(contextlib.closing(records_of(it, reopen)))
        else:
            it = source
            records = iter(it)
        size = state.chunk
        while not state.stop.is_set():
            chunk = []
            append = chunk.append
            for record in islice(records, size):
                append(record)
            if chunk and not state.put(idx, DATA, chunk, len(chunk)):
                return
            if len(chunk) < size:
                chunk = []
                state.put(idx, DONE, None)
                return
    except Exception as e:
        # The records read before the failure go first, as a sequential read yields them.
        if not chunk or state.put(idx, DATA, chunk, len(chunk)):
            state.put(idx, ERROR, e)
    finally:
        if owned and it is not None:
            with contextlib.suppress(Exception):
                it.close()
        stack.close()


def thread_main(state: State) -> None:
    while not state.stop.is_set():
        idx = state.next_local()
        if idx is None:
            return
        read_source(state, idx)


def cluster_main(state: State, client: Any, indices: list[int], blocksize: Any, in_flight: int, job: str) -> None:
    """Feeder thread of process mode: submit partition tasks (bounded), deliver their packed results."""
    retries = config.resolve_retries()
    counts: dict[int, int] = {}
    failed: set[int] = set()
    pending: collections.deque[list[Any]] = collections.deque()  # [idx, future or None, error or None]
    keys = count()

    limit = config.resolve_blocksize(blocksize)
    target, open_cost = config.file_grouping()
    if config.get("files.target-bytes") == "default" and limit is not None:
        target = limit
    sizes: dict[int, int] = {}
    for idx in indices:  # at least TASKS_PER_THREAD tasks per thread: a few big gzip files stay apart
        with contextlib.suppress(OSError, ValueError):
            sizes[idx] = file_size(state.sources[idx], state.storage_options)
    weights = [size + open_cost for size in sizes.values()]
    threads = max(1, sum(client.nthreads().values()))
    runs = run_count(sum(weights), target, len(weights), threads * TASKS_PER_THREAD)
    run_of = dict(zip(sizes, run_ids(weights, runs, target), strict=True))  # balanced runs of small files
    group: list[tuple[int, WholeFile]] = []

    def submit(idx: Any, task: Any) -> list[Any]:
        key = task_key(READ_SOURCE, job, next(keys))
        try:
            return [idx, client.submit(Retrying(task, retries), key=key, pure=False), None]
        except Exception as e:  # a closed client (its scheduler lost): the source's error, not a dead thread
            return [idx, None, e]

    def close_group() -> list[Any]:
        """Small whole files read in one task (their sources stay in order)."""
        idxs, readers = [i for i, _ in group], tuple(r for _, r in group)
        group.clear()
        if len(idxs) == 1:
            return submit(idxs[0], ReadPacked(readers[0], state.chunk))
        return submit(idxs, ReadGroupPacked(readers, state.chunk))

    def plan() -> Iterator[list[Any]]:
        current = None
        for idx in indices:
            try:
                source, so = state.sources[idx], state.storage_options
                parts, _ = plan_sized(source, limit, state.iterableargs, so, sizes.get(idx))
            except Exception as e:
                if group:
                    yield close_group()
                counts[idx] = 1
                yield [idx, None, e]
                continue
            counts[idx] = len(parts)
            if limit is not None and idx in run_of and len(parts) == 1 and type(parts[0]) is WholeFile:
                if group and run_of[idx] != current:
                    yield close_group()
                current = run_of[idx]
                group.append((idx, parts[0]))
                continue
            if group:
                yield close_group()
            if not parts:
                yield [idx, None, None]
            for part in parts:
                if idx in failed:
                    break
                yield submit(idx, ReadPacked(part, state.chunk))
        if group:
            yield close_group()

    def deliver_group(entry: list[Any]) -> bool:
        idxs, future, error = entry
        try:
            if error is not None:
                raise error
            values = future.result()
        except (Exception, asyncio.CancelledError) as e:
            values = [e] * len(idxs)
        entry[1] = future = None  # release the result on the cluster
        for idx, value in zip(idxs, values, strict=True):
            if not state.admit(idx):
                return False
            if isinstance(value, BaseException):
                failed.add(idx)
                if not state.put(idx, ERROR, value):
                    return False
                continue
            for chunk in value:
                if not state.put(idx, DATA, chunk, len(chunk)):
                    return False
            counts[idx] -= 1
            if counts[idx] == 0 and not state.put(idx, DONE, None):
                return False
        return True

    def deliver(entry: list[Any]) -> bool:
        idx, future, error = entry
        if isinstance(idx, list):
            return deliver_group(entry)
        if idx in failed:
            return True
        if not state.admit(idx):
            return False
        if future is not None:
            try:
                chunks = future.result()
            except (Exception, asyncio.CancelledError) as e:
                error = e
        if error is not None:
            failed.add(idx)
            cancel_quietly(client, [e[1] for e in pending if e[0] == idx])
            return state.put(idx, ERROR, error)
        if future is not None:
            entry[1] = future = None  # release the result on the cluster before waiting for room
            for chunk in chunks:
                if not state.put(idx, DATA, chunk, len(chunk)):
                    return False
            counts[idx] -= 1
        return counts[idx] > 0 or state.put(idx, DONE, None)

    planned = plan()

    try:
        while not state.stop.is_set():
            while len(pending) < in_flight and (entry := next(planned, None)) is not None:
                pending.append(entry)
            if not pending:
                return
            if state.ordered:
                ready = [pending[0]] if pending[0][1] is None or pending[0][1].done() else []
            else:
                ready = [e for e in pending if e[1] is None or e[1].done()]
            if not ready:
                state.stop.wait(0.005)
                continue
            for entry in ready:
                pending.remove(entry)
                if not deliver(entry):
                    return
    finally:
        planned.close()
        futures = [e[1] for e in pending if e[1] is not None]
        pending.clear()
        cancel_quietly(client, futures)
