"""The engines under :class:`~iterable_dask.streams.read.ParallelReader`: who fills the buffers.

Reader threads (thread mode) read one source at a time here; one feeder
thread (process mode) submits partition tasks and hands their packed
results over. Both fill the bounded buffers of a :class:`~.state.State`
that the consumer drains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, islice
from typing import Any, NamedTuple

from iterable.base import BaseIterable
from iterable.helpers.detect import open_iterable

from ..core import config
from ..core.chunks import PackedChunk
from ..core.cluster import cluster_threads
from ..core.names import READ_SOURCE, task_key
from ..core.retry import Retrying
from ..core.runs import group_runs
from ..core.window import Done, InFlight
from ..io.fast_records import records_of
from ..io.fs import file_size, local_input
from ..io.partitions import WholeFile
from ..io.read import plan_sized
from .packed import ReadGroupPacked, ReadPacked
from .state import DATA, DONE, ERROR, State

__all__ = ["ClusterFeeder", "Tag", "read_source", "thread_main"]


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
    """Thread body of thread mode: read the sources :meth:`State.next_local` hands out, one at a time."""
    while not state.stop.is_set():
        idx = state.next_local()
        if idx is None:
            return
        read_source(state, idx)


@dataclass(frozen=True)
class Tag:
    """The sources a read task serves: a part of one source, or (``group``) several small whole files, a value each."""

    sources: tuple[int, ...]
    group: bool = False


class _Planned(NamedTuple):
    """A read task to submit, or an entry with no task: a source's planning ``error``, or nothing to read."""

    tag: Tag
    task: Any = None
    error: BaseException | None = None


