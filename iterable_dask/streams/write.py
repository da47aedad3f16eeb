"""parallel_write: records into several files written in parallel, each atomically.

Records from an iterable (or a :class:`ParallelReader`) are grouped in the
caller into files of ``records_per_file`` records, round-robin or per
``partition_by`` key, and each full file is handed to a writer thread, or
shipped to a Dask worker as one packed blob, with a bounded number of writes
in flight. A :class:`dask.bag.Bag` is written on the workers, partition by
partition, without passing through the caller.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any

import dask.bag as db
from dask.base import tokenize
from distributed import KilledWorker
from distributed.security import Security
from iterable.helpers.detect import detect_file_type

from ..core import config
from ..core.chunks import PackedChunk, pack_function, pack_tree
from ..core.cluster import get_client
from ..core.exceptions import UnpicklableFunctionError
from ..core.names import WRITE_FILE, WRITE_KEYED, task_key
from ..core.retry import Retrying
from ..core.window import InFlight
from ..io.atomic import ensure_output_folder, new_job_token, sweep_temporaries
from ..io.fs import absolute, is_url, pop_storage_options
from ..io.write import write_bag_counts, write_partitions
from .file_writers import FileWriter, KeyedPartitionWriter, WrittenFile, key_function, partition_folder
from .mode import stream_mode
from .read import ParallelReader

__all__ = ["parallel_write"]

_KEYED_BUFFER_FILES = 4  # records held across per-key buffers, in files' worth
_MAX_LOST = 3  # times one file's write is resubmitted after its worker was lost


def _prepare_dest(dest: str, to_ext: str, storage_options: dict[str, Any] | None) -> str:
    ext = to_ext.lstrip(".")
    if not ext or "/" in ext:
        raise ValueError(f"to_ext must be an extension such as 'jsonl' or 'csv.gz'; got {to_ext!r}")
    if not detect_file_type(f"part.{ext}").get("success"):
        raise ValueError(f"Unknown output format {to_ext!r}: iterabledata has no writer for it")
    ensure_output_folder(dest, storage_options)
    return ext


def _write_keyed_bag(
    bag: db.Bag,
    dest: str,
    ext: str,
    partition_by: str | bytes,
    toiterableargs: dict[str, Any],
    batch_size: int,
    storage_options: dict[str, Any] | None,
    **where: Any,
) -> list[tuple[str, int]]:
    """Each partition of ``bag`` as a file per key, through :func:`~iterable_dask.io.write.write_partitions`."""
    job = new_job_token()
    writers = [
        KeyedPartitionWriter(dest, ext, i, job, partition_by, toiterableargs, batch_size, storage_options)
        for i in range(bag.npartitions)
    ]

    def folders() -> list[str]:  # dest and the key folders the writers made
        if is_url(dest):  # object-store outputs have no temporary keys
            return []
        return [dest, *(e.path for e in os.scandir(dest) if e.is_dir())]

    name = task_key(WRITE_KEYED, tokenize(bag.name, dest, job))
    return write_partitions(bag, writers, name, job, folders, **where)


@dataclass
class _File:
    """A file handed to a writer: its place among the files started, and (cluster) its records, kept to send again."""

    number: int
    writer: FileWriter
    packed: PackedChunk | None = None
    lost: int = 0  # times its worker was lost with it


class _Submitter:
    """Writes files in writer threads or on Dask workers through one in-flight window; results in the order started."""

    def __init__(self, workers: int | None, client: Any, job: str, storage_options: dict[str, Any] | None) -> None:
        self.client = client
        self.job = job
        self.storage_options = storage_options
        self.retries = config.resolve_retries()  # transient failures only, in place
        self.numbers = count()
        self.keys = count()
        self.written: dict[int, WrittenFile] = {}
        self.folders: set[str] = set()
        self.pool: ThreadPoolExecutor | None = None
        limit = None  # on a cluster: in-flight-per-worker per worker thread
        if client is None:
            threads = config.resolve_workers(workers)
            self.pool = ThreadPoolExecutor(threads, thread_name_prefix="parallel-write")
            limit = threads + 1  # every thread busy, one file queued
        # A write already running goes on after a cancel: closing the window waits for it (before the sweep).
        self.window = InFlight(client, limit, stop_prefix=task_key(WRITE_FILE, job, ""))

    def submit(self, writer: FileWriter, records: list[Any]) -> None:
        while self.window.full:
            self._take()
        self.folders.add(os.path.dirname(writer.path))
        file = _File(next(self.numbers), writer)
        if self.pool is not None:
            self.window.add(self.pool.submit(writer, records), tag=file)
        else:  # one packed blob per file, scattered so that it is not embedded in the task graph
            file.packed = pack_tree(records)
            self._scatter(file)

    def _scatter(self, file: _File) -> None:
        # The blob stays here until its file is written: scattered data has no recipe, so a
        # worker lost with it is replaced by scattering it again.
        data = self.client.scatter(file.packed, hash=False)
        key = task_key(WRITE_FILE, self.job, next(self.keys))
        self.window.submit(Retrying(file.writer, self.retries), data, tag=file, key=key, pure=False)

    def _take(self) -> None:
        """Wait for the oldest write: its file is written, sent again (its worker was lost with it), or it raises."""
        done = self.window.take()
        assert done is not None  # the window was not empty and no stop event was given
        file = done.tag
        if done.error is None:
            self.written[file.number] = WrittenFile(*done.value)
        elif self.pool is None and isinstance(done.error, (CancelledError, KilledWorker)) and file.lost < _MAX_LOST:
            file.lost += 1
            self._scatter(file)
        else:
            raise done.error

    def finish(self) -> list[WrittenFile]:
        while self.window:
            self._take()
        return [self.written[n] for n in sorted(self.written)]

    def abort(self) -> None:
        """Cancel the writes not started and wait for the running ones (each is atomic) to end."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.window.close()  # cancels what it holds; on a cluster, waits until the running writes stopped

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        sweep_temporaries(self.folders, self.job)


