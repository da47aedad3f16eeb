"""Worker task of process-mode :func:`~iterable_dask.parallel_read`: one partition as packed chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

from ..core.chunks import PackedChunk, gc_paused, pack_tree
from ..core.exceptions import PartitionReadError
from ..core.retry import is_transient
from ..io.partitions import WholeFile

__all__ = ["ReadGroupPacked", "ReadPacked"]


def _packed(records: Iterator[Any], size: int) -> list[PackedChunk]:
    chunks: list[PackedChunk] = []
    while True:
        with gc_paused:  # parsed records hold no cycles: no collections while building a chunk
            chunk = list(islice(records, size))
            if not chunk:
                return chunks
            chunks.append(pack_tree(chunk))


def _whole_file_chunks(reader: WholeFile, size: int) -> list[PackedChunk]:
    """:class:`WholeFile`'s records, packed ``size`` at a time while reading (no list of every record)."""
    return reader.read(partial(_packed, size=size))


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


@dataclass(frozen=True)
class ReadGroupPacked:
    """Worker task: several small whole files, each as its packed chunks or its own error, in order.

    A data error is that file's value (the others still read); a transient one
    is raised, so the task is retried in place.
    """

    readers: tuple[WholeFile, ...]
    chunk_size: int = 1000

    def __call__(self) -> list[list[PackedChunk] | PartitionReadError]:
        out: list[list[PackedChunk] | PartitionReadError] = []
        for reader in self.readers:
            try:
                out.append(_whole_file_chunks(reader, self.chunk_size))
            except PartitionReadError as e:
                if is_transient(e):
                    raise
                out.append(e)
        return out
