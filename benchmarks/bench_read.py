"""read_bag(...).count() on 2 workers against iterabledata's sequential read of the same CSV.

Target (issue 2): at least 1.5 times faster for 1M rows. Run: python benchmarks/bench_read.py [--small]
"""

from __future__ import annotations

import os
import pickle
import sys

import dask.bag as db
from iterable import open_iterable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import report, sample_csv, small, timed, two_worker_cluster

import iterable_dask
from iterable_dask import read_bag, records_to_bag


def sequential_count(path: str) -> int:
    with open_iterable(path) as it:
        return sum(1 for _ in it)


def main() -> int:
    rows = 50_000 if small() else 1_000_000
    path = sample_csv(f"read-{rows}.csv", rows)
    print(f"# {rows} CSV rows, {os.path.getsize(path) / 2**20:.0f} MiB; 2 workers x 1 thread (processes)")
    with two_worker_cluster() as client:
        t_seq, n_seq = timed(lambda: sequential_count(path))
        iterable_dask.compute(read_bag(path, blocksize="4MiB").count(), client=client)  # warm the workers
        t_par, (n_par,) = timed(
            lambda: iterable_dask.compute(read_bag(path, blocksize="8MiB").count(), client=client), repeat=2
        )
        assert n_par == n_seq == rows, (n_par, n_seq)
        ok = report("read_bag(...).count() vs sequential iterabledata read", t_seq, t_par, 1.5)

        # Shipping: the same records, as dask.bag.from_sequence vs one packed blob per chunk.
        records = read_bag(path, blocksize="8MiB").take(100_000 if not small() else 20_000, npartitions=-1)
        records = list(records)
        t_plain, _ = timed(
            lambda: client.compute(db.from_sequence(records, partition_size=1000).map(len).sum()).result()
        )
        t_packed, _ = timed(lambda: client.compute(records_to_bag(records, 1000).map(len).sum()).result())
        report(f"shipping {len(records)} dicts: from_sequence vs packed chunks", t_plain, t_packed, None)
        print(f"# one pickle of all {len(records)} records: {len(pickle.dumps(records, protocol=5)) / 2**20:.1f} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