class ClusterFeeder:
    """The feeder thread of process mode: plans the files' read tasks, keeps some in flight, hands their chunks over.

    The files are planned in source order with the one grouping of files into
    tasks (:func:`~iterable_dask.core.runs.group_runs`): small whole files
    share a task in balanced runs, a file larger than the blocksize is split
    by :func:`~iterable_dask.io.read.plan_sized` and each part is a task.
    The tasks go through the one in-flight window, taken back in source order
    when the reader is ordered; each one's packed chunks go to its sources'
    buffers.

    Attributes
    ----------
    remaining : dict of int to int
        Each planned source's parts not yet handed over; at 0 its DONE marker is put.
    failed : set of int
        Sources whose error was handed over: their parts still to come are cancelled or not submitted.
    window : InFlight
        The tasks in flight, each tagged with its :class:`Tag`.
    """

    def __init__(self, state: State, client: Any, indices: list[int], blocksize: int | str | None, job: str) -> None:
        self.state = state
        self.client = client
        self.indices = indices
        self.blocksize = config.resolve_blocksize(blocksize)
        self.target, self.open_cost = config.file_grouping(self.blocksize)  # a task's bytes, a file's opening
        self.threads = cluster_threads(client)
        self.job = job
        self.retries = config.resolve_retries()
        self.remaining: dict[int, int] = {}
        self.failed: set[int] = set()
        self.window = InFlight(client, ordered=state.ordered)
        self._keys = count()

    def run(self) -> None:
        """Thread body: submit while the window has room, hand over what it gives back, until done or stopped."""
        planned = self._plan()
        try:
            while not self.state.stop.is_set():
                while not self.window.full and (entry := next(planned, None)) is not None:
                    self._submit(entry)
                done = self._take()
                if done is None or not self._deliver(done):
                    return
        finally:
            planned.close()
            self.window.close()

    # --- planning ---------------------------------------------------------------------

    def _plan(self) -> Iterator[_Planned]:
        """The read tasks in source order: runs of small whole files, each other file's parts one task each."""
        sizes = self._sizes()
        weights = [self._weight(sizes.get(idx)) for idx in self.indices]
        for run in group_runs(self.indices, weights, self.target, self.threads):
            yield from self._run_tasks(run, sizes)

    def _sizes(self) -> dict[int, int]:
        """Each file's size, looked up once; a file whose lookup fails is planned alone (and fails there)."""
        sizes: dict[int, int] = {}
        if self.blocksize is not None:  # no blocksize: every file is one task, nothing to weigh
            for idx in self.indices:
                with contextlib.suppress(OSError, ValueError):
                    sizes[idx] = file_size(self.state.sources[idx], self.state.storage_options)
        return sizes

    def _weight(self, size: int | None) -> int | None:
        """A small file's weight in a run (its bytes and the cost of opening it); None: a task of its own."""
        if size is None or self.blocksize is None or size > self.blocksize:
            return None
        return size + self.open_cost

    def _run_tasks(self, run: list[int], sizes: dict[int, int]) -> Iterator[_Planned]:
        """One run's tasks: its small files read together, or one file's parts; a planning error is its own entry."""
        together: list[tuple[int, WholeFile]] = []
        for idx in run:
            try:
                parts = self._parts(idx, sizes.get(idx))
            except Exception as e:
                yield from self._read_together(together)
                together = []
                self.remaining[idx] = 1
                yield _Planned(Tag((idx,)), error=e)
                continue
            if len(run) > 1:  # a run of small files: one whole file each
                together.append((idx, parts[0]))
                continue
            if not parts:
                yield _Planned(Tag((idx,)))  # nothing to read: done when its turn comes
            for part in parts:
                if idx in self.failed:  # an earlier part failed: the rest is not read
                    break
                yield _Planned(Tag((idx,)), ReadPacked(part, self.state.chunk))
        yield from self._read_together(together)

    def _parts(self, idx: int, size: int | None) -> list[Any]:
        state = self.state
        parts, _ = plan_sized(state.sources[idx], self.blocksize, state.iterableargs, state.storage_options, size)
        self.remaining[idx] = max(1, len(parts))
        return parts

    def _read_together(self, files: list[tuple[int, WholeFile]]) -> Iterator[_Planned]:
        """Small whole files read in one task, their sources in order (one file alone: a plain part)."""
        if len(files) == 1:
            idx, reader = files[0]
            yield _Planned(Tag((idx,)), ReadPacked(reader, self.state.chunk))
        elif files:
            sources, readers = tuple(i for i, _ in files), tuple(r for _, r in files)
            yield _Planned(Tag(sources, group=True), ReadGroupPacked(readers, self.state.chunk))

    # --- the window ---------------------------------------------------------------------

    def _submit(self, planned: _Planned) -> None:
        if planned.task is None:
            self.window.add(tag=planned.tag, error=planned.error)
            return
        key = task_key(READ_SOURCE, self.job, next(self._keys))
        try:
            self.window.submit(Retrying(planned.task, self.retries), tag=planned.tag, key=key, pure=False)
        except Exception as e:  # a closed client (its scheduler lost): the sources' error, not a dead thread
            self.window.add(tag=planned.tag, error=e)

    def _take(self) -> Done | None:
        """The next finished task, None when all are done or the reader stopped.

        An error raised while waiting for a task (a lost scheduler) is that
        task's error: the consumer raises it when its sources' turn comes.
        """
        return self.window.take(stop=self.state.stop, raise_lost=False)

    def _deliver(self, done: Done) -> bool:
        """Hand a finished task's chunks (or its error) to its sources; False when the reader stopped."""
        tag = done.tag
        if not tag.group:
            return self._hand(tag.sources[0], done.error if done.error is not None else done.value or [])
        values = [done.error] * len(tag.sources) if done.error is not None else done.value
        return all(self._hand(idx, value) for idx, value in zip(tag.sources, values, strict=True))

    def _hand(self, idx: int, value: list[PackedChunk] | BaseException) -> bool:
        """One part of source ``idx``: its chunks, and DONE after the last part; or its error, the rest cancelled."""
        state = self.state
        if idx in self.failed:
            return True
        if not state.admit(idx):
            return False
        if isinstance(value, BaseException):
            self.failed.add(idx)
            self.window.cancel(keep=lambda tag: idx not in tag.sources)
            return state.put(idx, ERROR, value)
        for chunk in value:
            if not state.put(idx, DATA, chunk, len(chunk)):
                return False
        self.remaining[idx] -= 1
        return self.remaining[idx] > 0 or state.put(idx, DONE, None)
