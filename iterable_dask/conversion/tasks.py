"""Picklable conversion tasks: each opens its own source on a worker and writes its own output.

Only descriptors (paths, options, byte ranges) travel to the workers and only
a :class:`ConversionResult` (or the small part results of
:mod:`iterable_dask.conversion.parts`) or an error travel back; no record
crosses the network.

Errors are returned as values, not raised, when retrying cannot help (a
malformed line stays malformed), so Dask does not re-run them; transient ones
(an I/O error, memory) are raised so the task's ``retries`` apply. Either way
they are new :class:`FileConversionError` objects carrying the cause's type
and message but not the cause, which might not unpickle in the caller. A
worker that dies mid-task is the scheduler's business: it re-runs the task
elsewhere until ``distributed.scheduler.allowed-failures`` is exceeded.

The row path mirrors iterabledata's ``convert`` step by step and reuses its
helpers (``iterable.convert.core``), with one difference that matters: flat
output is decided from the real target name, not the temporary one. Plain
CSV, TSV and JSON Lines sources are read by the foundation's byte-range
readers (the same records, faster), and JSON Lines targets are written with
one JSON encoder per task (the same text, faster).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from iterable.convert.batch import BatchSelection, native_batch_supported
from iterable.convert.core import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_HEADERS_DETECT_LIMIT,
    DEFAULT_PROGRESS_INTERVAL,
    _build_output_args,
    _close_quietly,
    _ConvertMetrics,
    _resolve_schema_keys,
    _run_native_batch_loop,
    _run_write_loop,
    _safe_reset,
    _scan_schema_keys,
    _validate_convert_args,
)
from iterable.convert.core import convert as upstream_convert
from iterable.helpers.detect import is_flat, open_iterable
from iterable.types import ConversionResult

from ..columnar import ColumnarUnavailable, convert_columnar, path_kind
from ..core.exceptions import EmptySourceError, FileConversionError, UnsplittableFileError
from ..core.retry import is_transient
from ..io.atomic import atomic_target
from ..io.fast_records import fast_records
from ..io.fs import local_input, scratch_dir
from ..io.partitions import CSVRange, JSONLinesRange
from ..io.read import SPLIT_SAFE_ARGS, plan_source_iterable
from .writers import same_text_writer

__all__ = [
    "ConvertOptions",
    "FastReadFailed",
    "FileTask",
    "conversion_error",
    "convert_rows",
    "empty_source_error",
    "failure",
    "iter_ranges",
    "raise_write_failure",
    "settle",
]

logger = logging.getLogger(__name__)

#: What sends a file from the columnar fast path to the row path: the cases it knows it reads
#: differently, and pyarrow's parse errors (a ragged row, a malformed line: iterabledata's reader
#: then reads it, or names the error). Anything else (an I/O error, a bug) is the file's error.
COLUMNAR_FALLBACK = (ColumnarUnavailable, pa.ArrowInvalid, UnicodeDecodeError)
#: Files up to this size are read by iterabledata directly, not planned into byte ranges first.
SMALL_FILE = 1 << 20
#: Records per byte range a worker reads, one range after another, when it converts a whole file.
STREAM_RECORDS = 25_000


@dataclass(frozen=True)
class ConvertOptions:
    """iterabledata's per-file ``convert`` arguments, plus the columnar switches."""

    iterableargs: dict[str, Any] = field(default_factory=dict)
    toiterableargs: dict[str, Any] = field(default_factory=dict)
    scan_limit: int | None = DEFAULT_HEADERS_DETECT_LIMIT
    batch_size: int = DEFAULT_BATCH_SIZE
    is_flatten: bool = False
    progress_interval: int = DEFAULT_PROGRESS_INTERVAL
    use_native_batch: bool = False
    selection: Any = None
    strict_native: bool = False
    columnar: bool = True
    infer_types: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)
    #: An empty source is an error (EmptySourceError) instead of iterabledata's empty output.
    strict: bool = False

    @classmethod
    def checked(
        cls,
        iterableargs: dict[str, Any] | None,
        toiterableargs: dict[str, Any] | None,
        scan_limit: int | None,
        batch_size: int,
        is_flatten: bool,
        progress_interval: int,
        **extra: Any,
    ) -> ConvertOptions:
        """Options from ``convert``'s arguments, checked as iterabledata checks them."""
        _validate_convert_args(scan_limit, batch_size)
        return cls(
            iterableargs=dict(iterableargs or {}),
            toiterableargs=dict(toiterableargs or {}),
            scan_limit=scan_limit,
            batch_size=batch_size,
            is_flatten=is_flatten,
            progress_interval=progress_interval,
            **extra,
        )

    @property
    def native_requested(self) -> bool:
        return bool(self.use_native_batch or self.selection is not None)

    def columnar_opts(self) -> dict[str, Any]:
        return {
            "iterableargs": self.iterableargs,
            "toiterableargs": self.toiterableargs,
            "batch_size": self.batch_size,
            "scan_limit": self.scan_limit,
            "is_flatten": self.is_flatten,
            "infer_types": self.infer_types,
        }


