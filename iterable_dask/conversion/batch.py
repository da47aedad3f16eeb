"""Many files per task: ``bulk_convert`` plans its tasks by bytes, so cost grows with data, not file count.

A task (:class:`FileBatch`) converts a run of consecutive files, each with its
own atomic output, its own result or error, and its own retries: a transient
failure (an I/O error, memory) is retried in place, a data error is not
retried at all. Files are grouped as Spark packs splits: each counts its size
plus an open cost (``iterable-dask.files.open-cost``), and a task holds up to
``iterable-dask.files.target-bytes``, but less when the data is small, so every
worker thread still gets several tasks.

A worker that is closing (its scheduler lost) finishes the file it is on and
converts no more of its batch: nobody waits for the result any more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..core import config
from ..core.exceptions import FileConversionError
from ..core.lost import worker_stopping
from ..core.retry import backoff
from ..core.runs import group_runs
from ..io.fs import file_size
from .tasks import FileTask

__all__ = ["FileBatch", "WorkerStoppingError", "plan_batches"]


def _attempt(task: FileTask, retries: int) -> Any:
    """``task()``; a raised (transient) failure is retried ``retries`` times, then returned as the file's error."""
    for attempt in range(retries + 1):
        try:
            return task()
        except FileConversionError as e:  # FileTask raises only what may pass on a retry
            error = e
            if attempt < retries and not worker_stopping():
                time.sleep(backoff(attempt))
            else:
                break
    tries = f" (failed {attempt + 1} attempts)" if attempt else ""
    return FileConversionError(f"{error.message}{tries}", error.source, error.target, error.error_type)


class WorkerStoppingError(RuntimeError):
    """A batch stopped early on a closing worker; no one receives it (the scheduler reruns the batch if alive)."""


@dataclass(frozen=True)
class FileBatch:
    """Convert several files on one worker, one after another; a list of results or errors, in order."""

    tasks: tuple[FileTask, ...]
    retries: int = 0

    def __call__(self) -> list[Any]:
        out = []
        for task in self.tasks:
            if out and worker_stopping():
                raise WorkerStoppingError(f"{self!r}: the worker is closing; {len(out)} files converted")
            out.append(_attempt(task, self.retries))
        return out

    def __repr__(self) -> str:  # what the dashboard shows of the task
        first = self.tasks[0].source.rsplit("/", 1)[-1] if self.tasks else ""
        more = f" and {len(self.tasks) - 1} more" if len(self.tasks) > 1 else ""
        return f"FileBatch({first}{more})"


def plan_batches(
    todo: list[tuple[int, str, str]], threads: int, storage_options: dict[str, Any] | None = None
) -> Iterator[list[tuple[int, str, str]]]:
    """Runs of consecutive ``(index, source, target)`` whose bytes (plus an open cost each) fill one task.

    At least :data:`~iterable_dask.core.runs.TASKS_PER_THREAD` tasks per worker thread, more where
    ``iterable-dask.files.target-bytes`` caps a task, balanced by bytes
    (:mod:`iterable_dask.core.runs`); a file bigger than a task is a task of its own.
    """
    target, open_cost = config.file_grouping()
    weights: list[int | None] = []
    for _, source, _ in todo:
        try:
            weights.append(file_size(source, storage_options) + open_cost)
        except (OSError, ValueError):  # its task reports what is wrong with it
            weights.append(open_cost)
    yield from group_runs(todo, weights, target, threads)
