"""parallel_read: the records of many sources, read in parallel through a bounded buffer.

Thread mode (the default) reads each source in its own thread, at most
``workers`` at once. Process mode (``client=``, ``scheduler=`` or
``mode="process"``) reads the sources' partitions (see
:func:`iterable_dask.plan_partitions`) on Dask workers, each arriving as one
packed blob, with a bounded number of tasks in flight. Either way the records
cross a buffer of ``buffer`` records to the consumer: a slow consumer stalls
the readers instead of filling memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import pickle
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import count, islice, repeat
from typing import Any

from iterable.base import BaseIterable
from iterable.helpers.detect import open_iterable

from . import config
from .atomic import new_job_token
from .chunks import PackedChunk, gc_paused, pack, unpack
from .cluster import get_client
from .exceptions import PartitionReadError, SourceReadError
from .read import plan_partitions
from .readers import WholeFile
from .sources import expand_sources, source_name

__all__ = ["ParallelReader", "ReadPacked", "pack_tree", "parallel_read"]

logger = logging.getLogger(__name__)

_DATA, _DONE, _ERROR = 0, 1, 2
_POLL = 0.1  # seconds between checks of the stop event by a blocked thread
_JOIN_TIMEOUT = 30.0
_END = object()


def pack_tree(records: list[Any]) -> PackedChunk:
    """:func:`~iterable_dask.chunks.pack` for records that are trees (no shared or cyclic parts).

    Pickles without the memo (``Pickler.fast``), about 9 times faster on
    parsed records (whose every key and value is a distinct object); the blob
    unpacks as usual. Falls back to :func:`pack` when a record is cyclic.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True  # no memo: shared objects are written twice, cycles raise ValueError
    try:
        pickler.dump(records)
    except (ValueError, RecursionError):
        return pack(records)
    return PackedChunk(buffer.getvalue(), len(records))


def _whole_file_chunks(reader: WholeFile, size: int) -> list[PackedChunk]:
    """:class:`WholeFile`'s records, packed ``size`` at a time while reading (no list of every record).

    A failure is a :class:`PartitionReadError` holding the original's type and
    message but not the original itself, which might not unpickle in the caller.
    """
    it = None
    chunks: list[PackedChunk] = []
    try:
        it = open_iterable(reader.path, iterableargs=dict(reader.iterableargs))
        records = iter(it)
        while True:
            with gc_paused:  # parsed records hold no cycles: no collections while building a chunk
                chunk = list(islice(records, size))
                if not chunk:
                    return chunks
                chunks.append(pack_tree(chunk))
    except Exception as e:
        pos = getattr(it, "pos", None)
        where = f" after record {pos}" if pos else ""
        error = PartitionReadError(
            f"Failed to read {reader.path!r}{where}: {type(e).__name__}: {e}", filename=reader.path
        )
    finally:
        if it is not None:
            with contextlib.suppress(Exception):
                it.close()
    raise error  # outside the except block: no cause or context crosses the wire


@dataclass(frozen=True)
class ReadPacked:
    """Worker task: read one partition, return its records as packed chunks of ``chunk_size``.

    Small chunks keep both sides fast: the worker never holds every record
    of a whole file at once, and the caller rebuilds one chunk at a time
    (rebuilding a million records in one piece costs several times more,
    mostly in the garbage collector).
    """

    reader: Any
    chunk_size: int = 1000

    def __call__(self) -> list[PackedChunk]:
        size = self.chunk_size
        if type(self.reader) is WholeFile:
            return _whole_file_chunks(self.reader, size)
        records = self.reader()
        return [pack_tree(records[i : i + size]) for i in range(0, len(records), size)]


class _Buffer:
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


