"""Records of files as a :class:`dask.bag.Bag`, read on the workers.

:func:`plan_partitions` turns sources into partition readers (see
:mod:`iterable_dask.io.partitions`); :func:`read_bag` puts them in a bag whose
tasks are those readers, so each worker opens its own part of a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import dask.bag as db
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from iterable.base import BaseIterable
from iterable.helpers.detect import detect_file_type, open_iterable

from ..core import config
from ..core.chunks import pack
from ..core.cluster import parallelism_hint
from ..core.names import READ, RECORDS, task_key
from ..core.retry import Retrying
from .csv_ranges import joined_if_records_span_lines, plan_csv, ranges
from .fs import absolute, file_size, is_url, open_input, pop_storage_options
from .head import ByteWindow, bytes_per_record
from .partitions import JSONLinesRange, PackedRecords, ParquetRowGroups, WholeFile, group_small_files
from .sources import expand_sources

__all__ = [
    "SPLIT_SAFE_ARGS",
    "estimate_remaining",
    "joined_if_records_span_lines",
    "plan_partitions",
    "plan_sized",
    "plan_source_iterable",
    "read_bag",
    "records_to_bag",
]

#: iterableargs that only choose what iterabledata's own reader does, which the
#: byte-range readers copy from it; any other argument means a whole-file read.
SPLIT_SAFE_ARGS = frozenset({"encoding", "delimiter", "quotechar", "keys", "autodetect", "format"})
#: Bytes of a remote text file fetched for iterabledata to detect its dialect and encoding.
_HEAD_BYTES = 1 << 20
_RANGE_TYPES = {"CSVIterable": "csv", "JSONLinesIterable": "jsonl"}


def _split_kind(it: BaseIterable, iterableargs: dict[str, Any]) -> str | None:
    """``"csv"``, ``"jsonl"`` or ``"parquet"`` when the file can be partitioned."""
    if getattr(it, "codec", None) is not None or getattr(it, "stype", None) != 20:
        return None  # compressed or not a plain file
    name = type(it).__name__
    if name == "ParquetIterable":
        return "parquet" if not (set(iterableargs) - {"format"}) else None
    if set(iterableargs) - SPLIT_SAFE_ARGS:
        return None
    return _RANGE_TYPES.get(name)


@contextlib.contextmanager
def _opened_head(url: str, storage_options: dict[str, Any], iterableargs: dict[str, Any]) -> Iterator[BaseIterable]:
    """iterabledata's reader over the first whole lines of a remote text file (one range request).

    Enough for it to detect the dialect and encoding the range readers then
    copy, without fetching the whole object.
    """
    folder = tempfile.mkdtemp(prefix="iterable-dask-head-")
    try:
        # Whole lines only, at least the header's and a record's, however long: a partial line would be
        # taken for a record (or the header) by iterabledata's dialect detection.
        head = ByteWindow(url, 0, storage_options).whole_lines(2, first=_HEAD_BYTES)
        local = os.path.join(folder, os.path.basename(url.rstrip("/")))
        with open(local, "wb") as out:
            out.write(head)
        it = open_iterable(local, iterableargs=dict(iterableargs))
        try:
            yield it
        finally:
            it.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def plan_sized(
    path: str,
    blocksize: int | None,
    iterableargs: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
    size: int | None = None,
) -> tuple[list[Any], int | None]:
    """A file's partitions, and its size when it is one whole-file partition that may join a group.

    ``size``, when the caller already looked it up, spares a second lookup (a HEAD request for a URL).
    """
    storage_options = storage_options or None
    path = absolute(path)  # workers started elsewhere resolve it as this process does
    whole = [WholeFile(path, dict(iterableargs), storage_options)]
    if blocksize is None:
        size = None
    elif size is None:
        size = file_size(path, storage_options)
    if size is None or blocksize is None or size <= blocksize:
        return whole, size  # nothing to split: not even opened here
    if is_url(path):
        info = detect_file_type(os.path.basename(path))
        datatype = info.get("datatype")
        kind = datatype if isinstance(datatype, str) else getattr(datatype, "__name__", None)
        if info.get("codec") is not None or kind not in ("CSVIterable", "JSONLinesIterable", "ParquetIterable"):
            return whole, size  # compressed, or a format read whole
        if kind == "ParquetIterable":
            if set(iterableargs) - {"format"}:
                return whole, size
            return _plan_parquet(path, blocksize, storage_options), None
        try:
            with _opened_head(path, storage_options or {}, iterableargs) as it:
                parts = _plan_opened(it, path, blocksize, iterableargs, storage_options, size)
        except Exception:
            return whole, size  # the worker's whole-file read reports what is wrong with it
        return (parts, None) if parts is not None else (whole, size)
    it = open_iterable(path, iterableargs=dict(iterableargs))
    try:
        parts = _plan_opened(it, path, blocksize, iterableargs)
    finally:
        it.close()
    return (parts, None) if parts is not None else (whole, size)


def _plan_opened(
    it: BaseIterable,
    path: str,
    blocksize: int,
    iterableargs: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
    size: int | None = None,
) -> list[Any] | None:
    """Range or row-group readers for an opened file, or None when it cannot be split.

    ``it`` reads ``path`` (or, for a URL, its first lines); sizes are ``path``'s.
    """
    kind = _split_kind(it, iterableargs)
    storage_options = storage_options or None
    size = file_size(path, storage_options) if size is None else size
    if kind == "parquet":
        return _plan_parquet(path, blocksize, storage_options)
    if kind == "jsonl":
        encoding = getattr(it, "encoding", None) or "utf8"
        if "\n".encode(encoding) != b"\n":
            return None
        return [JSONLinesRange(path, s, e, encoding, storage_options) for s, e in ranges(0, size, blocksize)]
    if kind == "csv":
        return plan_csv(it, path, size, blocksize, storage_options)
    return None


def estimate_remaining(it: BaseIterable, consumed: int) -> int | None:
    """Records left in a plain file iterable, from its size and the line length of its head; else None."""
    path = getattr(it, "filename", None)
    if not isinstance(path, str) or not os.path.isfile(path) or getattr(it, "codec", None) is not None:
        return None
    return max(0, os.path.getsize(path) // bytes_per_record(path) - consumed)


def plan_source_iterable(
    it: BaseIterable,
    records_per_partition: int,
    path: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[Any] | None:
    """Partition readers that re-read an open iterabledata file iterable on the workers.

    Returns None unless ``it`` reads a plain CSV, TSV, JSON Lines or Parquet
    file with iterabledata's default error handling, in which case the
    readers give exactly its records, in partitions of about
    ``records_per_partition`` records (estimated from the file's head).
    ``path`` (a URL, say) names where the workers read the same bytes, when
    ``it`` reads a local copy of them.
    """
    local = getattr(it, "filename", None)
    if not isinstance(local, str) or not os.path.isfile(local):
        return None
    if getattr(it, "_on_error", "raise") != "raise" or getattr(it, "_validation_hooks", None):
        return None
    if _split_kind(it, {}) is None:
        return None
    blocksize = max(4096, records_per_partition * bytes_per_record(local))
    parts = _plan_opened(it, absolute(path or local), blocksize, {}, storage_options)
    return joined_if_records_span_lines(parts, storage_options) if parts is not None else None


def _plan_parquet(path: str, blocksize: int, storage_options: dict[str, Any] | None = None) -> list[Any]:
    import pyarrow.parquet as pq

    with open_input(path, storage_options) as raw, pq.ParquetFile(raw) as f:
        meta = f.metadata
        groups: list[list[int]] = [[]]
        size = 0
        for i in range(meta.num_row_groups):
            if groups[-1] and size >= blocksize:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += meta.row_group(i).total_byte_size
    return [ParquetRowGroups(path, tuple(g), storage_options) for g in groups]


def _packed_parts(records: Iterable[Any], chunk_size: int) -> list[Any]:
    """Chunks of ``chunk_size`` records, each packed as one blob (at least one chunk)."""
    out: list[Any] = []
    chunk: list[Any] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= chunk_size:
            out.append(PackedRecords(pack(chunk)))
            chunk = []
    if chunk or not out:
        out.append(PackedRecords(pack(chunk)))
    return out


def plan_partitions(
    sources: Any,
    blocksize: int | str | None = "default",
    chunk_size: int | None = None,
    storage_options: dict[str, Any] | None = None,
    **iterableargs: Any,
) -> list[Any]:
    """Partition readers for ``sources``, in source order.

    Plain CSV/TSV and JSON Lines files larger than ``blocksize`` split into
    byte ranges, Parquet files into groups of row groups of about
    ``blocksize`` bytes; other files (compressed, other formats, or read with
    arguments the range readers do not reproduce) are read whole, and
    consecutive small ones share a partition
    (:class:`~iterable_dask.io.partitions.FileGroup`) of up to
    ``iterable-dask.files.target-bytes``, each counting its size plus
    ``iterable-dask.files.open-cost``. ``blocksize=None``: one partition per file.
    Open iterables are read here, in the caller, in chunks of ``chunk_size``.
    Local paths become absolute; URLs (``s3://...``) are read by the workers
    through fsspec with ``storage_options`` (or ``iterableargs["storage_options"]``).
    """
    storage_options = pop_storage_options(storage_options, iterableargs)
    size = config.resolve_blocksize(blocksize)
    chunk = config.resolve_chunk_size(chunk_size)
    planned: list[tuple[list[Any], int | None]] = []
    for source in expand_sources(sources, storage_options):
        if isinstance(source, BaseIterable):
            planned.append((_packed_parts(source, chunk), None))  # read here, in the caller
        else:
            planned.append(plan_sized(source, size, iterableargs, storage_options))
    if size is None:  # one partition per file, as asked
        return [part for parts, _ in planned for part in parts]
    target, open_cost = config.file_grouping(size)
    return group_small_files(planned, target, open_cost, parallelism_hint())


def _bag_of(readers: list[Any], prefix: str) -> db.Bag:
    name = task_key(prefix, tokenize(*readers))
    retries = config.resolve_retries()  # transient failures only, in place (core.retry)
    dsk = {(name, i): (Retrying(reader, retries),) for i, reader in enumerate(readers)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
    return db.Bag(graph, name, len(dsk))


def read_bag(
    sources: Any,
    blocksize: int | str | None = "default",
    storage_options: dict[str, Any] | None = None,
    **iterableargs: Any,
) -> db.Bag:
    """Read files (any iterabledata format) as a :class:`dask.bag.Bag` of records.

    The workers read their own partitions: one per file, and byte ranges of
    about ``blocksize`` for large plain CSV, TSV and JSON Lines files (row
    groups for Parquet), so one big file is read in parallel. Records and
    their order are exactly those of reading the sources one after another
    with ``iterable.open_iterable``.

    Parameters
    ----------
    sources : str, PathLike, BaseIterable, or list of these
        A glob, a directory, a path, an fsspec URL or URL glob
        (``"s3://bucket/logs/*.jsonl.gz"``), an open iterabledata iterable
        (read in the caller and shipped in chunks), or a list of them.
    blocksize : int, str or None, default ``iterable-dask.blocksize``
        Target bytes per partition (``"64MiB"`` or an int). ``None`` reads
        every file as one partition, which also handles CSV files whose
        quoted fields hold newlines across range boundaries.
    storage_options : dict, optional
        fsspec options for URLs (credentials, ``client_kwargs``, ``anon`` ...),
        as in :func:`dask.bag.read_text`; ``storage_options`` inside
        ``iterableargs`` (iterabledata's way) is honoured too.
    **iterableargs
        Passed to ``open_iterable(..., iterableargs=...)`` for each file.

    Returns
    -------
    dask.bag.Bag
        A lazy bag; compute it on a cluster with :func:`iterable_dask.compute`
        or any active :class:`distributed.Client`.

    Raises
    ------
    FileNotFoundError
        A path does not exist or a glob matches nothing.
    UnsplittableFileError
        At compute time, when a CSV record with a quoted newline crosses a
        byte-range boundary (pass ``blocksize=None``).

    See Also
    --------
    write_bag : write a bag's partitions as files.

    Examples
    --------
    >>> import iterable_dask
    >>> bag = iterable_dask.read_bag("data/*.csv", blocksize="16MiB")
    >>> iterable_dask.compute(bag.count())
    (1000,)
    """
    chunk_size = iterableargs.pop("chunk_size", None)
    parts = plan_partitions(sources, blocksize, chunk_size, storage_options, **iterableargs)
    return _bag_of(parts, READ)


def records_to_bag(records: Iterable[Any], chunk_size: int | None = None) -> db.Bag:
    """A bag of in-memory records, each partition shipped as one serialized blob.

    Unlike ``dask.bag.from_sequence``, the records are not walked object by
    object by distributed's serialization: each chunk of ``chunk_size``
    records is one pickle.

    Examples
    --------
    >>> from iterable_dask import records_to_bag
    >>> records_to_bag([{"a": 1}, {"a": 2}], chunk_size=1).npartitions
    2
    """
    return _bag_of(_packed_parts(records, config.resolve_chunk_size(chunk_size)), RECORDS)
