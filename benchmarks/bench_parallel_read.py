"""parallel_read against a sequential chain of iterabledata reads: 8 gzip JSON Lines files.

Target (issue 5), on a 2-core machine: parallel_read >= 1.3x the sequential chain.
Measured in thread mode (local threads) and process mode (a 2-worker LocalCluster
on 127.0.0.1, started before the timing; its start-up time is reported apart).
The multiset of records read is checked equal to the sequential one in each mode.

Run: python benchmarks/bench_parallel_read.py [--small]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, report, small, timed, two_worker_cluster

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


def sequential_chain(paths: list[str]) -> Iterable[Any]:
    from iterable import open_iterable

    for path in paths:
        with open_iterable(path) as it:
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


def measure(label: str, read: Callable[[], Iterable[Any]], expected: tuple[int, int], baseline: float) -> float:
    seconds, n = timed(lambda: count(read()), repeat=2)
    assert n == expected[0], f"{label}: {n} records, expected {expected[0]}"
    assert fingerprint(read()) == expected, f"{label}: the multiset of records differs from the sequential read"
    report(f"{label} vs sequential chain", baseline, seconds, TARGET)
    return baseline / seconds


def main() -> int:
    from iterable_dask import parallel_read

    rows = 5_000 if small() else 150_000
    paths = sample_files(rows)
    print(f"# {FILES} gzip JSON Lines files x {rows} records, {os.cpu_count()} CPUs")
    expected = fingerprint(sequential_chain(paths))
    baseline, n = timed(lambda: count(sequential_chain(paths)), repeat=2)
    assert n == FILES * rows
    print(f"sequential chain of open_iterable reads: {baseline:.2f}s ({n / baseline:,.0f} records/s)")

    ratios = {
        "thread": measure("parallel_read, thread mode, 2 threads", lambda: parallel_read(paths, 2), expected, baseline)
    }
    start = time.perf_counter()
    with two_worker_cluster() as client:
        print(f"(2-worker LocalCluster started in {time.perf_counter() - start:.2f}s, not timed below)")
        ratios["process"] = measure(
            "parallel_read, process mode, 2 workers", lambda: parallel_read(paths, client=client), expected, baseline
        )
    best = max(ratios, key=ratios.__getitem__)
    met = ratios[best] >= TARGET
    print(f"best: {best} mode, {ratios[best]:.2f}x (target >= {TARGET}: {'met' if met else 'NOT met'})")
    return 0 if met or small() else 1


if __name__ == "__main__":
    sys.exit(main())
