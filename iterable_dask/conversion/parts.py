"""Picklable tasks of one big file converted in parts: scan the columns, write parts, join them.

:func:`iterable_dask.convert` with ``parallel=True`` splits a plain CSV, TSV or
JSON Lines source into byte ranges (a Parquet source into row groups). Each
:class:`PartTask` reads its range on a worker and writes it, through
iterabledata's own writer and write loop, to a part file beside the target;
:class:`JoinParts` then joins the parts in order into the target, atomically:
text by concatenation (a CSV header once), Parquet by copying row groups.

Where a split cannot promise iterabledata's output (a write error whose
dropped rows depend on batch boundaries, parts inferring different Parquet
schemas, a quoted newline across ranges) a :class:`SplitFallback` comes back
instead and the caller converts the file in one task.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from iterable.convert.core import (
    _build_output_args,
    _close_quietly,
    _ConvertMetrics,
    _run_write_loop,
    _scan_schema_keys,
)
from iterable.helpers.detect import is_flat, open_iterable
from iterable.types import ConversionResult

from ..columnar import path_kind
from ..core.exceptions import UnsplittableFileError
from ..io.atomic import atomic_target, temp_path
from .tasks import (
    ConvertOptions,
    empty_source_error,
    failure,
    iter_ranges,
    raise_write_failure,
    settle,
)
from .writers import same_text_writer

__all__ = ["JoinParts", "PartResult", "PartTask", "ScanKeys", "SplitFallback"]


class SplitFallback(Exception):
    """The split conversion cannot guarantee iterabledata's output; convert the file in one task."""


@dataclass(frozen=True)
class PartResult:
    """One partition written to ``path``; ``header`` bytes of it repeat the CSV header."""

    path: str
    rows_in: int
    rows_out: int
    header: int = 0


@dataclass(frozen=True)
class ScanKeys:
    """The flat output's columns: iterabledata's schema scan over the first ``scan_limit`` records."""

    source: str
    target: str
    readers: tuple[Any, ...]
    options: ConvertOptions

    def __call__(self) -> list[str] | Exception:
        if not is_flat(self.target):
            return []
        try:
            records = iter_ranges(self.readers)
            return sorted(_scan_schema_keys(records, self.options.scan_limit, self.options.is_flatten, True))
        except UnsplittableFileError as e:
            return SplitFallback(str(e))
        except Exception as e:
            error, transient = failure(self.source, self.target, e)
        return settle(error, transient)


@dataclass(frozen=True)
class PartTask:
    """Convert one partition of a big file into a part file beside the target (named like it)."""

    source: str
    target: str
    job: str
    reader: Any
    options: ConvertOptions

    def __call__(self, keys: list[str] | Exception) -> PartResult | Exception:
        if isinstance(keys, Exception):
            return keys
        o = self.options
        path = temp_path(self.target, self.job)
        metrics = _ConvertMetrics(start_time=time.time())
        try:
            records = self.reader()
            args = _build_output_args(path, path, is_flat(self.target), keys, o.toiterableargs)
            out = open_iterable(path, mode="w", iterableargs=args)
            try:
                if getattr(out, "fobj", None) is not None and hasattr(out.fobj, "flush"):
                    out.fobj.flush()
                header = os.path.getsize(path)  # a CSV writer has written its header on opening
                loop = {"is_flatten": o.is_flatten, "batch_size": o.batch_size, "metrics": metrics}
                loop.update(progress_interval=o.progress_interval, it_in=None, use_totals=False, progress=None)
                _run_write_loop(records, same_text_writer(out), keys, **loop)
            finally:
                _close_quietly(out, "Error closing output file", metrics.errors)
            raise_write_failure(metrics.errors)
            if metrics.errors:  # which rows a failed batch drops depends on batch boundaries
                raise SplitFallback(f"writing a part recorded errors: {metrics.errors[0]}")
            return PartResult(path, metrics.rows_read, metrics.rows_written, header)
        except (SplitFallback, UnsplittableFileError) as e:
            _remove(path)
            return SplitFallback(str(e))
        except Exception as e:
            _remove(path)
            error, transient = failure(self.source, self.target, e)
        return settle(error, transient)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _join_text(parts: list[PartResult], tmp: str) -> None:
    with open(tmp, "wb") as out:
        head = b""
        for i, part in enumerate(parts):
            with open(part.path, "rb") as f:
                if i == 0:
                    head = f.read(part.header)
                    out.write(head)
                elif f.read(part.header) != head:
                    raise SplitFallback("the parts' CSV headers differ")
                shutil.copyfileobj(f, out, 1 << 20)


def _join_parquet(parts: list[PartResult], tmp: str, compression: str) -> None:
    import pyarrow.parquet as pq

    files = [pq.ParquetFile(p.path) for p in parts if p.rows_out]
    try:
        schema = files[0].schema_arrow
        if any(not f.schema_arrow.equals(schema, check_metadata=False) for f in files[1:]):
            raise SplitFallback("the parts inferred different Parquet schemas")
        with pq.ParquetWriter(tmp, schema, compression=compression, use_dictionary=False) as writer:
            for f in files:
                for i in range(f.num_row_groups):
                    writer.write_table(f.read_row_group(i))
    finally:
        for f in files:
            f.close()


@dataclass(frozen=True)
class JoinParts:
    """Join the part files, in order, into the target, atomically: text by concatenation, Parquet by row groups."""

    source: str
    target: str
    job: str
    options: ConvertOptions

    def __call__(self, parts: list[PartResult | Exception]) -> ConversionResult | Exception:
        # A fallback first: after a bad split a later part may fail on what is not an error in one piece.
        fallback = next((p for p in parts if isinstance(p, SplitFallback)), None)
        error = fallback or next((p for p in parts if isinstance(p, Exception)), None)
        if error is not None:
            return error
        done = [p for p in parts if isinstance(p, PartResult)]
        rows_in, rows_out = sum(p.rows_in for p in done), sum(p.rows_out for p in done)
        if rows_in == 0:  # iterabledata's empty output, or the strict error, comes from the one-task path
            return empty_source_error(self.source, self.target) if self.options.strict else SplitFallback("no records")
        try:
            with atomic_target(self.target, self.job) as tmp:
                if path_kind(self.target) == "parquet":
                    _join_parquet(done, tmp, self.options.toiterableargs.get("compression", "snappy"))
                else:
                    _join_text(done, tmp)
            return ConversionResult(rows_in=rows_in, rows_out=rows_out, elapsed_seconds=0.0)
        except SplitFallback as e:
            return SplitFallback(str(e))
        except Exception as e:
            error, transient = failure(self.source, self.target, e)
        return settle(error, transient)