def _write_stream(
    records: Iterable[Any],
    dest: str,
    ext: str,
    partition_by: str | bytes | Callable[[Any], Any] | None,
    records_per_file: int,
    submitter: _Submitter,
    toiterableargs: dict[str, Any],
    batch_size: int,
) -> list[WrittenFile]:
    label, key_of = key_function(partition_by) if partition_by is not None else ("", None)
    buffers: dict[str, list[Any]] = {}
    numbers: dict[str, int] = collections.defaultdict(int)
    held = 0

    def flush(folder: str) -> None:
        nonlocal held
        group = buffers.pop(folder)
        held -= len(group)
        path = os.path.join(dest, folder, f"part-{numbers[folder]:05d}.{ext}")
        numbers[folder] += 1
        writer = FileWriter(path, submitter.job, toiterableargs, batch_size, submitter.storage_options)
        submitter.submit(writer, group)

    for record in records:
        folder = "" if key_of is None else partition_folder(label, key_of(record))
        group = buffers.get(folder)
        if group is None:
            group = buffers[folder] = []
        group.append(record)
        held += 1
        if len(group) >= records_per_file:
            flush(folder)
        elif held > _KEYED_BUFFER_FILES * records_per_file:  # many keys: write the largest buffer now
            flush(max(buffers, key=lambda f: len(buffers[f])))
    for folder in list(buffers):
        flush(folder)
    return submitter.finish()


def _shippable(partition_by: str | Callable[[Any], Any] | None) -> str | bytes | None:
    """A field name as is, a function cloudpickled for the workers."""
    if partition_by is None or isinstance(partition_by, str):
        return partition_by
    try:
        return pack_function(partition_by)
    except Exception as e:
        raise UnpicklableFunctionError(f"partition_by cannot be pickled for the workers: {e}") from e


