"""The results of parallel conversions: iterabledata's result classes, plus what ``resume`` skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from iterable.types import BulkConversionResult, ConversionResult

__all__ = ["ParallelBulkConversionResult", "ParallelConversionResult", "parallel_result"]


@dataclass
class ParallelConversionResult(ConversionResult):
    """iterabledata's :class:`~iterable.types.ConversionResult`; ``skipped`` when ``resume`` found it done."""

    skipped: bool = False


@dataclass
class ParallelBulkConversionResult(BulkConversionResult):
    """iterabledata's :class:`~iterable.types.BulkConversionResult`, plus the sources ``resume`` skipped.

    A skipped file counts as successful, with a ``ParallelConversionResult``
    of zero rows whose ``skipped`` is True.
    """

    skipped_files: list[str] = field(default_factory=list)


def parallel_result(result: ConversionResult, elapsed: float | None = None) -> ParallelConversionResult:
    if isinstance(result, ParallelConversionResult) and elapsed is None:
        return result
    return ParallelConversionResult(
        rows_in=result.rows_in,
        rows_out=result.rows_out,
        elapsed_seconds=result.elapsed_seconds if elapsed is None else elapsed,
        bytes_read=result.bytes_read,
        bytes_written=result.bytes_written,
        errors=list(result.errors),
    )
