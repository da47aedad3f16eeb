"""Caller side of a parallel conversion: submit the tasks, follow them, collect results in order.

Tasks are :func:`dask.delayed` calls of the picklable callables of
:mod:`iterable_dask.conversion.tasks` and :mod:`iterable_dask.conversion.parts`,
keyed ``iterable-convert[-keys|-part|-join]-<token>`` (:mod:`iterable_dask.core.names`)
so the dashboard groups them, computed with ``retries``. Losing the scheduler
raises :class:`~iterable_dask.SchedulerLostError`. Many files go through the one in-flight window
(:class:`~iterable_dask.core.window.InFlight`); the parts of one file are followed as they complete, to
drive the progress bar and callback, and kept by index, so they come back in
the order of the sources.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Any

from dask import delayed
from distributed import as_completed
from iterable.exceptions import IterableDataError
from iterable.helpers.detect import is_flat
from iterable.types import ConversionResult, FileConversionResult

from ..columnar import ColumnarUnavailable, path_kind
from ..core import config
from ..core.cluster import cluster_threads
from ..core.lost import cancel_quietly, raise_if_lost
from ..core.names import CONVERT, CONVERT_JOIN, CONVERT_KEYS, CONVERT_PART, task_key, task_token
from ..core.progress import ProgressBar, call_progress
from ..core.runs import TASKS_PER_THREAD
from ..core.window import Done, InFlight
from ..io.atomic import new_job_token, sweep_temporaries
from ..io.fs import file_size, is_url
from ..io.partitions import CSVRange, JSONLinesRange, ParquetRowGroups
from ..io.read import plan_partitions
from .batch import FileBatch, plan_batches
from .parts import JoinParts, PartTask, ScanKeys, SplitFallback
from .tasks import ConvertOptions, FileTask, conversion_error

__all__ = ["ConvertRun", "bulk_totals", "convert_files", "part_blocksize", "split_readers"]

logger = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
COLUMNAR_PAIRS = frozenset({("csv", "parquet"), ("jsonl", "parquet"), ("parquet", "csv"), ("parquet", "jsonl")})
#: iterabledata's per-file progress keys a parallel run cannot estimate.
NO_ESTIMATES = dict.fromkeys(
    ("estimated_total", "bytes_read", "bytes_written", "percent_complete", "estimated_time_remaining")
)
_SPLIT_READERS = (CSVRange, JSONLinesRange, ParquetRowGroups)


def as_result(value: Any, source: str, target: str) -> ConversionResult | Exception:
    """A task's value as a result or a :class:`FileConversionError` (a leftover fallback signal too)."""
    if isinstance(value, (ColumnarUnavailable, SplitFallback)):
        return conversion_error(source, target, value)
    return value


def gather_one(future: Any, source: str, target: str) -> Any:
    """A future's value; a killed worker or a transient error past its retries becomes an error value."""
    try:
        return future.result()
    except CancelledError:
        raise
    except Exception as e:  # KilledWorker, or the FileConversionError a transient failure raised
        return conversion_error(source, target, e)


@contextlib.contextmanager
def cancelled_on_error(client: Any, futures: list[Any]) -> Iterator[None]:
    """Cancel the futures if the caller stops following them (an error, Ctrl-C), so no task lingers."""
    try:
        yield
    except BaseException:
        cancel_quietly(client, futures)
        raise


def split_readers(fromfile: str, tofile: str, o: ConvertOptions, blocksize: int | None) -> list[Any] | None:
    """Partition readers when ``fromfile`` can be split and its parts joined into ``tofile``, else None."""
    kind = path_kind(tofile)
    if kind is None or o.native_requested or "engine" in o.iterableargs or is_url(tofile):
        return None  # (part files lie beside the target: an object-store target is written in one task)
    if kind == "csv" and not is_flat(tofile):
        return None  # iterabledata's CSV writer would take each part's first record for a header
    try:
        if kind != "parquet" and "x\n".encode(o.toiterableargs.get("encoding", "utf8")) != b"x\n":
            return None  # parts of UTF-16 and friends do not concatenate
        readers = plan_partitions(fromfile, blocksize, None, o.storage_options, **o.iterableargs)
    except (OSError, ValueError, IterableDataError) as e:  # a file iterabledata cannot open or read: not a bug here
        logger.debug("Not splitting %r: %s: %s", fromfile, type(e).__name__, e)
        return None  # the single task reports what is wrong with the file
    if len(readers) < 2 or not all(isinstance(r, _SPLIT_READERS) for r in readers):
        return None
    return readers