def parallel_write(
    records: Any,
    dest: str | os.PathLike[str],
    to_ext: str = "jsonl",
    partition_by: str | Callable[[Any], Any] | None = None,
    records_per_file: int | None = None,
    workers: int | None = None,
    *,
    mode: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    batch_size: int = 10000,
    storage_options: dict[str, Any] | None = None,
    **toiterableargs: Any,
) -> list[WrittenFile]:
    """Write records to several files in parallel, each file atomically.

    Parameters
    ----------
    records : iterable, dask.bag.Bag or ParallelReader
        The records. An iterable (or a :func:`parallel_read` reader, closed
        when done) is grouped into files here and written in parallel; a bag
        is written on the workers, one file per partition (per partition and
        key with ``partition_by``) and ``records_per_file`` does not apply.
    dest : str or PathLike
        Output folder (created if needed), local or an fsspec URL
        (``"s3://bucket/out"``). Files are named ``part-00000.<to_ext>`` ...;
        existing files of the same name are replaced. A local folder is made
        absolute here, and the returned paths are absolute.
    to_ext : str
        Output format and codec, any iterabledata writes: ``"jsonl"``,
        ``"csv"``, ``"parquet"``, ``"jsonl.gz"`` ...
    partition_by : str or callable, optional
        A field name, or a function of a record, giving each record's key:
        files go to Hive-style folders ``dest/<field>=<value>/`` (``key=<value>``
        for a function; ``None`` values to ``__HIVE_DEFAULT_PARTITION__``).
        Values are percent-encoded, so ``/``, ``..`` or a leading dot cannot
        leave ``dest`` or hide a folder.
    records_per_file : int, optional
        Records per file (default ``iterable-dask.records-per-file``). With
        ``partition_by``, a key's buffer is written when it is full; when the
        buffers of all keys together hold more than 4 files' worth, the
        largest is written early (a smaller file). Memory stays bounded by
        about ``records_per_file`` times (4 + the writes in flight).
    workers : int, optional
        Writer threads (default ``iterable-dask.workers``, else the CPU count);
        in process mode, the size of an embedded cluster.
    mode : {"thread", "process", "auto"}, optional
        Default ``iterable-dask.parallel-mode``; ``"auto"`` is ``"process"``
        when ``client`` or ``scheduler`` is given (each file's records cross to
        a worker as one packed blob), else ``"thread"``.
    client, scheduler : optional
        The Dask cluster (see :func:`iterable_dask.get_client`); a bag always
        runs on one.
    security : distributed.security.Security, optional
        TLS certificates for connecting to ``scheduler`` (a ``"tls://..."`` address).
    batch_size : int
        Records per ``write_bulk`` call.
    storage_options : dict, optional
        fsspec options for a URL ``dest`` (``toiterableargs["storage_options"]`` too).
    **toiterableargs
        Passed to ``open_iterable(path, mode="w", iterableargs=...)``.

    Returns
    -------
    list of WrittenFile
        ``(path, rows)`` of every file written, in the order they were started.

    Raises
    ------
    FileWriteError
        A file could not be written; it names the file. Files already
        completed stay (each is whole), the writes in flight are cancelled.
    SchedulerLostError
        The scheduler went away mid-run; files completed stay (each whole), no temporary does.

    See Also
    --------
    parallel_read : read many sources in parallel.
    write_bag : write a bag's partitions.

    Examples
    --------
    >>> from iterable_dask import parallel_read, parallel_write
    >>> with parallel_read("logs/*.jsonl.gz") as reader:
    ...     files = parallel_write(reader, "by-city/", to_ext="parquet", partition_by="city")
    >>> sum(f.rows for f in files), os.path.relpath(files[0].path)  # doctest: +ELLIPSIS
    (150, 'by-city/city=.../part-00000.parquet')
    >>> files = parallel_write(({"n": i} for i in range(10)), "out/", records_per_file=5)
    >>> [(os.path.relpath(f.path), f.rows) for f in files]
    [('out/part-00000.jsonl', 5), ('out/part-00001.jsonl', 5)]
    """
    mode = stream_mode(mode, client, scheduler, "writes")
    if isinstance(records, ParallelReader) and records.with_source:
        raise ValueError("parallel_write needs records, not (source, record) pairs: read with with_source=False")
    per_file = config._positive_int(
        config.get("records-per-file") if records_per_file is None else records_per_file, "records_per_file"
    )
    if partition_by is not None and not isinstance(partition_by, str) and not callable(partition_by):
        raise TypeError(f"partition_by must be a field name or a function; got {type(partition_by).__name__}")
    toiterableargs = dict(toiterableargs)
    storage_options = pop_storage_options(storage_options, toiterableargs) or None
    dest = absolute(dest)
    ext = _prepare_dest(dest, to_ext, storage_options)
    if isinstance(records, db.Bag):
        where = dict(client=client, scheduler=scheduler, security=security)
        if partition_by is None:
            pairs = write_bag_counts(
                records, dest, ext, batch_size=batch_size, storage_options=storage_options, **where, **toiterableargs
            )
        else:
            pairs = _write_keyed_bag(
                records, dest, ext, _shippable(partition_by), toiterableargs, batch_size, storage_options, **where
            )
        return [WrittenFile(*pair) for pair in pairs]
    on_cluster = mode == "process"
    dask_client = get_client(client, scheduler, workers=workers, security=security) if on_cluster else None
    submitter = _Submitter(workers, dask_client, new_job_token(), storage_options)
    try:
        return _write_stream(records, dest, ext, partition_by, per_file, submitter, toiterableargs, batch_size)
    except BaseException:
        submitter.abort()
        raise
    finally:
        submitter.close()
        if isinstance(records, ParallelReader):
            records.close()