def _fresh(e: BaseException) -> BaseException:
    """A copy of ``e`` without cause, context or traceback.

    Once a worker has reported a failed task, tblib makes its exception
    classes pickle their causes too, and a cause such as iterabledata's
    ``FormatParseError`` does not unpickle; so nothing that crosses the wire
    keeps one.
    """
    func, args, *state = e.__reduce_ex__(2)
    copy = func(*args)
    if state and isinstance(state[0], dict):
        copy.__dict__.update(state[0])
    return copy


def conversion_error(source: str, target: str, e: BaseException) -> FileConversionError:
    """A new, picklable error naming the file and its cause's type and message (not the cause itself)."""
    if isinstance(e, FileConversionError):
        return _fresh(e)  # type: ignore[return-value]
    text = " ".join(str(e).split())
    detail = f"{type(e).__name__}: {text[:1000]}" if text else type(e).__name__
    message = f"Converting {source!r} to {target!r} failed: {detail}"
    return FileConversionError(message, source, target, type(e).__name__)


def failure(source: str, target: str, e: BaseException) -> tuple[FileConversionError, bool]:
    """The error to report for ``e``, and whether retrying the task may help (an I/O error, memory)."""
    return conversion_error(source, target, e), is_transient(e)


def settle(error: FileConversionError, transient: bool) -> FileConversionError:
    """Return the error, or raise it so Dask retries the task when that may help.

    Call it outside any ``except`` block: raised there, the error would carry
    the handled exception as its context.
    """
    if transient:
        raise error
    return error


def empty_source_error(source: str, target: str) -> EmptySourceError:
    """The error of a source without records (parallel conversions write no output for it)."""
    message = f"{source!r} has no records (an empty file or a header alone); {target!r} was not written"
    return EmptySourceError(message, source, target, "EmptySourceError")


def _portable(errors: list[Exception], source: str, target: str) -> list[Exception]:
    """Recorded (non-fatal) errors in a form that pickles back to the caller."""
    out: list[Exception] = []
    for e in errors:
        try:
            copy = _fresh(e)
            pickle.loads(pickle.dumps(copy))
            out.append(copy)  # type: ignore[arg-type]
        except Exception:
            out.append(conversion_error(source, target, e))
    return out


def _range_readers(source: str, iterableargs: dict[str, Any]) -> list[Any] | None:
    """Byte-range readers giving iterabledata's records faster, or None for other files."""
    if set(iterableargs) - SPLIT_SAFE_ARGS:
        return None
    it = open_iterable(source, iterableargs=dict(iterableargs))
    try:
        parts = plan_source_iterable(it, STREAM_RECORDS)
    finally:
        it.close()
    return parts if parts and all(isinstance(p, (CSVRange, JSONLinesRange)) for p in parts) else None


def raise_write_failure(errors: list[Exception]) -> None:
    """Raise the first I/O error iterabledata's write loop recorded (a full disk, a size limit).

    iterabledata records a failing batch write or close and goes on, so its
    result would report success over an incomplete output; data errors (a
    record the writer refuses) stay recorded, as there.
    """
    failure = next((e for e in errors if isinstance(e, OSError)), None)
    if failure is not None:
        raise failure


