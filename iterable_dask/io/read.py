"""Records of files as a :class:`dask.bag.Bag`, read on the workers.

:func:`plan_partitions` turns sources into partition readers (see
:mod:`iterable_dask.io.readers`); :func:`read_bag` puts them in a bag whose
tasks are those readers, so each worker opens its own part of a file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from typing import Any

import dask.bag as db
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from iterable.base import BaseIterable
from iterable.helpers.detect import open_iterable

from ..core import config
from ..core.chunks import pack
from .readers import CSVRange, JSONLinesRange, PackedRecords, ParquetRowGroups, WholeFile
from .sources import expand_sources

__all__ = ["estimate_remaining", "plan_partitions", "plan_source_iterable", "read_bag", "records_to_bag"]

#: iterableargs that only choose what iterabledata's own reader does, which the
#: byte-range readers copy from it; any other argument means a whole-file read.
_SPLIT_SAFE_ARGS = frozenset({"encoding", "delimiter", "quotechar", "keys", "autodetect", "format"})
_SNIFF_BYTES = 1 << 16
_RANGE_TYPES = {"CSVIterable": "csv", "JSONLinesIterable": "jsonl"}


def _split_kind(it: BaseIterable, iterableargs: dict[str, Any]) -> str | None:
    """``"csv"``, ``"jsonl"`` or ``"parquet"`` when the file can be partitioned."""
    if getattr(it, "codec", None) is not None or getattr(it, "stype", None) != 20:
        return None  # compressed or not a plain file
    name = type(it).__name__
    if name == "ParquetIterable":
        return "parquet" if not (set(iterableargs) - {"format"}) else None
    if set(iterableargs) - _SPLIT_SAFE_ARGS:
        return None
    return _RANGE_TYPES.get(name)


def _csv_header(path: str, encoding: str, delimiter: str, quotechar: str) -> tuple[tuple[str, ...] | None, int, bool]:
    """Field names, the byte offset after the header, and whether the sniffed start has multi-line records."""
    with open(path, "rb") as f:
        sample = f.read(_SNIFF_BYTES)
        complete = len(sample) < _SNIFF_BYTES
    # Keep whole lines only, unless the sample is the whole file.
    if not complete and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    text = sample.decode(encoding, errors="replace" if not complete else "strict")
    lines = list(io.StringIO(text, newline=""))
    if not lines:
        return None, 0, False
    reader = csv.reader(iter(lines), delimiter=delimiter, quotechar=quotechar)
    try:
        header = next(reader)
    except StopIteration:
        return None, 0, False
    header_lines = reader.line_num
    header_end = sum(len(line.encode(encoding)) for line in lines[:header_lines])
    multiline = header_lines > 1
    prev = reader.line_num
    for _ in reader:
        if reader.line_num - prev > 1:
            multiline = True
            break
        prev = reader.line_num
    return tuple(header), header_end, multiline


def _ranges(begin: int, size: int, blocksize: int) -> list[tuple[int, int]]:
    if size <= begin:
        return [(begin, size)]
    starts = list(range(begin, size, blocksize))
    return [(s, min(s + blocksize, size)) for s in starts]


def _plan_file(path: str, blocksize: int | None, iterableargs: dict[str, Any]) -> list[Any]:
    if blocksize is None or os.path.getsize(path) <= blocksize:
        return [WholeFile(path, dict(iterableargs))]  # nothing to split: not even opened here
    it = open_iterable(path, iterableargs=dict(iterableargs))
    try:
        parts = _plan_opened(it, path, blocksize, iterableargs)
    finally:
        it.close()
    return parts if parts is not None else [WholeFile(path, dict(iterableargs))]


def _plan_opened(it: BaseIterable, path: str, blocksize: int, iterableargs: dict[str, Any]) -> list[Any] | None:
    """Range or row-group readers for an opened file, or None when it cannot be split."""
    kind = _split_kind(it, iterableargs)
    size = os.path.getsize(path)
    if kind == "parquet":
        return _plan_parquet(path, blocksize)
    if kind == "jsonl":
        encoding = getattr(it, "encoding", None) or "utf8"
        if "\n".encode(encoding) != b"\n":
            return None
        return [JSONLinesRange(path, s, e, encoding) for s, e in _ranges(0, size, blocksize)]
    if kind == "csv":
        return _plan_csv(it, path, size, blocksize)
    return None


def estimate_remaining(it: BaseIterable, consumed: int) -> int | None:
    """Records left in a plain file iterable, from its size and the line length of its head; else None."""
    path = getattr(it, "filename", None)
    if not isinstance(path, str) or not os.path.isfile(path) or getattr(it, "codec", None) is not None:
        return None
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    per_record = max(1.0, len(head) / max(1, head.count(b"\n")))
    return max(0, int(os.path.getsize(path) / per_record) - consumed)


def plan_source_iterable(it: BaseIterable, records_per_partition: int) -> list[Any] | None:
    """Partition readers that re-read an open iterabledata file iterable on the workers.

    Returns None unless ``it`` reads a plain CSV, TSV, JSON Lines or Parquet
    file with iterabledata's default error handling, in which case the
    readers give exactly its records, in partitions of about
    ``records_per_partition`` records (estimated from the file's head).
    """
    path = getattr(it, "filename", None)
    if not isinstance(path, str) or not os.path.isfile(path):
        return None
    if getattr(it, "_on_error", "raise") != "raise" or getattr(it, "_validation_hooks", None):
        return None
    if _split_kind(it, {}) is None:
        return None
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    lines = max(1, head.count(b"\n"))
    bytes_per_record = max(1, len(head) // lines)
    return _plan_opened(it, path, max(4096, records_per_partition * bytes_per_record), {})


def _plan_csv(it: Any, path: str, size: int, blocksize: int) -> list[Any] | None:
    encoding = it.encoding or "utf8"
    if "\n".encode(encoding) != b"\n" or "\r".encode(encoding) != b"\r":
        return None  # UTF-16 and friends: no byte-level lines
    delimiter, quotechar = it.delimiter, it.quotechar
    fieldnames, header_end, multiline = _csv_header(path, encoding, delimiter, quotechar)
    if it.keys is not None:  # explicit field names: the first line is a record
        fieldnames, header_end = tuple(it.keys), 0
    if multiline:  # quoted newlines seen up front: do not split this file
        return [CSVRange(path, 0, size, fieldnames, header_end, encoding, delimiter, quotechar)]
    return [
        CSVRange(path, s, e, fieldnames, header_end, encoding, delimiter, quotechar)
        for s, e in _ranges(header_end, size, blocksize)
    ]


def _plan_parquet(path: str, blocksize: int) -> list[Any]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        meta = f.metadata
        groups: list[list[int]] = [[]]
        size = 0
        for i in range(meta.num_row_groups):
            if groups[-1] and size >= blocksize:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += meta.row_group(i).total_byte_size
    return [ParquetRowGroups(path, tuple(g)) for g in groups]


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
    **iterableargs: Any,
) -> list[Any]:
    """Partition readers for ``sources``, in source order.

    Plain CSV/TSV and JSON Lines files larger than ``blocksize`` split into
    byte ranges, Parquet files into groups of row groups of about
    ``blocksize`` bytes; other files (compressed, other formats, or read with
    arguments the range readers do not reproduce) give one partition each.
    Open iterables are read here, in the caller, in chunks of ``chunk_size``.
    """
    size = config.resolve_blocksize(blocksize)
    chunk = config.resolve_chunk_size(chunk_size)
    parts: list[Any] = []
    for source in expand_sources(sources):
        if isinstance(source, BaseIterable):
            parts.extend(_packed_parts(source, chunk))  # read here, in the caller
        else:
            parts.extend(_plan_file(source, size, iterableargs))
    return parts


def _bag_of(readers: list[Any], prefix: str) -> db.Bag:
    name = f"{prefix}-{tokenize(*readers)}"
    dsk = {(name, i): (reader,) for i, reader in enumerate(readers)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
    return db.Bag(graph, name, len(dsk))


def read_bag(sources: Any, blocksize: int | str | None = "default", **iterableargs: Any) -> db.Bag:
    """Read files (any iterabledata format) as a :class:`dask.bag.Bag` of records.

    The workers read their own partitions: one per file, and byte ranges of
    about ``blocksize`` for large plain CSV, TSV and JSON Lines files (row
    groups for Parquet), so one big file is read in parallel. Records and
    their order are exactly those of reading the sources one after another
    with ``iterable.open_iterable``.

    Parameters
    ----------
    sources : str, PathLike, BaseIterable, or list of these
        A glob, a directory, a path, an open iterabledata iterable (read in
        the caller and shipped in chunks), or a list of them.
    blocksize : int, str or None, default ``iterable-dask.blocksize``
        Target bytes per partition (``"64MiB"`` or an int). ``None`` reads
        every file as one partition, which also handles CSV files whose
        quoted fields hold newlines across range boundaries.
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
    >>> bag = iterable_dask.read_bag("data/*.csv", blocksize="16MiB")  # doctest: +SKIP
    >>> iterable_dask.compute(bag.count())  # doctest: +SKIP
    (1000000,)
    """
    chunk_size = iterableargs.pop("chunk_size", None)
    return _bag_of(plan_partitions(sources, blocksize, chunk_size, **iterableargs), "iterable-read")


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
    return _bag_of(_packed_parts(records, config.resolve_chunk_size(chunk_size)), "iterable-records")
