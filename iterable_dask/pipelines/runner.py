"""The :class:`Pipeline` runner: upstream's sequential loop, auto mode's sample, and the parallel run.

A subclass of iterabledata's ``Pipeline``. With ``parallel=False`` it *is*
the upstream pipeline. With ``parallel=True`` it samples ``process_func`` in
the caller (auto mode), then either keeps going here or hands the rest of
the records to :class:`~iterable_dask.pipelines.cluster_run.ClusterRun`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from distributed.security import Security
from iterable.helpers.detect import open_iterable
from iterable.pipeline.core import Pipeline as _UpstreamPipeline
from iterable.types import PipelineResult, Row

from ..core import config
from ..core.cluster import cluster_capacity
from ..core.progress import ProgressBar
from ..io.atomic import atomic_target, new_job_token
from ..io.fs import is_url, local_input
from ..io.read import estimate_remaining
from .auto import ModeDecision, Timing, decide_mode, shipping_cost
from .cluster_run import ClusterRun
from .result import ParallelPipelineResult, RecordError
from .sources import ChainedSource, is_many
from .tasks import build_callable

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)

#: Records processed in the caller to time ``process_func`` in auto mode.
SAMPLE_RECORDS = 2000
SAMPLE_SECONDS = 0.25


class Pipeline(ClusterRun, _UpstreamPipeline):
    """iterabledata's ``Pipeline`` with a parallel mode; see :func:`pipeline` for the parameters."""

    def __init__(
        self,
        source: Any,
        destination: Any = None,
        process_func: Callable[[Row, dict[str, Any]], Row | None] | None = None,
        trigger_func: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
        trigger_on: int = 1000,
        final_func: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
        reset_iterables: bool = True,
        skip_nulls: bool = True,
        start_state: dict[str, Any] | None = None,
        batch_size: int = 1000,
        progress: Callable[[dict[str, Any]], None] | None = None,
        progress_interval: int = 1000,
        atomic: bool = False,
        *,
        parallel: bool = False,
        workers: int | None = None,
        parallel_mode: str | None = None,
        chunk_size: int | None = None,
        client: Any = None,
        scheduler: str | None = None,
        security: Security | None = None,
        retries: int | None = None,
        ordered: bool = True,
        merge_state: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
        setup: Callable[[], Callable[[Row, dict[str, Any]], Row | None]] | None = None,
        show_progress: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if process_func is None and setup is None:
            raise ValueError("process_func is required (or setup=, a factory returning it)")
        super().__init__(
            source, destination, process_func, trigger_func, trigger_on, final_func, reset_iterables,
            skip_nulls, start_state, batch_size, progress, progress_interval, atomic,
        )  # fmt: skip
        self.parallel = parallel
        self.workers = workers
        self.parallel_mode = config.resolve_parallel_mode(parallel_mode)
        self.chunk_size = config.resolve_chunk_size(chunk_size)
        self.client = client
        self.scheduler = scheduler
        self.security = security
        self.retries = config.resolve_retries(retries)
        self.ordered = ordered
        self.merge_state = merge_state
        self.setup = setup
        self.show_progress = show_progress
        self._user_func = process_func
        self._errors: list[RecordError] = []
        self._max_errors = int(config.get("max-recorded-errors"))
        self._destination_path = os.fspath(destination) if isinstance(destination, (str, os.PathLike)) else None
        self.storage_options = dict(storage_options or {})
        #: A source given as a URL: workers read its byte ranges there, the caller a local copy.
        self._source_url: str | None = None
        #: A source given as several files: the workers read (and group) them themselves.
        self._source_files: list[str] | None = None

    # -- the record function in the caller ------------------------------------

    def _caller_function(self) -> Callable[[Row, dict[str, Any]], Row | None]:
        return build_callable(self._user_func, self.setup)

    def _record_error(self, position: int, type_name: str, message: str) -> None:
        if len(self._errors) < self._max_errors:
            self._errors.append(RecordError(position, type_name, message))

    def _process_record(self, record: Row, state: dict[str, Any], stats: dict[str, Any], debug: bool) -> None:
        """Upstream's per-record step, also keeping the failure's position, type and message.

        An I/O error while writing (a full disk, a file size limit) fails the
        run: upstream would count it as one more failed record and go on,
        reporting success over an incomplete output.
        """
        try:
            result = self.process_func(record, state)
            self._write_result(result, stats)
        except OSError as e:
            if getattr(e, "_iterable_dask_write", False):
                raise
            self._record_failed(e, stats, debug)
        except Exception as e:
            self._record_failed(e, stats, debug)

    def _record_failed(self, e: Exception, stats: dict[str, Any], debug: bool) -> None:
        logger.error(f"Error processing record #{stats['rec_count'] + 1}: {e}", exc_info=debug)
        stats["exceptions"] += 1
        self._record_error(stats["rec_count"], type(e).__name__, str(e))
        if debug or self.atomic:
            raise e

    def _flush_batch(self) -> None:
        """Upstream's batch write; an I/O error is marked as the output's, so no handler takes it for a record's."""
        try:
            super()._flush_batch()
        except OSError as e:
            e._iterable_dask_write = True  # type: ignore[attr-defined]
            raise

    def _write_result(self, result: Row | None, stats: dict[str, Any]) -> None:
        try:
            super()._write_result(result, stats)
        except OSError as e:
            e._iterable_dask_write = True  # type: ignore[attr-defined]
            raise

    def _maybe_trigger(self, stats: dict[str, Any], state: dict[str, Any], debug: bool) -> None:
        """Upstream's trigger step, except that a failing write of the pending batch fails the run."""
        if stats["rec_count"] % self.trigger_on != 0 or self.trigger_func is None:
            return
        self._trigger(stats, state, debug)

    def _trigger(self, stats: dict[str, Any], state: dict[str, Any], debug: bool) -> None:
        try:
            self._flush_batch()
            self.trigger_func(stats, state)
        except Exception as e:
            if getattr(e, "_iterable_dask_write", False):
                raise
            logger.error(f"Error in trigger function at record #{stats['rec_count']}: {e}", exc_info=debug)
            if debug:
                raise

    # -- run ---------------------------------------------------------------------

    def _destination_atomic_filename(self) -> str | None:
        # A destination given as a path is already written under a temporary name.
        return None if self._destination_path is not None else super()._destination_atomic_filename()

    def run(self, debug: bool = False) -> PipelineResult:
        """Execute the pipeline; sequentially (exactly upstream) unless ``parallel=True``.

        A ``source`` or ``destination`` given as a path is opened here and closed
        at the end. Such a destination is always written under a temporary name
        and renamed on success, so a failed run (a failing write or close
        included) leaves the original file, or none, and no temporary.
        """
        source, destination = self.source, self.destination
        stack = contextlib.ExitStack()
        try:
            if is_many(source):  # a glob, a folder or a list: its files, one after another
                self.source = ChainedSource(source, self.storage_options)
                self._source_files = self.source.files
            elif isinstance(source, (str, os.PathLike)):
                path = os.fspath(source)
                if is_url(path):
                    self._source_url = path
                    path = stack.enter_context(local_input(path, self.storage_options))
                self.source = open_iterable(path)
            if self._destination_path is None:
                return self._run(debug)
            # A path (or URL): written under a temporary name and renamed (uploaded) when complete,
            # whatever atomic says, so a failed run leaves the old file, or none, and no temporary.
            with atomic_target(self._destination_path, new_job_token(), self.storage_options) as tmp:
                self.destination = open_iterable(tmp, mode="w")
                result = self._run(debug)
                opened, self.destination = self.destination, destination
                opened.close()  # a failing flush fails the run
                return result
        finally:
            for opened, given in ((self.source, source), (self.destination, destination)):
                if opened is not given and opened is not None:
                    with contextlib.suppress(Exception):
                        opened.close()
            self.source, self.destination = source, destination
            self._source_url = None
            self._source_files = None
            stack.close()

    def _run(self, debug: bool) -> PipelineResult:
        if not self.parallel:
            self.process_func = self._caller_function()
            return super().run(debug)
        time_start = time.time()
        stats: dict[str, Any] = {"rec_count": 0, "nulls": 0, "exceptions": 0, "time_start": time_start}
        state = self.start_state
        self._errors = []
        self._setup_atomic_destination()
        if self.reset_iterables:
            self._reset_iterables()
        self._batch = []
        self._can_bulk_write = bool(
            self.destination is not None
            and hasattr(self.destination, "write_bulk")
            and self.batch_size
            and self.batch_size > 1
        )
        bar = ProgressBar(None, "iterable-pipeline", unit="rec", enabled=self.show_progress)
        try:
            decision = self._run_parallel(state, stats, time_start, debug, bar)
        except Exception:
            self._close_atomic_destination()
            self._cleanup_temp_file()
            raise
        finally:
            bar.close()
        time_end = time.time()
        stats["time_end"] = time_end
        stats["duration"] = time_end - time_start
        self._close_atomic_destination()
        self._finalize_atomic()
        if self.final_func is not None:
            self.final_func(stats, state)
        return ParallelPipelineResult(
            rows_processed=stats["rec_count"],
            elapsed_seconds=stats["duration"],
            exceptions=stats["exceptions"],
            nulls=stats["nulls"],
            rec_count=stats["rec_count"],
            time_start=time_start,
            time_end=time_end,
            duration=stats["duration"],
            parallel_mode=decision.mode,
            mode_reason=decision.reason,
            errors=sorted(self._errors, key=lambda e: e.position),
        )

    def _run_parallel(
        self, state: dict[str, Any], stats: dict[str, Any], time_start: float, debug: bool, bar: ProgressBar
    ) -> ModeDecision:
        records = iter(self.source)
        if self.parallel_mode == "auto":
            self.process_func = self._caller_function()  # the sample runs here, in the caller
            decision = self._sample_and_decide(records, state, stats, time_start, debug, bar)
            if decision.mode == "process" and not self._picklable():
                decision = ModeDecision(
                    "sequential", f"{decision.reason}; but process_func cannot be pickled for worker processes"
                )
        else:
            decision = ModeDecision(self.parallel_mode, f"parallel_mode={self.parallel_mode!r} was asked for")
        if decision.mode == "sequential":
            try:
                for record in records:  # upstream's loop, from where the sample stopped
                    self._step(record, state, stats, time_start, debug, bar)
            finally:
                self._flush_batch()
                self._invoke_progress(stats, time_start)
            return decision
        self._run_on_cluster(decision.mode, records, state, stats, time_start, debug, bar)
        return decision

    def _step(
        self, record: Row, state: dict[str, Any], stats: dict[str, Any], time_start: float, debug: bool,
        bar: ProgressBar,
    ) -> None:  # fmt: skip
        """One record of upstream's loop, in the caller: process, count, report, trigger."""
        self._process_record(record, state, stats, debug)
        stats["rec_count"] += 1
        if stats["rec_count"] % self.progress_interval == 0:
            self._invoke_progress(stats, time_start)
        self._maybe_trigger(stats, state, debug)
        bar.update()

    def _sample_and_decide(
        self, records: Iterator[Row], state: dict[str, Any], stats: dict[str, Any], time_start: float,
        debug: bool, bar: ProgressBar,
    ) -> ModeDecision:  # fmt: skip
        """Process the first records here (for real), timing ``process_func``; then pick the mode."""
        timing = Timing()
        func = self.process_func
        sample_in: list[Row] = []
        sample_out: list[Any] = []

        def timed(record: Row, st: dict[str, Any]) -> Any:
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                result = func(record, st)
            finally:
                timing.wall += time.perf_counter() - w0
                timing.cpu += time.thread_time() - c0
                timing.records += 1
            if len(sample_in) < 200:
                sample_in.append(record)
                sample_out.append(result)
            return result

        self.process_func = timed
        deadline = time.perf_counter() + SAMPLE_SECONDS
        try:
            for record in records:
                self._step(record, state, stats, time_start, debug, bar)
                if stats["rec_count"] >= SAMPLE_RECORDS or time.perf_counter() > deadline:
                    break
        finally:
            self.process_func = func
        timing.ship = shipping_cost(sample_in, sample_out)
        remaining = estimate_remaining(self.source, stats["rec_count"])
        # First as if unlimited workers were already up: a function too cheap to gain even then
        # stays here without connecting to (or starting) any cluster.
        hopeful = decide_mode(timing, 10**6, self.chunk_size, remaining, True)
        if hopeful.mode == "sequential":
            return hopeful
        running, workers = cluster_capacity(self.client, self.scheduler, self.workers, self.security)
        return decide_mode(timing, workers, self.chunk_size, remaining, running)
