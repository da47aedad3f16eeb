"""``iterable-dask convert`` (one file) and ``iterable-dask bulk-convert`` (many)."""

from __future__ import annotations

import os
from typing import Any

import click

from ..conversion import bulk_convert, convert
from ..conversion.locations import discover
from ..core.exceptions import FileConversionError
from .errors import EXIT_FAILED, EXIT_OK, UsageProblem
from .options import (
    cluster_options,
    output_options,
    parse_storage_options,
    progress_option,
    security_from,
    show_progress,
    storage_option,
)
from .report import bulk_summary, conversion_summary, emit
from .session import session

__all__ = ["bulk_convert_command", "convert_command"]


def _blocksize(text: str | None) -> int | str | None:
    if text is None:
        return "default"
    return None if text.lower() == "none" else text


@click.command("convert")
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DEST")
@click.option("--parallel", is_flag=True, help="Convert on Dask workers, splitting a big file into parts.")
@cluster_options
@click.option("--retries", type=click.IntRange(min=0), default=None, help="Retries of a task lost to a failure.")
@click.option("--resume", is_flag=True, help="Skip the file when DEST is complete and newer (with --parallel).")
@click.option("--blocksize", default=None, help="Bytes per part of a split source, e.g. 64MiB; 'none' never splits.")
@storage_option
@progress_option
@output_options
def convert_command(
    source: str,
    dest: str,
    parallel: bool,
    workers: int | None,
    scheduler: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    retries: int | None,
    resume: bool,
    blocksize: str | None,
    storage_options: tuple[str, ...],
    progress: bool | None,
    as_json: bool,
) -> int:
    """Convert one file SRC to DEST; the formats come from the file names.

    Without --parallel this is iterabledata's own convert(); with it, the
    file is converted on a Dask cluster (split into byte ranges or row groups
    when big) and joined, in order, into DEST, written under a temporary name
    and renamed when complete.

    \b
    Examples:
      iterable-dask convert big.csv big.jsonl --parallel
      iterable-dask convert s3://bucket/in.csv.gz out.parquet --storage-option anon=true
    """
    options = parse_storage_options(storage_options)
    if not parallel:
        for name, value in (("--workers", workers), ("--scheduler", scheduler), ("--retries", retries)):
            if value is not None:
                raise UsageProblem(f"{name} needs --parallel")
        if resume or blocksize is not None:
            raise UsageProblem("--resume and --blocksize need --parallel")
        result = convert(source, dest, show_progress=show_progress(progress), storage_options=options or None)
    else:
        if not os.path.exists(source) and "://" not in source:
            raise FileNotFoundError(2, "No such file", source)
        with session(scheduler, workers, [dest], security=security_from(tls_ca_file, tls_cert, tls_key)) as run:
            try:
                result = convert(
                    source, dest, parallel=True, client=run.client, retries=retries, resume=resume,
                    blocksize=_blocksize(blocksize), show_progress=show_progress(progress),
                    storage_options=options or None,
                )  # fmt: skip
            except FileConversionError as e:
                emit({"source_file": source, "dest_file": dest, "success": False, "error": str(e)}, as_json,
                     [f"FAILED {source} -> {dest}: {e}"])  # fmt: skip
                return EXIT_FAILED
    summary = conversion_summary(result)
    failed = bool(result.errors)
    verb = "skipped (complete)" if summary.get("skipped") else "FAILED" if failed else "converted"
    lines = [f"{source} -> {dest}: {verb}, {result.rows_in:,} rows in, {result.rows_out:,} rows out"]
    lines += [f"  error: {e}" for e in result.errors[:10]]
    emit({"source_file": source, "dest_file": dest, "success": not failed, **summary}, as_json, lines)
    return EXIT_FAILED if failed else EXIT_OK


@click.command("bulk-convert")
@click.argument("source", metavar="SRC_GLOB_OR_DIR")
@click.argument("dest", metavar="DEST_DIR")
@click.option("--to", "--to-ext", "to_ext", metavar="EXT", default=None, help="Target format, e.g. jsonl, parquet.")
@click.option("--pattern", metavar="P", default=None, help="Target name pattern, e.g. '{name}.parquet'.")
@cluster_options
@click.option("--retries", type=click.IntRange(min=0), default=None, help="Retries of a task lost to a failure.")
@click.option("--resume", is_flag=True, help="Skip files whose complete output exists and is newer.")
@storage_option
@progress_option
@output_options
def bulk_convert_command(
    source: str,
    dest: str,
    to_ext: str | None,
    pattern: str | None,
    workers: int | None,
    scheduler: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    retries: int | None,
    resume: bool,
    storage_options: tuple[str, ...],
    progress: bool | None,
    as_json: bool,
) -> int:
    """Convert every file of SRC_GLOB_OR_DIR into DEST_DIR, in parallel on Dask.

    SRC is a glob, a folder or one file, local or a URL (s3://bucket/logs/*.csv).
    Each file gets its own atomic output, result and error; a failing file
    does not stop the others, and the exit code is then 1.

    \b
    Examples:
      iterable-dask bulk-convert 'data/*.csv' out/ --to parquet
      iterable-dask bulk-convert s3://bucket/raw/ s3://bucket/jsonl/ --to jsonl --scheduler tcp://10.0.0.5:8786
    """
    if to_ext is None and pattern is None:
        raise UsageProblem("give the target format with --to EXT (or a name --pattern)")
    options = parse_storage_options(storage_options)
    if not discover(source, options):
        raise UsageProblem(f"no file matched {source}")
    with session(scheduler, workers, [dest], security=security_from(tls_ca_file, tls_cert, tls_key)) as run:
        result = bulk_convert(
            source, dest, pattern=pattern, to_ext=to_ext, parallel=True, client=run.client, retries=retries,
            resume=resume, show_progress=show_progress(progress), storage_options=options or None,
        )  # fmt: skip
    summary = bulk_summary(result)
    lines = _bulk_lines(result, summary)
    emit(summary, as_json, lines)
    return EXIT_FAILED if result.failed_files else EXIT_OK


def _bulk_lines(result: Any, summary: dict[str, Any]) -> list[str]:
    lines = [f"FAILED {f['source_file']} -> {f['dest_file']}: {f['error']}" for f in summary["file_results"]
             if not f["success"]]  # fmt: skip
    skipped = len(summary["skipped_files"])
    lines.append(
        f"{result.successful_files}/{result.total_files} files converted"
        + (f" ({skipped} skipped as complete)" if skipped else "")
        + f", {result.failed_files} failed; {result.total_rows_in:,} rows in, {result.total_rows_out:,} rows out"
        + f" in {result.total_elapsed_seconds:.2f} s"
    )
    return lines
