"""The parallel half of :class:`~iterable_dask.pipelines.runner.Pipeline`: chunks on Dask workers.

``process_func`` ships once (cloudpickle), records go out in chunks (or the
workers read their own byte ranges of the source), and the outcomes come
back through a bounded window; the caller writes them in order and merges
each chunk's state in source order, running triggers between chunks.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import pickle
import time
import uuid
from collections.abc import Iterator
from itertools import accumulate, islice
from typing import Any

import cloudpickle
from iterable.types import Row

from ..core.chunks import pack, unpack
from ..core.cluster import get_client
from ..core.exceptions import UnpicklableFunctionError
from ..core.names import PIPELINE_CHUNK, task_key
from ..core.progress import ProgressBar
from ..core.retry import Retrying
from ..core.window import in_flight_limit, windowed_results
from ..io.read import plan_source_iterable
from .sources import plan_files
from .state import merge_state as default_merge_state
from .tasks import ChunkOutcome, ChunkTask, local_functions

__all__ = ["ClusterRun"]

logger = logging.getLogger(__name__)

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


def _forget_callable(token: str, dask_worker: Any = None) -> None:
    cache = getattr(dask_worker, "_iterable_dask_callables", None)
    if cache is not None:
        cache.pop(token, None)


class ClusterRun:
    """Mixin of :class:`~iterable_dask.Pipeline`: runs the records on a Dask cluster (upstream's writing helpers)."""

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
        """cloudpickle ``(process_func, setup)`` once; a clear error if it cannot be shipped.

        Workers in this process (thread mode) run the caller's own objects, as
        a thread pool would: closures, counters and caches the caller holds
        see the work. Only worker processes get a copy.
        """
        if str(client.scheduler.address).startswith("inproc://"):
            token = f"local-{uuid.uuid4().hex}"
            local_functions[token] = (self._user_func, self.setup)
            return b"", token
        try:
            blob = cloudpickle.dumps((self._user_func, self.setup), protocol=5)
        except Exception as e:
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
        if sampled == 0 and self.reset_iterables and self._source_files:
            return iter(plan_files(self._source_files, self.chunk_size, self.storage_options))
        if sampled == 0 and self.reset_iterables:
            readers = plan_source_iterable(self.source, self.chunk_size, self._source_url, self.storage_options)
            if readers is not None:
                return iter(readers)
        return (pack(chunk) for chunk in _chunks(records, self.chunk_size))

    def _run_on_cluster(
        self, mode: str, records: Iterator[Row], state: dict[str, Any], stats: dict[str, Any],
        time_start: float, debug: bool, bar: ProgressBar,
    ) -> None:  # fmt: skip
        client = get_client(self.client, self.scheduler, workers=self.workers, mode=mode, security=self.security)
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
        window = in_flight_limit(client)
        run_id = task_key(PIPELINE_CHUNK, hashlib.sha1(f"{token}{time.time_ns()}".encode()).hexdigest()[:16])
        offset = stats["rec_count"]  # records already processed here, in the sample
        results = windowed_results(
            client, Retrying(task, self.retries), self._chunk_sources(records, offset), func_ref, token, state_ref,
            window=window, key_prefix=run_id, ordered=self.ordered,
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
            if local_functions.pop(token, None) is not None:
                with contextlib.suppress(Exception):  # in-process workers: drop their reference to it
                    client.run(_forget_callable, token)
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
                self._trigger(stats, state, debug)
