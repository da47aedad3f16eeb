"""``iterable-dask pipeline``: a function imported by name, run over every record of a source."""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from typing import Any

import click
import cloudpickle

from ..pipelines import pipeline
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
from .report import emit, pipeline_summary
from .session import session

__all__ = ["load_function", "pipeline_command"]

_INSTALLED = {os.path.realpath(p) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                                            sysconfig.get_paths()["stdlib"])}  # fmt: skip


def _installed(module: Any) -> bool:
    path = getattr(module, "__file__", None)
    if not path:
        return True  # built in
    real = os.path.realpath(path)
    return any(real.startswith(root + os.sep) for root in _INSTALLED)


def load_function(spec: str) -> Any:
    """Import ``module:function`` (or ``module:Class``, ``module:obj.attr``) with the current folder on the path.

    A function from a module of your own (not an installed package) is
    pickled by value, so workers started elsewhere, which cannot import
    your module, still get it.

    Examples
    --------
    >>> load_function("json:dumps").__name__
    'dumps'
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageProblem(f"--func must be module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageProblem(f"cannot import module {module_name!r} of --func {spec}: {e}") from e
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageProblem(f"module {module_name!r} has no {attribute!r} (--func {spec})") from None
    if not callable(target):
        raise UsageProblem(f"--func {spec} is not callable")
    if not _installed(module):
        cloudpickle.register_pickle_by_value(module)
    return target


@click.command("pipeline")
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DEST")
@click.option(
    "--func",
    "func_spec",
    required=True,
    metavar="MODULE:FUNCTION",
    help="process_func(record, state) -> record or None; a class is instantiated once per worker.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "thread", "process"]),
    default="auto",
    show_default=True,
    help="thread: I/O-bound functions; process: CPU-bound; auto: timed on the first records.",
)
@click.option("--chunk-size", type=click.IntRange(min=1), default=None, help="Records per task.")
@cluster_options
@click.option("--retries", type=click.IntRange(min=0), default=None, help="Retries of a chunk lost to a failure.")
@click.option("--unordered", is_flag=True, help="Write results as chunks finish, not in source order.")
@storage_option
@progress_option
@output_options
def pipeline_command(
    source: str,
    dest: str,
    func_spec: str,
    mode: str,
    chunk_size: int | None,
    workers: int | None,
    scheduler: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    retries: int | None,
    unordered: bool,
    storage_options: tuple[str, ...],
    progress: bool | None,
    as_json: bool,
) -> int:  # fmt: skip
    """Run --func over every record of SRC and write what it returns to DEST.

    SRC may be a file, a glob or a folder (read in order), local or a URL;
    DEST is written under a temporary name and renamed when the run succeeds.
    The function is imported by name with the current folder on the import
    path. Records it fails on are counted and named; the exit code is then 1.

    \b
    Examples:
      iterable-dask pipeline in.csv out.jsonl --func mytransforms:clean --mode process
      iterable-dask pipeline 'logs/*.jsonl.gz' out.parquet --func mytransforms:Enricher --scheduler tcp://127.0.0.1:8786
    """
    func = load_function(func_spec)
    options = parse_storage_options(storage_options)
    if "://" not in source and not any(c in source for c in "*?[") and not os.path.exists(source):
        raise FileNotFoundError(2, "No such file or folder", source)
    explicit = mode != "auto" or scheduler is not None
    cluster_mode = "thread" if mode == "thread" else "process"
    security = security_from(tls_ca_file, tls_cert, tls_key)
    with session(scheduler, workers, [dest], mode=cluster_mode, start=explicit, security=security) as run:
        result = pipeline(
            source, dest, func, parallel=True, parallel_mode=mode, chunk_size=chunk_size, workers=workers,
            client=run.client, retries=retries, ordered=not unordered, show_progress=show_progress(progress),
            storage_options=options or None,
        )  # fmt: skip
    summary = pipeline_summary(result)
    lines = [f"  failed: {e}" for e in getattr(result, "errors", [])[:20]]
    lines.append(
        f"{result.rows_processed:,} records processed ({summary['parallel_mode']}), {result.exceptions} failed, "
        f"{result.nulls} dropped, in {result.elapsed_seconds:.2f} s -> {dest}"
    )
    emit(summary, as_json, lines)
    return EXIT_FAILED if result.exceptions else EXIT_OK
