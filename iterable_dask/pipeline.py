"""``pipeline(parallel=True)``: iterabledata's pipeline with ``process_func`` on Dask workers.

A drop-in for :func:`iterable.pipeline.pipeline`: every upstream parameter,
with the same default and meaning, plus the parallel options. With
``parallel=False`` it *is* the upstream pipeline. With ``parallel=True``
records travel to the workers in chunks (or the workers read their own byte
ranges of the source file), ``process_func`` runs there, and the caller
writes the results to ``destination`` in source order, keeping only a small
window of chunks in flight.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator
from itertools import accumulate, islice
from typing import Any

import cloudpickle
from iterable.helpers.detect import open_iterable
from iterable.pipeline.core import Pipeline as _UpstreamPipeline
from iterable.types import PipelineResult, Row

from . import config
from .atomic import atomic_target, new_job_token
from .auto import ModeDecision, Timing, decide_mode, shipping_cost
from .chunks import pack, unpack
from .cluster import cluster_capacity, get_client
from .exceptions import UnpicklableFunctionError
from .pipeline_result import ParallelPipelineResult, RecordError
from .pipeline_tasks import ChunkOutcome, ChunkTask, build_callable, local_functions
from .progress import ProgressBar
from .read import estimate_remaining, plan_source_iterable
from .state import merge_state as default_merge_state
from .window import windowed_results

__all__ = ["ParallelPipelineResult", "Pipeline", "RecordError", "pipeline"]

logger = logging.getLogger(__name__)

#: Records processed in the caller to time ``process_func`` in auto mode.
SAMPLE_RECORDS = 2000
SAMPLE_SECONDS = 0.25
#: Function and state blobs up to this size travel inside each task instead of being scattered.
_INLINE_BYTES = 64 * 1024


def _function_name(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _chunks(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while True:
        chunk = list(islice(iterator, size))
        if not chunk:
            return
        yield chunk


class Pipeline(_UpstreamPipeline):
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
        retries: int | None = None,
        ordered: bool = True,
        merge_state: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
        setup: Callable[[], Callable[[Row, dict[str, Any]], Row | None]] | None = None,
        show_progress: bool = False,
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
        self.retries = config.resolve_retries(retries)
        self.ordered = ordered
        self.merge_state = merge_state
        self.setup = setup
        self.show_progress = show_progress
        self._user_func = process_func
        self._errors: list[RecordError] = []
        self._max_errors = int(config.get("max-recorded-errors"))
        self._destination_path = os.fspath(destination) if isinstance(destination, (str, os.PathLike)) else None

    # -- the record function in the caller ------------------------------------

    def _caller_function(self) -> Callable[[Row, dict[str, Any]], Row | None]:
        return build_callable(self._user_func, self.setup)

    def _record_error(self, position: int, type_name: str, message: str) -> None:
        if len(self._errors) < self._max_errors:
            self._errors.append(RecordError(position, type_name, message))

    def _process_record(self, record: Row, state: dict[str, Any], stats: dict[str, Any], debug: bool) -> None:
        """Upstream's per-record step, also keeping the failure's position, type and message."""
        try:
            result = self.process_func(record, state)
            self._write_result(result, stats)
        except Exception as e:
            logger.error(f"Error processing record #{stats['rec_count'] + 1}: {e}", exc_info=debug)
            stats["exceptions"] += 1
            self._record_error(stats["rec_count"], type(e).__name__, str(e))
            if debug or self.atomic:
                raise

    # -- run ---------------------------------------------------------------------

    def _destination_atomic_filename(self) -> str | None:
        # A destination given as a path is already written under a temporary name.
        return None if self._destination_path is not None else super()._destination_atomic_filename()

    def run(self, debug: bool = False) -> PipelineResult:
        """Execute the pipeline; sequentially (exactly upstream) unless ``parallel=True``.

        A ``source`` or ``destination`` given as a path is opened here and closed
        at the end; with ``atomic=True`` such a destination is written under a
        temporary name and renamed on success, so a failed run leaves the
        original file untouched.
        """
        source, destination = self.source, self.destination
        try:
            if isinstance(source, (str, os.PathLike)):
                self.source = open_iterable(os.fspath(source))
            if self._destination_path is None:
                return self._run(debug)
            if not self.atomic:
                self.destination = open_iterable(self._destination_path, mode="w")
                return self._run(debug)
            with atomic_target(self._destination_path, new_job_token()) as tmp:
                self.destination = open_iterable(tmp, mode="w")
                try:
                    return self._run(debug)
                finally:
                    self.destination.close()
        finally:
            for opened, given in ((self.source, source), (self.destination, destination)):
                if opened is not given and opened is not None:
                    with contextlib.suppress(Exception):
                        opened.close()
            self.source, self.destination = source, destination

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
                    self._process_record(record, state, stats, debug)
                    stats["rec_count"] += 1
                    if stats["rec_count"] % self.progress_interval == 0:
                        self._invoke_progress(stats, time_start)
                    self._maybe_trigger(stats, state, debug)
                    bar.update()
            finally:
                self._flush_batch()
                self._invoke_progress(stats, time_start)
            return decision
        self._run_on_cluster(decision.mode, records, state, stats, time_start, debug, bar)
        return decision

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
                self._process_record(record, state, stats, debug)
                stats["rec_count"] += 1
                if stats["rec_count"] % self.progress_interval == 0:
                    self._invoke_progress(stats, time_start)
                self._maybe_trigger(stats, state, debug)
                bar.update()
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
        running, workers = cluster_capacity(self.client, self.scheduler, self.workers)
        return decide_mode(timing, workers, self.chunk_size, remaining, running)

    @staticmethod
    def _inline_or_scatter(client: Any, blob: bytes) -> Any:
        """A small blob rides inside each task (no dependency to track); a large one is scattered once."""
        return client.scatter(blob, broadcast=True, hash=False) if len(blob) > _INLINE_BYTES else blob

    def _picklable(self) -> bool:
        try:
            cloudpickle.dumps((self._user_func, self.setup), protocol=5)
        except Exception:
            return False
        return True

    def _shipped_function(self, client: Any) -> tuple[bytes, str]:
        """cloudpickle ``(process_func, setup)`` once; a clear error if it cannot be shipped."""
        try:
            blob = cloudpickle.dumps((self._user_func, self.setup), protocol=5)
        except Exception as e:
            if str(client.scheduler.address).startswith("inproc://"):
                token = f"local-{id(self._user_func)}-{id(self.setup)}"
                local_functions[token] = (self._user_func, self.setup)
                return b"", token
            name = _function_name(self.setup if self.setup is not None else self._user_func)
            raise UnpicklableFunctionError(
                f"process_func {name!r} cannot be pickled to ship it to worker processes: "
                f"{type(e).__name__}: {e}. Define it at module level, keep unpicklable objects (open files, "
                "locks, connections) out of its closure and create them in a class __init__ or setup=, "
                "or use parallel_mode='thread'."
            ) from e
        return blob, hashlib.sha1(blob).hexdigest()

    def _chunk_sources(self, records: Iterator[Row], sampled: int) -> Iterator[Any]:
        """Partition readers the workers run themselves, or chunks the caller reads and packs."""
        if sampled == 0 and self.reset_iterables:
            readers = plan_source_iterable(self.source, self.chunk_size)
            if readers is not None:
                return iter(readers)
        return (pack(chunk) for chunk in _chunks(records, self.chunk_size))

    def _run_on_cluster(
        self, mode: str, records: Iterator[Row], state: dict[str, Any], stats: dict[str, Any],
        time_start: float, debug: bool, bar: ProgressBar,
    ) -> None:  # fmt: skip
        client = get_client(self.client, self.scheduler, workers=self.workers, mode=mode)
        blob, token = self._shipped_function(client)
        base = copy.deepcopy(state)  # what every task starts from
        func_ref = self._inline_or_scatter(client, blob)
        state_ref = self._inline_or_scatter(client, pickle.dumps(base, protocol=5))
        task = ChunkTask(
            skip_nulls=self.skip_nulls,
            keep_results=self.destination is not None,
            encode="jsonl" if self._writes_plain_jsonl() else None,
            raise_errors=debug or self.atomic,
            max_failures=self._max_errors,
        )
        window = max(2, sum(client.nthreads().values()) * int(config.get("in-flight-per-worker")))
        run_id = f"iterable-pipeline-chunk-{hashlib.sha1(f'{token}{time.time_ns()}'.encode()).hexdigest()[:16]}"
        offset = stats["rec_count"]  # records already processed here, in the sample
        results = windowed_results(
            client, task, self._chunk_sources(records, offset), func_ref, token, state_ref,
            window=window, key_prefix=run_id, retries=self.retries, ordered=self.ordered,
        )  # fmt: skip
        unmerged: dict[int, ChunkOutcome] = {}
        next_merge = 0
        counts: list[int] = []
        failures: list[tuple[int, Any]] = []
        try:
            for index, packed in results:
                outcome: ChunkOutcome = unpack(packed)[0]
                counts.extend([0] * (index + 1 - len(counts)))
                counts[index] = outcome.count
                failures.extend((index, f) for f in outcome.failures)
                self._write_chunk(outcome, stats)
                unmerged[index] = outcome
                while next_merge in unmerged:  # merges and triggers follow source order
                    self._merge_chunk(unmerged.pop(next_merge), base, state, stats, time_start, debug, bar)
                    next_merge += 1
        finally:
            results.close()
            self._flush_batch()
            self._invoke_progress(stats, time_start)
            local_functions.pop(token, None)
        starts = list(accumulate(counts, initial=offset))
        for index, failure in failures:
            self._record_error(starts[index] + failure.index, failure.type, failure.message)

    def _writes_plain_jsonl(self) -> bool:
        """Whether results can arrive as JSON Lines text, written as is (no hooks, no nulls to write)."""
        from iterable.datatypes.jsonl import JSONLinesIterable

        dest = self.destination
        return (
            type(dest) is JSONLinesIterable
            and not getattr(dest, "_validation_hooks", None)
            and self.skip_nulls
            and self._can_bulk_write
            and getattr(dest, "fobj", None) is not None
        )

    def _write_chunk(self, outcome: ChunkOutcome, stats: dict[str, Any]) -> None:
        if outcome.text is not None:
            self._flush_batch()
            self.destination.fobj.write(outcome.text)
            return
        if outcome.results is None:
            stats["nulls"] += outcome.nulls
            return
        if self._can_bulk_write and (self.skip_nulls or not outcome.nulls):
            self._batch.extend(outcome.results)
            if len(self._batch) >= self.batch_size:
                self._flush_batch()
            return
        for result in outcome.results:
            self._write_result(result, stats)

    def _merge_chunk(
        self, outcome: ChunkOutcome, base: dict[str, Any], state: dict[str, Any], stats: dict[str, Any],
        time_start: float, debug: bool, bar: ProgressBar,
    ) -> None:  # fmt: skip
        if self.merge_state is not None:
            merged = self.merge_state(state, outcome.state)
            if merged is not state:
                state.clear()
                state.update(merged)
        else:
            default_merge_state(state, outcome.state, base)
        if outcome.exceptions:
            stats["exceptions"] += outcome.exceptions
            logger.error("%d records failed in a chunk processed on %s", outcome.exceptions, outcome.worker)
        before = stats["rec_count"]
        stats["rec_count"] = after = before + outcome.count
        bar.update(outcome.count)
        if after // self.progress_interval > before // self.progress_interval:
            self._invoke_progress(stats, time_start)
        if self.trigger_func is not None:
            for _ in range(after // self.trigger_on - before // self.trigger_on):
                try:
                    self._flush_batch()
                    self.trigger_func(stats, state)
                except Exception as e:
                    logger.error(f"Error in trigger function at record #{stats['rec_count']}: {e}", exc_info=debug)
                    if debug:
                        raise


def pipeline(
    source: Any,
    destination: Any,
    process_func: Callable[[Row, dict[str, Any]], Row | None] | None,
    trigger_func: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    trigger_on: int = 1000,
    final_func: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    reset_iterables: bool = True,
    skip_nulls: bool = True,
    start_state: dict[str, Any] | None = None,
    debug: bool = False,
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
    retries: int | None = None,
    ordered: bool = True,
    merge_state: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    setup: Callable[[], Callable[[Row, dict[str, Any]], Row | None]] | None = None,
    show_progress: bool = False,
) -> PipelineResult:
    """Run ``process_func`` over every record of ``source``, in parallel on Dask when asked.

    The first thirteen parameters are iterabledata's :func:`iterable.pipeline.pipeline`
    ones, with the same defaults and meaning; ``parallel=False`` runs exactly it.

    Parameters
    ----------
    source, destination : BaseIterable or path
        Where records come from and go (``destination`` may be None). Paths
        are opened with ``open_iterable`` and closed at the end; with
        ``atomic=True`` a destination path is written under a temporary name
        and renamed on success, so a failure leaves the original untouched.
        (A destination iterable you opened for writing was already emptied
        when you opened it.)
    process_func : callable or class
        ``process_func(record, state) -> record or None``. A class is
        instantiated once per worker (load a model in ``__init__``) and its
        instance called per record.
    trigger_func, trigger_on, final_func, reset_iterables, skip_nulls, start_state,
    debug, batch_size, progress, progress_interval, atomic
        As upstream. In parallel mode ``trigger_func`` and ``progress`` run in
        the caller after whole chunks, with the merged state; ``debug=True``
        re-raises the first failure with its original type and the worker's
        traceback; ``atomic=True`` is all-or-nothing.
    parallel : bool, default False
        Process on Dask workers.
    workers : int, optional
        Workers of the embedded cluster (default ``iterable-dask.workers``, else CPU count).
    parallel_mode : {"auto", "thread", "process"}, default ``iterable-dask.parallel-mode``
        ``thread``: threads in one process (I/O-bound functions); ``process``:
        worker processes (CPU-bound; the function ships with cloudpickle);
        ``auto``: time the function on the first records and choose sequential,
        thread or process; the result's ``parallel_mode`` and ``mode_reason`` say which and why.
    chunk_size : int, default ``iterable-dask.chunk-size``
        Records per task.
    client, scheduler : optional
        Run on this cluster (see :func:`iterable_dask.get_client`).
    retries : int, default ``iterable-dask.retries``
        Times a failed chunk task (for example on a killed worker) is retried.
    ordered : bool, default True
        Write results in source order; False writes chunks as they complete
        (state merges and triggers still follow source order).
    merge_state : callable, optional
        ``merge_state(merged, task_state) -> merged`` replaces the default rule of
        :mod:`iterable_dask.state` (numbers add, lists extend, counters and dicts merge).
    setup : callable, optional
        Zero-argument factory run once per worker that returns the record function.
    show_progress : bool, default False
        A progress bar (tqdm in a terminal, a widget in Jupyter).

    Returns
    -------
    ParallelPipelineResult or PipelineResult
        Upstream's result (``parallel=False``) or its subclass with
        ``parallel_mode``, ``mode_reason`` and ``errors`` (position, type, message).

    Raises
    ------
    UnpicklableFunctionError
        ``process_func`` cannot be shipped to worker processes (before any work starts).

    Examples
    --------
    >>> from iterable import open_iterable
    >>> import iterable_dask
    >>> def clean(record, state):
    ...     state["n"] = state.get("n", 0) + 1
    ...     return {**record, "name": record["name"].strip()}
    >>> with open_iterable("in.csv") as src, open_iterable("out.jsonl", mode="w") as dst:  # doctest: +SKIP
    ...     result = iterable_dask.pipeline(src, dst, clean, parallel=True, parallel_mode="process")
    >>> result.parallel_mode  # doctest: +SKIP
    'process'
    """
    if start_state is None:
        start_state = {}
    runner = Pipeline(
        source, destination, process_func, trigger_func, trigger_on, final_func, reset_iterables,
        skip_nulls, start_state, batch_size, progress, progress_interval, atomic,
        parallel=parallel, workers=workers, parallel_mode=parallel_mode, chunk_size=chunk_size, client=client,
        scheduler=scheduler, retries=retries, ordered=ordered, merge_state=merge_state, setup=setup,
        show_progress=show_progress,
    )  # fmt: skip
    return runner.run(debug)
