""":func:`pipeline`: iterabledata's ``pipeline()`` with ``process_func`` on Dask workers.

A drop-in for :func:`iterable.pipeline.pipeline`: every upstream parameter,
with the same default and meaning, plus the parallel options. With
``parallel=False`` it *is* the upstream pipeline. With ``parallel=True``
records travel to the workers in chunks (or the workers read their own byte
ranges of the source file), ``process_func`` runs there, and the caller
writes the results to ``destination`` in source order, keeping only a small
window of chunks in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distributed.security import Security
from iterable.types import PipelineResult, Row

from .runner import Pipeline

__all__ = ["pipeline"]


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
    security: Security | None = None,
    retries: int | None = None,
    ordered: bool = True,
    merge_state: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    setup: Callable[[], Callable[[Row, dict[str, Any]], Row | None]] | None = None,
    show_progress: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> PipelineResult:
    """Run ``process_func`` over every record of ``source``, in parallel on Dask when asked.

    The first thirteen parameters are iterabledata's :func:`iterable.pipeline.pipeline`
    ones, with the same defaults and meaning; ``parallel=False`` runs exactly it.

    Parameters
    ----------
    source, destination : BaseIterable or path
        Where records come from and go (``destination`` may be None). Paths
        are opened with ``open_iterable`` and closed at the end; a destination
        path is always written under a temporary name and renamed on success,
        so a failure (a failing write or close included) leaves the original
        untouched.
        ``source`` may name many files: a glob (``"logs/*.jsonl.gz"``), a folder or a
        list of paths, read one after another in that order; in parallel the
        workers read them themselves, small files grouped by bytes and big ones
        split. Either may be an fsspec URL (``"s3://bucket/in.csv"``): a source is
        fetched to a local copy for the caller while workers read its byte
        ranges; a destination is written locally and uploaded whole when the
        run succeeds (always atomic).
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
    security : distributed.security.Security, optional
        TLS certificates for connecting to ``scheduler`` (a ``"tls://..."`` address).
    retries : int, default ``iterable-dask.retries``
        Times a failed chunk task (for example on a killed worker) is retried.
    ordered : bool, default True
        Write results in source order; False writes chunks as they complete
        (state merges and triggers still follow source order).
    merge_state : callable, optional
        ``merge_state(merged, task_state) -> merged`` replaces the default rule of
        :mod:`iterable_dask.pipelines.state` (numbers add, lists extend, counters and dicts merge).
    setup : callable, optional
        Zero-argument factory run once per worker that returns the record function.
    show_progress : bool, default False
        A progress bar (tqdm in a terminal, a widget in Jupyter).
    storage_options : dict, optional
        fsspec options for URL sources and destinations.

    Returns
    -------
    ParallelPipelineResult or PipelineResult
        Upstream's result (``parallel=False``) or its subclass with
        ``parallel_mode``, ``mode_reason`` and ``errors`` (position, type, message).

    Raises
    ------
    UnpicklableFunctionError
        ``process_func`` cannot be shipped to worker processes (before any work starts).
    ClusterConnectionError
        ``scheduler`` did not answer, or refused the connection.
    SchedulerLostError
        The scheduler went away mid-run; a destination path is left as it was (no partial output).

    Examples
    --------
    >>> from iterable import open_iterable
    >>> import iterable_dask
    >>> def clean(record, state):
    ...     state["n"] = state.get("n", 0) + 1
    ...     return {**record, "note": record["note"].strip()}
    >>> with open_iterable("in.csv") as src, open_iterable("out.jsonl", mode="w") as dst:
    ...     result = iterable_dask.pipeline(src, dst, clean, parallel=True, parallel_mode="process")
    >>> result.parallel_mode, result.rows_processed, result.exceptions
    ('process', 100, 0)
    """
    if start_state is None:
        start_state = {}
    runner = Pipeline(
        source, destination, process_func, trigger_func, trigger_on, final_func, reset_iterables,
        skip_nulls, start_state, batch_size, progress, progress_interval, atomic,
        parallel=parallel, workers=workers, parallel_mode=parallel_mode, chunk_size=chunk_size, client=client,
        scheduler=scheduler, security=security, retries=retries, ordered=ordered, merge_state=merge_state, setup=setup,
        show_progress=show_progress,
        storage_options=storage_options,
    )  # fmt: skip
    return runner.run(debug)