def iter_ranges(readers: list[Any] | tuple[Any, ...], head: list[Any] | None = None) -> Iterator[Any]:
    """Records of the readers in order, lazily; ``head`` stands for the first reader's, already read."""
    for i, reader in enumerate(readers):
        yield from (head if i == 0 and head is not None else reader())


class FastReadFailed(Exception):
    """A fast reader (:func:`~iterable_dask.io.fast_records.fast_records`) raised: convert again with iterabledata's."""


def _guarded(records: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from records
    except Exception as e:
        raise FastReadFailed(f"{type(e).__name__}: {e}") from None


def convert_rows(
    source: str, target: str, tmp: str, o: ConvertOptions, split_reads: bool = True, fast_reads: bool = True
) -> ConversionResult:
    """iterabledata's ``convert(source, target)`` row path, writing ``tmp`` (named like ``target``).

    With ``split_reads``, plain CSV, TSV and JSON Lines sources are read by
    the byte-range readers, which give iterabledata's records faster; they
    raise :class:`UnsplittableFileError` on a quoted newline across ranges,
    and the caller then runs this again without them. With ``fast_reads``,
    other CSV and JSON Lines sources (small ones, compressed ones) are read
    through :func:`~iterable_dask.io.fast_records.fast_records`; should that
    raise, :class:`FastReadFailed` tells the caller to run this again
    without it, so iterabledata's reader names the error.
    """
    metrics = _ConvertMetrics(start_time=time.time())
    src_args = dict(o.iterableargs)
    engine = src_args.pop("engine", "internal")
    is_flat_output = is_flat(target)  # the target's name, as iterabledata sees it
    readers = None
    if split_reads and engine == "internal" and not o.native_requested and os.path.getsize(source) > SMALL_FILE:
        readers = _range_readers(source, src_args)  # a small file is read by iterabledata at once: one open

    def reopen() -> Any:
        return open_iterable(source, mode="r", engine=engine, iterableargs=src_args)

    it_in = it_out = None
    try:
        head = None
        if readers is None:
            it_in = reopen()
        keys: list[str] = []
        if is_flat_output and not o.native_requested:
            if readers is None:
                it_in, keys = _resolve_schema_keys(it_in, reopen, o.scan_limit, o.is_flatten, True)
            else:
                head = readers[0]()
                keys = sorted(_scan_schema_keys(iter_ranges(readers, head), o.scan_limit, o.is_flatten, True))
        args = _build_output_args(tmp, tmp, is_flat_output, keys, o.toiterableargs)
        it_out = open_iterable(tmp, mode="w", iterableargs=args)
        native_eligible = (
            o.native_requested
            and not o.is_flatten
            and not getattr(it_in, "_validation_hooks", None)
            and not getattr(it_out, "_validation_hooks", None)
            and native_batch_supported(it_in, it_out)
        )
        if o.native_requested and not native_eligible and o.strict_native:
            raise ValueError("Native batch conversion is unsupported for the selected endpoints or row transforms")
        loop = {"is_flatten": o.is_flatten, "batch_size": o.batch_size, "progress_interval": o.progress_interval}
        loop.update(metrics=metrics, it_in=it_in, use_totals=False, progress=None)
        if native_eligible:
            try:
                selection = BatchSelection.from_value(o.selection)
                _run_native_batch_loop(it_in, it_out, selection, metrics, None, False, o.progress_interval)
            except NotImplementedError:
                if o.strict_native:
                    raise
                _safe_reset(it_in)
                metrics.rows_read = metrics.rows_written = 0
                _run_write_loop(it_in, it_out, keys, **loop)
        else:
            fast = fast_records(it_in) if readers is None and fast_reads else None
            if fast is not None:
                records: Any = _guarded(fast)
            else:
                records = it_in if readers is None else iter_ranges(readers, head)
            _run_write_loop(records, same_text_writer(it_out), keys, **loop)
        _close_quietly(it_out, "Error closing output file", metrics.errors)
        it_out = None
    finally:
        _close_quietly(it_in, "Error closing input file", metrics.errors)
        _close_quietly(it_out, "Error closing output file", metrics.errors)
    raise_write_failure(metrics.errors)
    return ConversionResult(
        rows_in=metrics.rows_read,
        rows_out=metrics.rows_written,
        elapsed_seconds=time.time() - metrics.start_time,
        errors=_portable(metrics.errors, source, target),
    )


@dataclass(frozen=True)
class FileTask:
    """Convert one whole file on a worker, atomically; the task of one source in ``bulk_convert``.

    Tries the columnar path, then the row path. With ``rows=False`` it only
    tries the columnar path and returns a :class:`ColumnarUnavailable` when
    that cannot be used. Returns the :class:`ConversionResult` or a
    :class:`FileConversionError`.
    """

    source: str
    target: str
    job: str
    options: ConvertOptions
    rows: bool = True

    def _convert(self, source: str, tmp: str) -> ConversionResult:
        """Convert ``source`` (a local path: the file, or a URL's local copy) into ``tmp``."""
        o, start = self.options, time.time()
        if o.columnar and not o.native_requested:
            try:
                n = convert_columnar(source, self.target, tmp, o.columnar_opts())
                return ConversionResult(rows_in=n, rows_out=n, elapsed_seconds=time.time() - start)
            except COLUMNAR_FALLBACK as e:  # a file the fast path reads differently: iterabledata's row path
                if o.infer_types and path_kind(source) == "csv":  # inferred types exist there only
                    raise ValueError(f"infer_types=True needs pyarrow's CSV reader, which refused the file: {e}") from e
                if not self.rows:
                    raise ColumnarUnavailable(str(e)) from None
                logger.debug("Columnar path unavailable for %r: %s", self.source, e)
        split = True
        try:
            try:
                return convert_rows(source, self.target, tmp, o)
            except UnsplittableFileError:  # a quoted newline across ranges: the file as one stream
                split = False
                return convert_rows(source, self.target, tmp, o, split_reads=False)
        except FastReadFailed:  # iterabledata's own reader, which names the error (or reads what we did not)
            return convert_rows(source, self.target, tmp, o, split_reads=split, fast_reads=False)

    def _convert_empty(self, source: str, tmp: str) -> ConversionResult:
        """A source without records: the very output iterabledata's ``convert`` writes (empty, or a header)."""
        o = self.options
        # Under the target's own name: iterabledata writes a hidden file's empty CSV differently.
        folder = tempfile.mkdtemp(prefix="iterable-dask-empty-", dir=scratch_dir())
        try:
            out = os.path.join(folder, self.target.rstrip("/").rsplit("/", 1)[-1])
            result = upstream_convert(
                source,
                out,
                iterableargs=dict(o.iterableargs),
                toiterableargs=dict(o.toiterableargs),
                scan_limit=o.scan_limit,
                batch_size=o.batch_size,
                is_flatten=o.is_flatten,
            )
            shutil.move(out, tmp)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if result.rows_in:  # the fast readers saw no record where iterabledata does: never silently
            raise FileConversionError(
                f"{self.source!r}: iterabledata read {result.rows_in} records where the parallel reader read none",
                self.source,
                self.target,
                "FileConversionError",
            )
        return result

    def __call__(self) -> ConversionResult | FileConversionError | ColumnarUnavailable:
        storage_options = self.options.storage_options
        try:
            with (
                local_input(self.source, storage_options) as source,
                atomic_target(self.target, self.job, storage_options) as tmp,
            ):
                result = self._convert(source, tmp)
                if result.rows_in == 0:
                    if self.options.strict:
                        raise empty_source_error(self.source, self.target)
                    result = self._convert_empty(source, tmp)
            return result
        except ColumnarUnavailable as e:
            return ColumnarUnavailable(str(e))
        except Exception as e:
            error, transient = failure(self.source, self.target, e)
        return settle(error, transient)
