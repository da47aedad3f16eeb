"""The named steps of a parallel ``convert`` and ``bulk_convert``: check, plan, prepare, run, result.

:mod:`iterable_dask.conversion.api` tells each call as a short story of these
steps; each step is one thing, so a reader can follow the call without
holding its details.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iterable.types import FileConversionResult

from ..core.progress import call_progress
from ..io.atomic import sweep_temporaries
from ..io.fs import absolute, exists, is_url
from .checks import (
    check_infer_types,
    check_targets,
    is_complete,
    prepare_dest,
    remove_upstream_temporaries,
    sweep_stale_temporaries,
)
from .locations import discover, target_for
from .results import ParallelBulkConversionResult, ParallelConversionResult, parallel_result
from .run import NO_ESTIMATES, ConvertRun, Progress, as_result, bulk_totals, part_blocksize
from .tasks import ConvertOptions

__all__ = [
    "BulkPlan",
    "bulk_result",
    "check_convert",
    "convert_result",
    "plan_bulk",
    "prepare_targets",
    "run_convert",
]

logger = logging.getLogger(__name__)


def check_convert(fromfile: str, tofile: str, storage_options: dict[str, Any], infer_types: bool) -> None:
    """Before any work: the source exists, the target is a known, writable format not onto its source."""
    if not (exists(fromfile, storage_options) if is_url(fromfile) else os.path.isfile(fromfile)):
        raise FileNotFoundError(2, "Source file (fromfile) not found", fromfile)
    check_targets([(fromfile, tofile)], "tofile")
    if infer_types:
        check_infer_types([tofile])


def prepare_targets(targets: Iterable[str], resume: bool, atomic: bool) -> None:
    """Clear what earlier runs left for ``targets``: our stale temporaries (resume), iterabledata's (atomic)."""
    targets = list(targets)
    if resume:
        sweep_stale_temporaries(targets)
    if atomic:
        remove_upstream_temporaries(targets)


def run_convert(run: ConvertRun, o: ConvertOptions, blocksize: Any, storage_options: dict[str, Any]) -> Any:
    """Convert one file on the cluster: its result, or its error as a value; the run's temporaries swept."""
    parts = part_blocksize(blocksize, run.fromfile, run.client, storage_options)
    try:
        return as_result(run.run(o, parts), run.fromfile, run.tofile)
    finally:
        sweep_temporaries([os.path.dirname(run.tofile)], run.job)


def convert_result(out: Any, fromfile: str, tofile: str, progress: Progress | None, start: float) -> Any:
    """``convert``'s result (or its error, raised), with iterabledata's warning and last progress call."""
    if isinstance(out, Exception):
        raise out
    result = parallel_result(out, elapsed=time.time() - start)
    if result.rows_in == 0:
        logger.warning("%s has no records: wrote an empty %s", fromfile, tofile)
    stats = {"rows_read": result.rows_in, "rows_written": result.rows_out, "elapsed": result.elapsed_seconds}
    call_progress(progress, {**stats, **NO_ESTIMATES})
    return result


@dataclass(frozen=True)
class BulkPlan:
    """``bulk_convert``'s sources and their targets, in order."""

    pairs: list[tuple[str, str]]
    storage_options: dict[str, Any]

    def skipped(self, resume: bool) -> set[int]:
        """Indices of the sources whose targets are complete (with ``resume``)."""
        storage_options = self.storage_options
        return {i for i, (src, dst) in enumerate(self.pairs) if resume and is_complete(src, dst, storage_options)}

    def todo(self, skipped: set[int]) -> list[tuple[int, str, str]]:
        """``(index, source, target)`` to convert, absolute: the workers may run in another directory."""
        return [(i, absolute(src), absolute(dst)) for i, (src, dst) in enumerate(self.pairs) if i not in skipped]


def plan_bulk(
    source: str,
    dest: str,
    pattern: str | None,
    to_ext: str | None,
    storage_options: dict[str, Any],
    strict: bool,
    infer_types: bool,
) -> BulkPlan | None:
    """The sources and targets, checked and ``dest`` created; None when nothing matches (``strict`` raises)."""
    files = discover(source, storage_options)
    if not files:
        if strict:
            raise FileNotFoundError(2, "No files match the source (a glob, a directory or a file)", source)
        logger.warning("No files found matching source: %s", source)  # iterabledata's word, and its empty result
        return None
    prepare_dest(dest, storage_options)
    pairs = [(f, target_for(f, dest, pattern, to_ext)) for f in files]
    check_targets(pairs, "pattern" if pattern else "to_ext")
    if infer_types:
        check_infer_types([t for _, t in pairs])
    return BulkPlan(pairs, storage_options)


def bulk_result(
    pairs: list[tuple[str, str]], skipped: set[int], outcomes: dict[int, Any], start: float
) -> ParallelBulkConversionResult:
    """One ``FileConversionResult`` per source, in order, and iterabledata's totals over them."""
    results = []
    for i, (src, dst) in enumerate(pairs):
        value = outcomes.get(i) if i not in skipped else ParallelConversionResult(0, 0, 0.0, skipped=True)
        if isinstance(value, Exception):
            results.append(FileConversionResult(src, dst, None, value))
        else:
            results.append(FileConversionResult(src, dst, parallel_result(value)))
    return ParallelBulkConversionResult(
        **bulk_totals(results),
        total_elapsed_seconds=time.time() - start,
        skipped_files=[pairs[i][0] for i in sorted(skipped)],
    )
