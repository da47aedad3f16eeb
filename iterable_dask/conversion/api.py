"""Distributed drop-ins for iterabledata's ``convert`` and ``bulk_convert``.

``parallel=False`` (the default) calls iterabledata's own functions. With
``parallel=True`` every source file is one Dask task, named
``iterable-convert-...`` in the dashboard, which opens its source on a worker
and writes its target there, atomically (see :mod:`iterable_dask.conversion.tasks`);
one big CSV, TSV or JSON Lines file is split into byte ranges converted side
by side and joined into one target. Where the output provably equals
iterabledata's, pyarrow converts whole columns (:mod:`iterable_dask.columnar`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import iterable.convert.core as upstream
from distributed.security import Security
from iterable.convert.core import DEFAULT_BATCH_SIZE, DEFAULT_HEADERS_DETECT_LIMIT, DEFAULT_PROGRESS_INTERVAL
from iterable.types import BulkConversionResult, ConversionResult

from ..core import config
from ..core.cluster import get_client
from ..io.atomic import new_job_token
from ..io.fs import absolute, is_url
from .checks import is_complete
from .locations import local_endpoints, sequential_urls, split_storage_options
from .results import ParallelBulkConversionResult, ParallelConversionResult
from .run import ConvertRun, Progress, bulk_totals, convert_files
from .steps import (
    bulk_result,
    check_convert,
    convert_result,
    plan_bulk,
    prepare_targets,
    run_convert,
)
from .tasks import ConvertOptions

__all__ = ["ParallelBulkConversionResult", "ParallelConversionResult", "bulk_convert", "convert"]

logger = logging.getLogger(__name__)


def _parallel_only(**options: Any) -> None:
    given = sorted(name for name, value in options.items() if value)
    if given:
        raise ValueError(f"{', '.join(given)} apply to parallel=True only")


def convert(
    fromfile: str,
    tofile: str,
    iterableargs: dict[str, Any] | None = None,
    toiterableargs: dict[str, Any] | None = None,
    scan_limit: int = DEFAULT_HEADERS_DETECT_LIMIT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    silent: bool = True,
    is_flatten: bool = False,
    use_totals: bool = False,
    progress: Progress | None = None,
    progress_interval: int = DEFAULT_PROGRESS_INTERVAL,
    show_progress: bool = False,
    atomic: bool = False,
    use_native_batch: bool = False,
    selection: Any = None,
    strict_native: bool = False,
    *,
    parallel: bool = False,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    retries: int | None = None,
    resume: bool = False,
    blocksize: int | str | None = "default",
    columnar: bool = True,
    infer_types: bool = False,
    storage_options: dict[str, Any] | None = None,
    strict: bool = False,
) -> ConversionResult:
    """Convert one file; with ``parallel=True``, on a Dask cluster, splitting a big file.

    Takes every argument of ``iterable.convert`` with the same defaults and
    meaning; ``parallel=False`` calls it. With ``parallel=True``:

    * Parquet from CSV, TSV or JSON Lines, and CSV or JSON Lines from Parquet,
      are converted by pyarrow on a worker when the result provably equals
      iterabledata's (same rows, columns, values and types); else
    * a plain CSV, TSV or JSON Lines source larger than ``blocksize`` is split
      into byte ranges (a Parquet source into row groups) converted on the
      workers into part files and joined, in order, into ``tofile`` (Parquet:
      one file with several row groups); else
    * one task converts the file as iterabledata does.

    Every way gives exactly the records of iterabledata's sequential
    ``convert``, in the same order. The target is written under a temporary
    name and renamed when complete, whatever ``atomic`` says. A failure raises
    :class:`~iterable_dask.FileConversionError` naming the file.

    Parameters
    ----------
    fromfile, tofile, iterableargs, ..., strict_native
        As ``iterable.convert``. ``progress`` is called in the caller with
        iterabledata's keys (``rows_read``, ``rows_written``, ``elapsed`` ...)
        as parts finish; ``use_totals`` has no effect in parallel.
    parallel : bool, default False
        Run on Dask; False calls iterabledata's ``convert``.
    workers : int, optional
        Worker processes of the embedded cluster, when no other cluster is found.
    client, scheduler : optional
        Where to run; see :func:`iterable_dask.get_client`.
    security : distributed.security.Security, optional
        TLS certificates for connecting to ``scheduler`` (a ``"tls://..."`` address).
    retries : int, optional
        Retries of a task failing for a transient reason (default ``iterable-dask.retries``).
    resume : bool, default False
        Return at once (``skipped=True``) when ``tofile`` is complete by the
        rule of :func:`iterable_dask.conversion.checks.is_complete`.
    blocksize : int, str or None, default ``"default"``
        Bytes per partition of a split source; None never splits. The default
        cuts about four parts per worker thread (so a slow one delays the
        end little), of at least 1 MiB and at most ``iterable-dask.blocksize``.
    columnar : bool, default True
        Allow the pyarrow fast path.
    infer_types : bool, default False
        CSV/TSV to Parquet only: let pyarrow infer column types (numbers,
        booleans, nulls for empty fields) instead of iterabledata's strings.
    storage_options : dict, optional
        fsspec options when ``fromfile`` or ``tofile`` is a URL
        (``"s3://bucket/in.csv"``); ``storage_options`` inside ``iterableargs``
        or ``toiterableargs`` (iterabledata's way) is honoured too. A URL target
        is written locally and uploaded whole; it is converted in one task.
    strict : bool, default False
        A source without records raises :class:`~iterable_dask.EmptySourceError`
        instead of writing iterabledata's empty output (with a warning).

    Returns
    -------
    ConversionResult
        A :class:`ParallelConversionResult` in parallel.

    Raises
    ------
    FileNotFoundError, ValueError, OSError
        Before any work: ``fromfile`` missing, an unknown target format, an
        unwritable target folder.
    FileConversionError
        The conversion failed (its message names the file and the cause).
    ClusterConnectionError
        ``scheduler`` did not answer, or refused the connection.
    SchedulerLostError
        The scheduler went away mid-run; ``tofile`` is left as it was and no temporary stays.

    Examples
    --------
    >>> import iterable_dask
    >>> result = iterable_dask.convert("big.csv", "big.jsonl", parallel=True)
    >>> result.rows_in, result.rows_out
    (1000, 1000)
    """
    storage_options, iterableargs, toiterableargs = split_storage_options(storage_options, iterableargs, toiterableargs)
    if not parallel:
        _parallel_only(
            workers=workers, client=client, scheduler=scheduler, security=security, retries=retries,
            resume=resume, infer_types=infer_types, strict=strict,
        )  # fmt: skip
        with local_endpoints(fromfile, tofile, storage_options) as (local_from, local_to):
            return upstream.convert(
                fromfile=local_from, tofile=local_to, iterableargs=iterableargs, toiterableargs=toiterableargs,
                scan_limit=scan_limit, batch_size=batch_size, silent=silent, is_flatten=is_flatten,
                use_totals=use_totals, progress=progress, progress_interval=progress_interval,
                show_progress=show_progress, atomic=atomic, use_native_batch=use_native_batch,
                selection=selection, strict_native=strict_native,
            )  # fmt: skip
    start = time.time()
    o = ConvertOptions.checked(
        iterableargs, toiterableargs, scan_limit, batch_size, is_flatten, progress_interval,
        use_native_batch=use_native_batch, selection=selection, strict_native=strict_native, columnar=columnar,
        infer_types=infer_types, storage_options=storage_options, strict=strict,
    )  # fmt: skip
    check_convert(fromfile, tofile, storage_options, infer_types)
    if resume and is_complete(fromfile, tofile, storage_options):
        return ParallelConversionResult(rows_in=0, rows_out=0, elapsed_seconds=time.time() - start, skipped=True)
    prepare_targets([tofile], resume, atomic)
    dask_client = get_client(client, scheduler, workers=workers, security=security)
    run = ConvertRun(dask_client, absolute(fromfile), absolute(tofile), new_job_token(),
                     config.resolve_retries(retries), show_progress, progress, start)  # fmt: skip
    out = run_convert(run, o, blocksize, storage_options)
    return convert_result(out, fromfile, tofile, progress, start)


def bulk_convert(
    source: str,
    dest: str,
    pattern: str | None = None,
    to_ext: str | None = None,
    iterableargs: dict[str, Any] | None = None,
    toiterableargs: dict[str, Any] | None = None,
    scan_limit: int = DEFAULT_HEADERS_DETECT_LIMIT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    silent: bool = True,
    is_flatten: bool = False,
    use_totals: bool = False,
    progress: Progress | None = None,
    progress_interval: int = DEFAULT_PROGRESS_INTERVAL,
    show_progress: bool = False,
    atomic: bool = False,
    parallel: bool = False,
    workers: int | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    retries: int | None = None,
    resume: bool = False,
    columnar: bool = True,
    infer_types: bool = False,
    storage_options: dict[str, Any] | None = None,
    strict: bool = False,
) -> BulkConversionResult:
    """Convert many files; with ``parallel=True``, one Dask task per file.

    Takes every argument of ``iterable.bulk_convert`` with the same defaults
    and meaning; ``parallel=False`` calls it. With ``parallel=True`` each
    source file is one task, ``iterable-convert-<token>`` in the dashboard,
    run on a worker process instead of iterabledata's thread pool:

    * each target is written under a temporary name beside it and renamed
      when complete (whatever ``atomic`` says), so a failed, retried or killed
      task never leaves a partial target or a stray temporary;
    * a file that fails (an empty or header-only file, a malformed line, a
      truncated archive, an extension that lies, an unreadable file, a worker
      killed more often than ``distributed.scheduler.allowed-failures``) is
      reported in its ``FileConversionResult.error`` (a
      :class:`~iterable_dask.FileConversionError` naming it), and the others
      convert; transient errors (I/O, memory) are retried ``retries`` times;
    * where the result provably equals iterabledata's, pyarrow converts whole
      columns (CSV/TSV/JSON Lines to Parquet, Parquet to CSV/JSON Lines);
    * results are in the order of the sources, and every output holds exactly
      the records iterabledata's sequential ``bulk_convert`` writes.

    Parameters
    ----------
    source, dest, pattern, to_ext, iterableargs, ..., atomic
        As ``iterable.bulk_convert``. ``progress`` is called in the caller as
        each file finishes, with iterabledata's keys (``file_index``,
        ``total_files``, ``current_file``, ``file_rows_read``, ``rows_read`` ...).
        ``show_progress`` draws a bar over files (rows in its postfix), a
        widget in Jupyter, even when ``silent``.
    parallel : bool, default False
        Run on Dask; False calls iterabledata's ``bulk_convert``.
    workers : int, optional
        Worker processes of the embedded cluster, when no other cluster is found.
    client, scheduler : optional
        Where to run; see :func:`iterable_dask.get_client`.
    security : distributed.security.Security, optional
        TLS certificates for connecting to ``scheduler`` (a ``"tls://..."`` address).
    retries : int, optional
        Retries of a task failing for a transient reason (default ``iterable-dask.retries``).
    resume : bool, default False
        Skip a source whose target is complete: it exists, is not empty, is
        not older than the source, and ends as a finished file does (a
        readable Parquet footer; a final newline for CSV/JSON Lines). Outputs
        of this function are complete by construction, as they appear only
        through an atomic rename; temporaries a crashed run left for these
        targets are removed. Skipped sources are listed in ``skipped_files``.
    columnar : bool, default True
        Allow the pyarrow fast path.
    infer_types : bool, default False
        CSV/TSV to Parquet only: let pyarrow infer column types.
    storage_options : dict, optional
        fsspec options when ``source`` or ``dest`` is a URL
        (``"s3://bucket/logs/*.csv"``, ``"s3://bucket/out/"``); ``storage_options``
        inside ``iterableargs`` or ``toiterableargs`` is honoured too. Workers
        read and write the objects themselves; each output is uploaded whole.
    strict : bool, default False
        A source without records is that file's :class:`~iterable_dask.EmptySourceError`,
        and a ``source`` matching nothing raises :class:`FileNotFoundError`, instead of
        iterabledata's empty output and empty result (each with a warning).

    Returns
    -------
    BulkConversionResult
        A :class:`ParallelBulkConversionResult` in parallel.

    Raises
    ------
    FileNotFoundError
        ``source`` matches no file (iterabledata returns an empty result instead).
    ValueError
        Neither ``pattern`` nor ``to_ext``, an unknown target format, two
        sources onto one target, or a file onto itself.
    OSError
        ``dest`` cannot be created or written.
    ClusterConnectionError
        ``scheduler`` did not answer, or refused the connection.
    SchedulerLostError
        The scheduler went away mid-run. Targets completed before (or by a
        worker finishing the file it was writing) stay, each whole; no
        partial target or temporary stays. Run again with ``resume=True``.

    Examples
    --------
    >>> import iterable_dask
    >>> result = iterable_dask.bulk_convert("data/*.csv", "out/", to_ext="parquet", parallel=True)
    >>> result.successful_files, result.failed_files, result.total_rows_out
    (4, 0, 1000)
    """
    storage_options, iterableargs, toiterableargs = split_storage_options(storage_options, iterableargs, toiterableargs)
    if not parallel:
        _parallel_only(
            client=client, scheduler=scheduler, security=security, retries=retries, resume=resume,
            infer_types=infer_types, strict=strict,
        )  # fmt: skip
        if is_url(source) or is_url(dest):
            args = dict(iterableargs=iterableargs, toiterableargs=toiterableargs, scan_limit=scan_limit)
            args.update(batch_size=batch_size, silent=silent, is_flatten=is_flatten, atomic=atomic)
            return sequential_urls(source, dest, pattern, to_ext, storage_options, args)
        return upstream.bulk_convert(
            source=source,
            dest=dest,
            pattern=pattern,
            to_ext=to_ext,
            iterableargs=iterableargs,
            toiterableargs=toiterableargs,
            scan_limit=scan_limit,
            batch_size=batch_size,
            silent=silent,
            is_flatten=is_flatten,
            use_totals=use_totals,
            progress=progress,
            progress_interval=progress_interval,
            show_progress=show_progress,
            atomic=atomic,
            parallel=False,
            workers=workers,
        )
    start = time.time()
    if pattern is None and to_ext is None:
        raise ValueError("Either 'pattern' or 'to_ext' must be specified")
    o = ConvertOptions.checked(
        iterableargs, toiterableargs, scan_limit, batch_size, is_flatten, progress_interval, columnar=columnar,
        infer_types=infer_types, storage_options=storage_options, strict=strict,
    )  # fmt: skip
    plan = plan_bulk(source, dest, pattern, to_ext, storage_options, strict=strict, infer_types=infer_types)
    if plan is None:  # no file matched: iterabledata's empty result (with its warning)
        return ParallelBulkConversionResult(**bulk_totals([]), total_elapsed_seconds=time.time() - start)
    skipped = plan.skipped(resume)
    todo = plan.todo(skipped)
    prepare_targets([dst for _, _, dst in todo], resume, atomic)
    outcomes: dict[int, Any] = {}
    if todo:
        dask_client = get_client(client, scheduler, workers=workers, security=security)
        retries = config.resolve_retries(retries)
        outcomes = convert_files(dask_client, todo, o, retries, show_progress, progress, start, len(plan.pairs))
    return bulk_result(plan.pairs, skipped, outcomes, start)
