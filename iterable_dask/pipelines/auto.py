"""``parallel_mode="auto"``: time ``process_func`` on the first records, then pick a mode.

The first records are processed for real, in the caller (they are not run
twice). From them we measure the function's wall and CPU time per record,
and the cost of shipping a record to a worker and back (one pickle and one
unpickle each way, plus a per-task overhead). Then:

- if the function mostly waits (CPU time under half its wall time) and threads
  would overlap enough waiting to pay off, ``thread``;
- if it is CPU-bound and the estimated speed-up on the cluster's workers,
  after shipping costs and (when no cluster runs yet) the cluster start-up,
  is at least 1.25, ``process``;
- otherwise ``sequential``: the rest runs in the caller exactly like
  iterabledata's pipeline, so a cheap function never runs slower than it would.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["ModeDecision", "Timing", "decide_mode"]

#: Measured on a 2-core machine: a chunk task's scheduling and transfer cost.
TASK_OVERHEAD_SECONDS = 0.004
#: Starting an embedded cluster: worker processes, or one in-process worker.
STARTUP_SECONDS = {"process": 3.0, "thread": 0.3}
#: Moving one record through an in-process worker and back (chunking, the task's loop, the write):
#: a function that takes only a few microseconds cannot gain from threads, even when a busy
#: machine makes its wall time look like waiting.
THREAD_RECORD_SECONDS = 5e-6
MIN_SPEEDUP = 1.25


@dataclass
class Timing:
    """What the sample measured, per record."""

    records: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    ship: float = 0.0

    @property
    def wall_per_record(self) -> float:
        return self.wall / self.records if self.records else 0.0

    @property
    def cpu_ratio(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 1.0


@dataclass
class ModeDecision:
    """The mode that ran and why."""

    mode: str
    reason: str


def shipping_cost(records: list[Any], results: list[Any]) -> float:
    """Seconds per record to pickle and unpickle a record and its result once."""
    if not records:
        return 0.0
    start = time.perf_counter()
    loaded = pickle.loads(pickle.dumps(records, protocol=5))
    pickle.loads(pickle.dumps(results, protocol=5))
    elapsed = time.perf_counter() - start
    del loaded
    return elapsed / len(records)


def decide_mode(
    timing: Timing,
    workers: int,
    chunk_size: int,
    remaining: int | None,
    cluster_running: bool,
) -> ModeDecision:
    """Pick ``sequential``, ``thread`` or ``process`` from a sample's timing.

    Parameters
    ----------
    timing : Timing
        The sample's measurements.
    workers : int
        Worker threads (thread mode) or processes the run would use.
    chunk_size : int
        Records per task.
    remaining : int or None
        Estimated records still to process (None: unknown, assumed large).
    cluster_running : bool
        Whether a cluster is already up (no start-up to pay).

    Examples
    --------
    >>> decide_mode(Timing(1000, 0.001, 0.001, 2e-6), workers=2, chunk_size=1000, remaining=None,
    ...             cluster_running=True).mode
    'sequential'
    >>> decide_mode(Timing(100, 0.05, 0.05, 2e-6), workers=2, chunk_size=1000, remaining=None,
    ...             cluster_running=True).mode
    'process'
    """
    if timing.records == 0:
        return ModeDecision("sequential", "the source had no records to sample")
    f = timing.wall_per_record
    per_task = TASK_OVERHEAD_SECONDS / max(1, chunk_size)
    figures = (
        f"process_func took {f * 1e6:.1f} µs per record ({timing.cpu_ratio:.0%} CPU) over {timing.records} "
        f"records; shipping a record costs {timing.ship * 1e6:.1f} µs"
    )
    if workers < 2:
        return ModeDecision("sequential", f"{figures}; only one worker, so parallel cannot be faster")
    io_bound = timing.cpu_ratio < 0.5
    mode = "thread" if io_bound else "process"
    # In thread mode records do not leave the process, but the GIL serializes the CPU part.
    if io_bound:
        per_record = max(f / workers, f * timing.cpu_ratio) + THREAD_RECORD_SECONDS + per_task
    else:
        per_record = f / workers + timing.ship + per_task
    n = remaining if remaining is not None else 10**9
    startup = 0.0 if cluster_running else STARTUP_SECONDS[mode]
    sequential_time = n * f
    parallel_time = startup + n * per_record
    speedup = sequential_time / parallel_time if parallel_time > 0 else 0.0
    if speedup >= MIN_SPEEDUP:
        kind = "mostly waits (I/O-bound)" if io_bound else "is CPU-bound"
        return ModeDecision(mode, f"{figures}; it {kind} and {workers} workers should run {speedup:.1f}x faster")
    return ModeDecision(
        "sequential",
        f"{figures}; the estimated parallel speed-up is {speedup:.2f}x (< {MIN_SPEEDUP}), "
        "so records stay in the caller",
    )
