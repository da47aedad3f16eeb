"""Workloads of records that live in the caller: shipped to the cluster, or read from sources that wait.

``ship-records``: records already in the caller's memory, shipped to the
cluster and reduced there, as ``dask.bag.from_sequence`` does it (distributed
serializes the records object by object) and as ``records_to_bag`` does it
(one pickle per chunk). ``parallel-read-waiting``: in-memory sources that
wait 1 ms every 100 records, as a remote source or a database would; thread
mode overlaps the waiting.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import dask.bag as db
from iterable.base import BaseIterable

import iterable_dask
from iterable_dask.sample import sample_records

from .checks import fingerprint
from .data import FILES
from .runner import Contender, Workload
from .workloads import Context, count, values_equal

__all__ = ["WaitingSource", "parallel_read_waiting", "ship_records"]

#: Records per chunk (partition) shipped, for both ways.
CHUNK = 1000


def _length(record: dict[str, Any]) -> int:
    return len(record)


def ship_records(ctx: Context) -> list[Workload]:
    n = ctx.sizes.ship_records
    records = list(sample_records(n))

    def sequential(out: str) -> int:
        return sum(map(len, records))

    def packed(out: str) -> int:
        return ctx.client.compute(iterable_dask.records_to_bag(records, CHUNK).map(_length).sum()).result()

    def plain(out: str) -> int:
        return ctx.client.compute(db.from_sequence(records, partition_size=CHUNK).map(_length).sum()).result()

    contenders = [
        Contender("in the caller, no cluster", "baseline", sequential),
        Contender("iterable_dask records_to_bag (one pickle a chunk)", "iterable_dask", packed),
        Contender("dask.bag from_sequence", "peer", plain),
    ]
    work = Workload(
        "ship-records",
        "records in the caller shipped to the cluster, map(len).sum()",
        f"{n:,} records, {CHUNK:,} a partition",
        n,
        contenders,
        values_equal,
    )
    mib = len(pickle.dumps(records, protocol=5)) / 2**20
    work.notes.append(f"one pickle of all the records is {mib:.1f} MiB; the baseline ships nothing")
    return [work]


class WaitingSource(BaseIterable):
    """``n`` in-memory records that wait 1 ms every 100 records, like a remote source."""

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


def parallel_read_waiting(ctx: Context) -> list[Workload]:
    n = ctx.sizes.wait_rows

    def fresh() -> list[WaitingSource]:
        return [WaitingSource(n, i) for i in range(FILES)]

    def sequential() -> Any:
        for source in fresh():
            yield from source

    readers = [
        ("iterabledata sequential (one source after another)", "baseline", sequential),
        (
            "iterable_dask parallel_read, thread, 8 threads",
            "iterable_dask",
            lambda: iterable_dask.parallel_read(fresh(), 8, mode="thread"),
        ),
    ]
    contenders = [
        Contender(name, kind, lambda out, read=read: count(read()), lambda out, read=read: fingerprint(read()))
        for name, kind, read in readers
    ]
    work = Workload(
        "parallel-read-waiting",
        "records of sources that wait (1 ms every 100 records) into the caller",
        f"{FILES} sources x {n:,} records",
        FILES * n,
        contenders,
        values_equal,
    )
    work.notes.append("checked: the multiset of records; timed: iterating them all")
    return [work]
