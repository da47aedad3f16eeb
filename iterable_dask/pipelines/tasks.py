"""The worker side of the parallel pipeline: one task processes one chunk of records.

A task receives the chunk (a partition reader that opens the source file on
the worker, or a :class:`~iterable_dask.core.chunks.PackedChunk` the caller read),
the cloudpickled ``process_func`` (scattered once, unpickled once per
worker), and a pickled copy of ``start_state``. It returns one
:class:`~iterable_dask.core.chunks.PackedChunk` holding a :class:`ChunkOutcome`.
"""

from __future__ import annotations

import inspect
import pickle
import threading
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..core.chunks import PackedChunk, pack, unpack

__all__ = ["ChunkOutcome", "ChunkTask", "RecordFailure", "worker_callable"]

_lock = threading.Lock()
_process_cache: dict[str, Any] = {}
#: Functions that cannot be pickled, for in-process (thread mode) clusters only.
local_functions: dict[str, tuple[Any, Any]] = {}


@dataclass
class RecordFailure:
    """A record ``process_func`` failed on: its position in the chunk, the exception's type and message."""

    index: int
    type: str
    message: str


@dataclass
class ChunkOutcome:
    """What a chunk task sends back (as one pickle)."""

    count: int
    results: list[Any] | None
    state: dict[str, Any]
    failures: list[RecordFailure] = field(default_factory=list)
    exceptions: int = 0
    nulls: int = 0
    worker: str | None = None
    text: str | None = None


def _cache() -> dict[str, Any]:
    """The per-worker cache (one per Dask worker; per process outside a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:
        return _process_cache
    cache = getattr(worker, "_iterable_dask_callables", None)
    if cache is None:
        cache = {}
        worker._iterable_dask_callables = cache
    return cache


def worker_callable(blob: bytes, token: str) -> Any:
    """The record function for ``token``, built once per worker.

    ``blob`` is a cloudpickle of ``(process_func, setup)``. A class is
    instantiated once (its ``__init__`` is where a model is loaded); a
    ``setup`` factory is called once and must return the function.
    """
    cache = _cache()
    func = cache.get(token)
    if func is not None:
        return func
    with _lock:
        func = cache.get(token)
        if func is None:
            process_func, setup = cloudpickle.loads(blob) if blob else local_functions[token]
            func = build_callable(process_func, setup)
            cache[token] = func
    return func


def build_callable(process_func: Any, setup: Any) -> Any:
    """Instantiate a class ``process_func`` or call a ``setup`` factory; else return ``process_func``."""
    if setup is not None:
        func = setup()
        if not callable(func):
            raise TypeError(f"setup() must return the record function; it returned {type(func).__name__}")
        return func
    if inspect.isclass(process_func):
        return process_func()
    return process_func


def jsonl_text(records: list[Any]) -> str:
    """The text iterabledata's JSON Lines ``write_bulk`` writes for ``records``."""
    import io

    from iterable.datatypes.jsonl import JSONLinesIterable

    buffer = io.StringIO()
    writer = JSONLinesIterable(stream=buffer, mode="w")
    writer.write_bulk(records)
    return buffer.getvalue()


@dataclass(frozen=True)
class ChunkTask:
    """Process one chunk: picklable, so Dask can rerun it on another worker."""

    skip_nulls: bool = True
    keep_results: bool = True
    raise_errors: bool = False
    max_failures: int = 100
    #: "jsonl": send the results back as the exact text iterabledata's JSON Lines writer writes.
    encode: str | None = None

    def __call__(self, source: Any, blob: bytes, token: str, state_blob: bytes) -> PackedChunk:
        records = unpack(source) if isinstance(source, PackedChunk) else source()
        func = worker_callable(blob, token)
        state = pickle.loads(state_blob)
        results: list[Any] = []
        append = results.append
        failures: list[RecordFailure] = []
        exceptions = nulls = 0
        skip_nulls, keep = self.skip_nulls, self.keep_results
        for index, record in enumerate(records):
            try:
                result = func(record, state)
            except Exception as e:
                if self.raise_errors:
                    raise
                exceptions += 1
                if len(failures) < self.max_failures:
                    failures.append(RecordFailure(index, type(e).__name__, str(e)))
                continue
            if result is None:
                if skip_nulls:
                    continue
                nulls += 1
            if keep:
                append(result)
        worker = None
        try:
            from distributed import get_worker

            worker = get_worker().address
        except ValueError:
            pass
        outcome = ChunkOutcome(len(records), results if keep else None, state, failures, exceptions, nulls, worker)
        if keep and self.encode == "jsonl" and results:
            outcome.text, outcome.results = jsonl_text(results), []
        return pack([outcome])
