"""parallel_read against a sequential chain of iterabledata reads: 8 gzip JSON Lines files.

Target (issue 5), on a 2-core machine: parallel_read >= 1.3x the sequential chain.
Measured in thread mode (local threads) and process mode (a 2-worker LocalCluster
on 127.0.0.1, started before the timing; its start-up time is reported apart).
The multiset of records read is checked equal to the sequential one in each mode;
timings are the best of interleaved rounds (the machine is shared).

Run: python benchmarks/bench_parallel_read.py [--small]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, report, small, two_worker_cluster

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


def best_time(read: Callable[[], Iterable[Any]], expected: int) -> float:
    start = time.perf_counter()
    n = count(read())
    seconds = time.perf_counter() - start
    assert n == expected, f"{n} records, expected {expected}"
    return seconds


def main() -> int:
    from iterable_dask import parallel_read

    rows = 5_000 if small() else 150_000
    rounds = 2 if small() else 3
    paths = sample_files(rows)
    print(
        f"# {FILES} gzip JSON Lines files x {rows} records, {os.cpu_count()} CPUs, best of {rounds} interleaved rounds"
    )
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
        best = dict.fromkeys(readers, float("inf"))
        for _ in range(rounds):  # interleaved, so that a busy moment of the shared machine hits every mode
            for label, read in readers.items():
                best[label] = min(best[label], best_time(read, expected[0]))
    baseline_label, *modes = readers
    baseline = best[baseline_label]
    print(f"{baseline_label}: {baseline:.2f}s ({expected[0] / baseline:,.0f} records/s); records equal in every mode")
    ratios = {label: baseline / best[label] for label in modes}
    for label in modes:
        report(f"{label} vs sequential chain", baseline, best[label], TARGET)
    winner = max(ratios, key=ratios.__getitem__)
    met = ratios[winner] >= TARGET
    print(f"best: {winner}, {ratios[winner]:.2f}x (target >= {TARGET}: {'met' if met else 'NOT met'})")
    return 0 if met or small() else 1


if __name__ == "__main__":
    sys.exit(main())
