"""A pipeline over many files: a glob, a folder or a list of paths as one source, records in file order.

In the caller the files are read one after another with iterabledata
(:class:`ChainedSource`); in parallel the workers read them themselves, small
files grouped by bytes and big ones split, as :func:`~iterable_dask.read_bag`
plans them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from iterable.base import BaseIterable
from iterable.helpers.detect import open_iterable

from ..io.csv_ranges import joined_if_records_span_lines
from ..io.fs import is_url, local_input
from ..io.head import bytes_per_record
from ..io.partitions import group_small_files
from ..io.read import plan_sized
from ..io.sources import expand_sources

__all__ = ["ChainedSource", "is_many", "plan_files"]

_GLOB_CHARS = frozenset("*?[")


def is_many(source: Any) -> bool:
    """Whether ``source`` names several files: a list or tuple of them, a glob, a folder or a URL prefix."""
    if isinstance(source, (list, tuple)):
        return True
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if _GLOB_CHARS & set(text):
        return True
    return text.endswith("/") if is_url(text) else os.path.isdir(text)


class ChainedSource:
    """The records of several sources read one after another, as one iterable (iterabledata's order)."""

    def __init__(self, sources: Any, storage_options: dict[str, Any] | None = None) -> None:
        self.sources = expand_sources(sources, storage_options)
        self.storage_options = storage_options
        self._current: Iterator[Any] | None = None

    @property
    def files(self) -> list[str] | None:
        """The expanded paths, when every source is a file (workers can read them), else None."""
        return list(self.sources) if all(isinstance(s, str) for s in self.sources) else None

    def _records(self) -> Iterator[Any]:
        for source in self.sources:
            if isinstance(source, BaseIterable):
                yield from source
                continue
            with local_input(source, self.storage_options) as local:
                it = open_iterable(local)
                try:
                    yield from it
                finally:
                    it.close()

    def __iter__(self) -> Iterator[Any]:
        self.close()
        self._current = self._records()
        return self._current

    def reset(self) -> None:
        """Start over at the first file (iterating again does)."""
        self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def plan_files(
    files: list[str], records: int, storage_options: dict[str, Any] | None = None, threads: int | None = None
) -> list[Any]:
    """Partitions of about ``records`` records over ``files``, in order: small files grouped, big ones split.

    The bytes that hold ``records`` records are judged from the first file's
    head; ``chunk_size`` is the knob here, so files are grouped by their bytes
    alone (no open cost).
    """
    per_record = bytes_per_record(files[0], storage_options) if files else 1
    blocksize = max(4096, records * per_record)
    planned = [plan_sized(f, blocksize, {}, storage_options) for f in files]
    planned = [(joined_if_records_span_lines(parts, storage_options), size) for parts, size in planned]
    return group_small_files(planned, blocksize, 0, threads)
