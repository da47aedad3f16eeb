"""The result of a parallel pipeline run: upstream's PipelineResult plus what ran and what failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iterable.types import PipelineResult

__all__ = ["ParallelPipelineResult", "RecordError"]


@dataclass(frozen=True)
class RecordError:
    """A record ``process_func`` failed on: 0-based ``position`` in the source, exception type and message."""

    position: int
    type: str
    message: str

    def __str__(self) -> str:
        return f"record #{self.position + 1}: {self.type}: {self.message}"


class ParallelPipelineResult(PipelineResult):
    """iterabledata's :class:`~iterable.types.PipelineResult`, plus what ran and what failed.

    Attributes
    ----------
    parallel_mode : str
        ``"sequential"``, ``"thread"`` or ``"process"``: how the records ran.
    mode_reason : str
        Why that mode (the measurements, in auto mode).
    errors : list of RecordError
        The first ``iterable-dask.max-recorded-errors`` failures, by source position.
    """

    def __init__(self, *args: Any, parallel_mode: str, mode_reason: str, errors: list[RecordError], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.parallel_mode = parallel_mode
        self.mode_reason = mode_reason
        self.errors = errors

    def __repr__(self) -> str:
        return (
            f"ParallelPipelineResult(rows_processed={self.rows_processed}, exceptions={self.exceptions}, "
            f"nulls={self.nulls}, elapsed_seconds={self.elapsed_seconds:.3f}, parallel_mode={self.parallel_mode!r})"
        )
