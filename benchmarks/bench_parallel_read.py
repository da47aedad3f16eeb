"""parallel_read against a sequential chain of iterabledata reads: 8 gzip JSON Lines files.

Target (issue 5), on a 2-core machine: parallel_read >= 1.3x the sequential chain.
Measured in thread mode (local threads) and process mode (a 2-worker LocalCluster
on 127.0.0.1, started before the timing; its start-up time is reported apart).
The multiset of records read is checked equal to the sequential one in each mode;
timings are the best of interleaved rounds, and a control measures how much of
the two cores the shared machine gives two busy processes right now.

A second, small case shows what thread mode is for: sources that wait (network,
databases), simulated by in-memory sources that sleep 1 ms every 100 records.

Run: python benchmarks/bench_parallel_read.py [--small]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, report, small, two_worker_cluster
from iterable.base import BaseIterable

FILES = 8
TARGET = 1.3


def sample_files(rows: int) -> list[str]:
    """8 gzip JSON Lines files of ``rows`` records each under benchmarks/data (made once)."""
    from iterable_dask.sample import write_sample

    paths = []
    for i in range(FILES):
        path = data_path(f"pread-{rows}-{i}.jsonl.gz")
        if not os.path.exists(path):
            write_sample(path + ".tmp.jsonl.gz", rows, seed=i, start=i * rows)
            os.replace(path + ".tmp.jsonl.gz", path)
        paths.append(path)
    return paths


def sequential_chain(sources: list[Any]) -> Iterable[Any]:
    from iterable import open_iterable

    for source in sources:
        if isinstance(source, BaseIterable):
            yield from source
            continue
        with open_iterable(source) as it:
            yield from it


def count(records: Iterable[Any]) -> int:
    n = 0
    for _ in records:
        n += 1
    return n


def fingerprint(records: Iterable[Any]) -> tuple[int, int]:
    """Record count and an order-independent checksum of the records (their multiset)."""
    n = total = 0
    for record in records:
        n += 1
        total += hash(tuple(sorted(record.items())))
    return n, total & (2**64 - 1)


def _spin(_: Any = None) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(5_000_000):
        x += i
    return time.perf_counter() - start


def parallel_capacity() -> float:
    """Throughput of two CPU-bound processes at once over one alone (2.0: two free cores)."""
    alone = min(_spin() for _ in range(2))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, range(2))  # start-up
        start = time.perf_counter()
        pool.map(_spin, range(2))
        both = time.perf_counter() - start
    return 2 * alone / both


class WaitingSource(BaseIterable):
    """In-memory records that wait 1 ms every 100 records, like a remote source."""

    def __init__(self, n: int, seed: int) -> None:
        super().__init__()
        self.n, self.seed, self.i = n, seed, 0

    @staticmethod
    def id() -> str:
        return "waiting"

    def reset(self) -> None:
        self.i = 0

    def read(self, skip_empty: bool = True) -> dict[str, Any]:
        if self.i >= self.n:
            raise StopIteration
        if self.i % 100 == 0:
            time.sleep(0.001)
        self.i += 1
        return {"source": self.seed, "i": self.i}


def best_of(readers: dict[str, Callable[[], Iterable[Any]]], expected: int, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(rounds):  # interleaved, so that a busy moment of the shared machine hits every mode
        for label, read in readers.items():
            start = time.perf_counter()
            n = count(read())
            best[label] = min(best[label], time.perf_counter() - start)
            assert n == expected, f"{label}: {n} records, expected {expected}"
    return best


def main() -> int:
    from iterable_dask import parallel_read

    rows = 5_000 if small() else 150_000
    rounds = 2 if small() else 3
    paths = sample_files(rows)
    print(
        f"# {FILES} gzip JSON Lines files x {rows} records, {os.cpu_count()} CPUs, best of {rounds} interleaved rounds"
    )
    print(f"control: 2 CPU-bound processes get {parallel_capacity():.2f}x the throughput of one (2.00 = 2 free cores)")
    start = time.perf_counter()
    with two_worker_cluster() as client:
        print(f"(2-worker LocalCluster on 127.0.0.1 started in {time.perf_counter() - start:.2f}s, not timed below)")
        readers: dict[str, Callable[[], Iterable[Any]]] = {
            "sequential chain of open_iterable reads": lambda: sequential_chain(paths),
            "parallel_read, thread mode, 2 threads": lambda: parallel_read(paths, 2),
            "parallel_read, process mode, 2 workers": lambda: parallel_read(paths, client=client),
        }
        expected = fingerprint(sequential_chain(paths))
        for label, read in readers.items():
            assert fingerprint(read()) == expected, f"{label}: the multiset of records differs from the sequential read"
        best = best_of(readers, expected[0], rounds)
    baseline_label, *modes = readers
    baseline = best[baseline_label]
    print(f"{baseline_label}: {baseline:.2f}s ({expected[0] / baseline:,.0f} records/s); records equal in every mode")
    ratios = {label: baseline / best[label] for label in modes}
    for label in modes:
        report(f"{label} vs sequential chain", baseline, best[label], TARGET)
    winner = max(ratios, key=ratios.__getitem__)
    met = ratios[winner] >= TARGET
    print(f"best: {winner}, {ratios[winner]:.2f}x (target >= {TARGET}: {'met' if met else 'NOT met'})")

    n = 2_000 if small() else 20_000
    waiting: dict[str, Callable[[], Iterable[Any]]] = {
        "sequential chain": lambda: sequential_chain([WaitingSource(n, i) for i in range(FILES)]),
        "parallel_read, thread mode, 8 threads": lambda: parallel_read([WaitingSource(n, i) for i in range(FILES)], 8),
    }
    best = best_of(waiting, FILES * n, rounds)
    print(f"# I/O-bound: {FILES} sources x {n} records waiting 1 ms per 100 records")
    report("parallel_read, thread mode, 8 threads vs sequential chain", *best.values(), None)
    return 0 if met or small() else 1


if __name__ == "__main__":
    sys.exit(main())