_MIN_BLOCK = 1 << 20


def part_blocksize(
    blocksize: int | str | None, fromfile: str, client: Any, storage_options: dict[str, Any] | None = None
) -> int | None:
    """Bytes per part: as given, or by default about ``TASKS_PER_THREAD`` parts per worker thread."""
    if blocksize != "default":
        return config.resolve_blocksize(blocksize)
    cap = config.resolve_blocksize("default")
    if cap is None:
        return None
    size = file_size(fromfile, storage_options)
    return max(_MIN_BLOCK, min(cap, -(-size // (TASKS_PER_THREAD * cluster_threads(client)))))


@dataclass
class ConvertRun:
    """One parallel ``convert`` call: where it runs and how it reports."""

    client: Any
    fromfile: str
    tofile: str
    job: str
    retries: int
    show_progress: bool
    progress: Progress | None
    start: float

    def one(self, task: FileTask) -> Any:
        """Convert the whole file in one task."""
        key = task_key(CONVERT, task_token(self.fromfile, self.tofile, self.job, task.rows, task.options.columnar))
        (future,) = self.client.compute([delayed(task, pure=False)(dask_key_name=key)], retries=self.retries)
        with (
            cancelled_on_error(self.client, [future]),
            ProgressBar(1, "Converting", unit="file", enabled=self.show_progress) as bar,
        ):
            out = gather_one(future, self.fromfile, self.tofile)
            bar.update(1)
        return out

    def split(self, o: ConvertOptions, readers: list[Any]) -> Any:
        """Scan the flat columns (flat targets), convert each partition to a part file, join the parts."""
        src, dst, job = self.fromfile, self.tofile, self.job
        token = task_token(src, dst, job, "split")
        keys: Any = []
        if is_flat(dst):  # the columns first, as a value: a dependency would pin every part to one worker
            scan = delayed(ScanKeys(src, dst, tuple(readers), o), pure=False)(
                dask_key_name=task_key(CONVERT_KEYS, token)
            )
            (future,) = self.client.compute([scan], retries=self.retries)
            with cancelled_on_error(self.client, [future]):
                keys = gather_one(future, src, dst)
            if isinstance(keys, Exception):
                return keys
        parts = [
            delayed(PartTask(src, dst, job, reader, o), pure=False)(
                keys, dask_key_name=task_key(CONVERT_PART, token, i)
            )
            for i, reader in enumerate(readers)
        ]
        join = delayed(JoinParts(src, dst, job, o), pure=False)(parts, dask_key_name=task_key(CONVERT_JOIN, token))
        futures = self.client.compute([*parts, join], retries=self.retries)
        *part_futures, join_future = futures
        rows = 0
        with (
            cancelled_on_error(self.client, futures),
            ProgressBar(len(parts), "Converting", unit="part", enabled=self.show_progress) as bar,
        ):
            for future in as_completed(part_futures, loop=self.client.loop):
                part = gather_one(future, src, dst)
                bar.update(1)
                if isinstance(part, Exception):
                    continue
                rows += part.rows_in
                bar.set_postfix_str(f"{rows:,} rows")
                stats = {"rows_read": rows, "rows_written": rows, "elapsed": time.time() - self.start}
                call_progress(self.progress, {**stats, **NO_ESTIMATES})
            return gather_one(join_future, src, dst)

    def run(self, o: ConvertOptions, blocksize: int | None) -> Any:
        """Columnar in one task where it applies, else split into parts, else one row-path task."""
        with raise_if_lost(self.client):
            return self._run(o, blocksize)

    def _run(self, o: ConvertOptions, blocksize: int | None) -> Any:
        pair = (path_kind(self.fromfile), path_kind(self.tofile))
        if o.columnar and not o.native_requested and pair in COLUMNAR_PAIRS:
            out = self.one(FileTask(self.fromfile, self.tofile, self.job, o, rows=False))
            if not isinstance(out, ColumnarUnavailable):
                return out
            o = dataclasses.replace(o, columnar=False)
        readers = split_readers(self.fromfile, self.tofile, o, blocksize)
        if readers is not None:
            out = self.split(o, readers)
            if not isinstance(out, SplitFallback):
                return out
        return self.one(FileTask(self.fromfile, self.tofile, self.job, o))


def convert_files(
    client: Any,
    todo: list[tuple[int, str, str]],
    o: ConvertOptions,
    retries: int,
    show_progress: bool,
    progress: Progress | None,
    start: float,
    total: int,
) -> dict[int, Any]:
    """Convert ``(index, source, target)`` files in tasks of several files; ``{index: result or error}``.

    Files are grouped by bytes (:func:`~iterable_dask.conversion.batch.plan_batches`)
    and at most ``iterable-dask.in-flight-per-worker`` tasks per worker thread
    are in flight: 100,000 files never mean 100,000 futures. Each task's
    results come back together; a task lost with its worker is rerun by Dask,
    and one whose workers keep dying is each of its files' error. This run's
    temporaries are swept at the end, whatever happened.
    """
    job = new_job_token()
    try:
        return _convert_batches(
            client, todo, job, o, retries, show_progress, _Tally(total - len(todo), total, start, progress)
        )
    finally:  # a worker still converting when the scheduler was lost finishes its file, atomically
        sweep_temporaries({os.path.dirname(dst) for _, _, dst in todo}, job)


def _convert_batches(
    client: Any, todo: list[tuple[int, str, str]], job: str, o: ConvertOptions, retries: int, show_progress: bool,
    tally: _Tally,
) -> dict[int, Any]:  # fmt: skip
    batches = plan_batches(todo, cluster_threads(client), o.storage_options)
    with (
        ProgressBar(len(todo), "Converting files", unit="file", enabled=show_progress) as bar,
        raise_if_lost(client),
        InFlight(client, ordered=False) as window,
    ):
        while True:
            while not window.full and (batch := next(batches, None)) is not None:
                tasks = tuple(FileTask(src, dst, job, o) for _, src, dst in batch)
                key = task_key(CONVERT, task_token(job, batch[0][1], len(batch)))
                window.submit(FileBatch(tasks, retries), key=key, pure=False, tag=batch)
            done = window.take()
            if done is None:
                return tally.out
            for (index, src, dst), value in zip(done.tag, _batch_values(done), strict=True):
                tally.add(index, as_result(value, src, dst), src, dst)
                bar.update(1)
                bar.set_postfix_str(f"{tally.rows_out:,} rows")


@dataclass
class _Tally:
    """What ``convert_files`` has gathered: each file's result or error, the running totals, the progress calls."""

    before: int
    total: int
    start: float
    progress: Progress | None
    out: dict[int, Any] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0

    def add(self, index: int, value: Any, src: str, dst: str) -> None:
        self.out[index] = value
        if isinstance(value, Exception):
            logger.error("Error converting %s: %s", src, value)
            return
        if value.rows_in == 0:
            logger.warning("%s has no records: wrote an empty %s", src, dst)
        self.rows_in, self.rows_out = self.rows_in + value.rows_in, self.rows_out + value.rows_out
        stats = {"file_index": self.before + len(self.out), "total_files": self.total, "current_file": src}
        stats.update(file_rows_read=value.rows_in, file_rows_written=value.rows_out)
        stats.update(rows_read=self.rows_in, rows_written=self.rows_out, elapsed=time.time() - self.start)
        call_progress(self.progress, stats)


def _batch_values(done: Done) -> list[Any]:
    """A batch task's list of values; a lost task (KilledWorker) is each of its files' error."""
    if done.error is None:
        return list(done.value)
    if isinstance(done.error, CancelledError):
        raise done.error
    return [conversion_error(src, dst, done.error) for _, src, dst in done.tag]


def bulk_totals(results: list[FileConversionResult]) -> dict[str, Any]:
    """The aggregate fields of a BulkConversionResult, as iterabledata computes them."""
    ok = [r for r in results if r.success]
    errors: list[Exception] = []
    for r in results:
        if r.error is not None:
            errors.append(r.error)
        elif r.result is not None:
            errors.extend(r.result.errors)
    return {
        "total_files": len(results),
        "successful_files": len(ok),
        "failed_files": len(results) - len(ok),
        "total_rows_in": sum(r.result.rows_in for r in ok if r.result is not None),
        "total_rows_out": sum(r.result.rows_out for r in ok if r.result is not None),
        "file_results": results,
        "errors": errors,
    }