class _State:
    """What the reader threads share. It holds no reference to the ParallelReader, so that can be collected."""

    def __init__(self, reader: ParallelReader, window: int) -> None:
        self.stop = threading.Event()
        self.sources = reader._sources
        self.iterableargs = reader._iterableargs
        self.chunk = reader.chunk_size
        self.ordered = reader.ordered
        self.window = window
        n = len(self.sources)
        if self.ordered:  # one buffer per source, at most `window` sources buffered at once
            self.buffers = [_Buffer(max(self.chunk, reader.buffer // window)) for _ in range(n)]
        else:
            self.buffers = [_Buffer(reader.buffer)] * n
        self.position = 0  # the source the consumer reads (ordered)
        self._admit = threading.Condition()
        self._lock = threading.Lock()
        self._local: Iterator[int] = iter(())
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


def _read_source(state: _State, idx: int) -> None:
    """Thread body for one source: chunks of records, then a DONE or ERROR marker."""
    source = state.sources[idx]
    owned = not isinstance(source, BaseIterable)
    it = None
    chunk: list[Any] = []
    try:
        if not state.admit(idx):
            return
        it = open_iterable(source, iterableargs=dict(state.iterableargs)) if owned else source
        records = iter(it)
        size = state.chunk
        while not state.stop.is_set():
            chunk = []
            append = chunk.append
            for record in islice(records, size):
                append(record)
            if chunk and not state.put(idx, _DATA, chunk, len(chunk)):
                return
            if len(chunk) < size:
                chunk = []
                state.put(idx, _DONE, None)
                return
    except Exception as e:
        # The records read before the failure go first, as a sequential read yields them.
        if not chunk or state.put(idx, _DATA, chunk, len(chunk)):
            state.put(idx, _ERROR, e)
    finally:
        if owned and it is not None:
            with contextlib.suppress(Exception):
                it.close()


def _thread_main(state: _State) -> None:
    while not state.stop.is_set():
        idx = state.next_local()
        if idx is None:
            return
        _read_source(state, idx)


def _cluster_main(state: _State, client: Any, indices: list[int], blocksize: Any, in_flight: int, job: str) -> None:
    """Feeder thread of process mode: submit partition tasks (bounded), deliver their packed results."""
    retries = config.resolve_retries()
    counts: dict[int, int] = {}
    failed: set[int] = set()
    pending: collections.deque[list[Any]] = collections.deque()  # [idx, future or None, error or None]
    keys = count()

    def plan() -> Iterator[list[Any]]:
        for idx in indices:
            try:
                parts = plan_partitions(state.sources[idx], blocksize, state.chunk, **state.iterableargs)
            except Exception as e:
                counts[idx] = 1
                yield [idx, None, e]
                continue
            counts[idx] = len(parts)
            if not parts:
                yield [idx, None, None]
            for part in parts:
                if idx in failed:
                    break
                key = f"parallel-read-{job}-{next(keys)}"
                task = ReadPacked(part, state.chunk)
                yield [idx, client.submit(task, key=key, retries=retries, pure=False), None]

    def deliver(entry: list[Any]) -> bool:
        idx, future, error = entry
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
            client.cancel([e[1] for e in pending if e[0] == idx and e[1] is not None])
            return state.put(idx, _ERROR, error)
        if future is not None:
            entry[1] = future = None  # release the result on the cluster before waiting for room
            for chunk in chunks:
                if not state.put(idx, _DATA, chunk, len(chunk)):
                    return False
            counts[idx] -= 1
        return counts[idx] > 0 or state.put(idx, _DONE, None)

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
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(futures)


class ParallelReader:
    """Iterator over the records of several sources read in parallel; see :func:`parallel_read`.

    Attributes
    ----------
    sources : list of str
        The names of the expanded sources, in order.
    failed_sources : list of (str, BaseException)
        Sources that failed and were skipped (``on_error="skip"``).
    mode : {"thread", "process"}
    """

    def __init__(
        self,
        sources: Any,
        *,
        workers: int | None = None,
        ordered: bool = False,
        with_source: bool = False,
        buffer: int | None = None,
        chunk_size: int | None = None,
        on_error: str = "raise",
        mode: str | None = None,
        client: Any = None,
        scheduler: str | None = None,
        blocksize: int | str | None = "default",
        iterableargs: dict[str, Any] | None = None,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
        if mode not in (None, "auto", "thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process'; got {mode!r}")
        if mode == "thread" and (client is not None or scheduler is not None):
            raise ValueError("mode='thread' reads in this process: do not pass client= or scheduler=")
        self._sources = expand_sources(sources)
        self.sources = [source_name(s) for s in self._sources]
        self.ordered = bool(ordered)
        self.with_source = bool(with_source)
        self.buffer = config._positive_int(config.get("read-buffer") if buffer is None else buffer, "buffer")
        self.chunk_size = min(config.resolve_chunk_size(chunk_size), self.buffer)
        self.on_error = on_error
        self.failed_sources: list[tuple[str, BaseException]] = []
        self._iterableargs = dict(iterableargs or {})
        self._blocksize = blocksize
        mode = config.resolve_parallel_mode(None) if mode is None else mode  # "auto": thread, unless a cluster is given
        self.mode = "process" if mode == "process" or client is not None or scheduler is not None else "thread"
        self._client = get_client(client, scheduler, workers=workers) if self.mode == "process" else None
        self._workers = workers
        self._state: _State | None = None
        self._finalizer: weakref.finalize | None = None
        self._pending: Iterator[Any] = iter(())
        self._finished = 0
        self._closed = False

    def _start(self) -> None:
        local = list(range(len(self._sources)))
        files: list[int] = []
        if self.mode == "process":
            files = [i for i, s in enumerate(self._sources) if not isinstance(s, BaseIterable)]
            local = [i for i, s in enumerate(self._sources) if isinstance(s, BaseIterable)]
            nthreads = max(1, sum(self._client.nthreads().values()))
            in_flight = max(1, config.get("in-flight-per-worker", 2) * nthreads)
            window = config.resolve_workers(self._workers) if self._workers else nthreads
        else:
            window = min(config.resolve_workers(self._workers), len(local))
        state = self._state = _State(self, window)
        state._local = iter(local)
        self._finalizer = weakref.finalize(self, state.shutdown)
        for i in range(min(window, len(local))):
            state.threads.append(threading.Thread(target=_thread_main, args=(state,), name=f"parallel-read-{i}"))
        if files:
            args = (state, self._client, files, self._blocksize, in_flight, new_job_token())
            state.threads.append(threading.Thread(target=_cluster_main, args=args, name="parallel-read-cluster"))
        for thread in state.threads:
            thread.daemon = True
            thread.start()

    def _next_chunk(self) -> Iterable[Any] | None:
        """The next non-empty chunk of records (or pairs), or None at the end."""
        if self._closed:
            return None
        if self._state is None:
            self._start()
        state = self._state
        assert state is not None
        n = len(self._sources)
        while self._finished < n:
            item = state.buffers[self._finished if self.ordered else 0].get(state.stop)
            if item is None:  # closed from elsewhere (another thread, the finalizer)
                return None
            kind, idx, payload = item
            if kind == _DATA:
                records = unpack(payload)
                if records:
                    return zip(repeat(self.sources[idx]), records) if self.with_source else records
                continue
            if kind == _ERROR:
                self._source_failed(idx, payload)
            self._finished += 1
            if self.ordered:
                state.advance()
        self.close()
        return None

    def _source_failed(self, idx: int, error: BaseException) -> None:
        name = self.sources[idx]
        if self.on_error == "skip":
            logger.warning("parallel_read: skipping source %s: %s: %s", name, type(error).__name__, error)
            self.failed_sources.append((name, error))
            return
        self.close()
        raise SourceReadError(
            f"Failed to read source {name!r}: {type(error).__name__}: {error}", source=name
        ) from error

    def __next__(self) -> Any:
        while True:
            record = next(self._pending, _END)
            if record is not _END:
                return record
            chunk = self._next_chunk()
            if chunk is None:
                raise StopIteration
            self._pending = iter(chunk)

    def __iter__(self) -> Iterator[Any]:
        """A generator over the remaining records; leaving it early (``break``) closes the reader."""
        return self._generate()

    def _generate(self) -> Iterator[Any]:
        try:
            while True:
                yield from self._pending
                chunk = self._next_chunk()
                if chunk is None:
                    return
                self._pending = iter(chunk)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the readers, join their threads, close the files they opened, cancel tasks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending = iter(())
        if self._finalizer is not None:
            self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ParallelReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ParallelReader {self.mode} mode, {len(self.sources)} sources, {state}>"


def parallel_read(
    sources: Any,
    workers: int | None = None,
    ordered: bool = False,
    with_source: bool = False,
    buffer: int | None = None,
    *,
    chunk_size: int | None = None,
    on_error: str = "raise",
    mode: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    blocksize: int | str | None = "default",
    **iterableargs: Any,
) -> ParallelReader:
    """Read the records of several sources in parallel, with bounded memory.

    Which mode: threads overlap waiting (network storage, databases, slow
    disks: 8 sources that wait read 7x faster with 8 threads) but not
    parsing, which holds the GIL; for local files that are parsed (JSON,
    CSV) thread mode is slower than a plain loop. Process mode parses on
    Dask workers; on 2 cores it roughly matches a sequential read of gzip
    JSON Lines (rebuilding the records here costs about a third of parsing
    them), so use it with more cores or costlier formats
    (``benchmarks/bench_parallel_read.py``).

    Parameters
    ----------
    sources : str, PathLike, BaseIterable, or list of these
        Paths, globs, directories (see :func:`iterable_dask.expand_sources`) and
        open iterabledata iterables (read, not closed; files the reader opens
        itself are always closed).
    workers : int, optional
        Sources read at once (default ``iterable-dask.workers``, else the CPU
        count, at most one per source); in process mode, the size of an
        embedded cluster.
    ordered : bool
        ``False`` yields records as they arrive; ``True`` yields all of source
        1 in file order, then source 2 ..., still reading ``workers`` sources ahead.
    with_source : bool
        Yield ``(source name, record)`` pairs.
    buffer : int, optional
        Records held between the readers and the consumer (default
        ``iterable-dask.read-buffer``). Records move in chunks of ``chunk_size``
        (default ``iterable-dask.chunk-size``, at most ``buffer``) and each
        thread also holds the chunk it fills, so at most ``buffer + workers *
        chunk_size`` records are read ahead of the consumer. In process mode
        the buffered chunks stay packed until consumed; besides, the packed
        chunks of one partition (see ``blocksize``) wait here, and at most
        ``iterable-dask.in-flight-per-worker`` partitions per worker thread are
        read ahead on the cluster.
    on_error : {"raise", "skip"}
        ``"raise"``: a failing source stops every reader and raises
        :class:`SourceReadError` naming it. ``"skip"``: log a warning, record it
        in ``reader.failed_sources``, go on. Records a source gave before failing
        have been yielded (in process mode, none of a failing partition's).
    mode : {"thread", "process", "auto"}, optional
        Default ``iterable-dask.parallel-mode``; ``"auto"`` is ``"process"``
        when ``client`` or ``scheduler`` is given, else ``"thread"``. Process
        mode reads files on Dask workers (see :func:`iterable_dask.get_client`);
        open iterables are still read in threads here.
    client, scheduler, blocksize : optional
        Process mode: the cluster, and the partition size of large plain files
        (see :func:`iterable_dask.read_bag`).
    **iterableargs
        Passed to ``open_iterable(path, iterableargs=...)`` (``on_error`` is
        this function's own argument, not iterabledata's).

    Returns
    -------
    ParallelReader
        An iterator and context manager. Breaking out of a ``for`` loop over it,
        leaving its ``with`` block or ``close()`` stops the readers, joins their
        threads and closes their files: a ``for`` loop is one pass (read
        piecewise with ``next(reader)``).

    Raises
    ------
    SourceReadError
        While iterating, when a source fails (``on_error="raise"``); the
        original error is its ``__cause__``.
    FileNotFoundError
        A path does not exist or a glob matches nothing.

    See Also
    --------
    read_bag, parallel_write

    Examples
    --------
    >>> from iterable_dask import parallel_read
    >>> with parallel_read(["a.csv", "b.jsonl.gz", "c.parquet"], workers=3) as reader:  # doctest: +SKIP
    ...     for record in reader:
    ...         process(record)
    >>> for name, record in parallel_read("logs/*.jsonl.gz", ordered=True, with_source=True):  # doctest: +SKIP
    ...     print(name, record)
    """
    options = dict(workers=workers, ordered=ordered, with_source=with_source, buffer=buffer, chunk_size=chunk_size)
    options.update(on_error=on_error, mode=mode, client=client, scheduler=scheduler, blocksize=blocksize)
    return ParallelReader(sources, iterableargs=iterableargs, **options)
