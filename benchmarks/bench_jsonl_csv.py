"""Benchmark: bulk JSON Lines -> CSV on wide rows, iterable_dask against iterabledata sequential.

8 JSON Lines files of 50,000 records with 20 fields each (10x fewer with
``--small``), converted to CSV by iterabledata's sequential ``bulk_convert``
and by ``bulk_convert(parallel=True)`` on a LocalCluster of 2 workers x 1
thread; the outputs must be byte-identical. Contenders take turns; best and
median of the rounds, with the load average. Target (issue 10): >= 1.8x.

Usage::

    python benchmarks/bench_jsonl_csv.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time

from iterable.convert.core import bulk_convert as upstream_bulk_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, two_worker_cluster

import iterable_dask
from iterable_dask.sample import sample_records

FILES = 8


def make(folder: str, rows: int) -> str:
    stamp = f"{folder}.made-{rows}"
    if not os.path.exists(stamp):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for i in range(FILES):
            with open(os.path.join(folder, f"w{i}.jsonl"), "w") as f:
                for record in sample_records(rows, seed=i, start=i * rows):
                    wide = {**record, **{f"f{k:02d}": f"{record['city']}-{k}-{record['id']}" for k in range(15)}}
                    f.write(json.dumps(wide) + "\n")
        open(stamp, "w").close()
    return folder


def same(a: str, b: str) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all(
        open(os.path.join(a, n), "rb").read() == open(os.path.join(b, n), "rb").read() for n in names
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = 5_000 if args.small else 50_000
    folder = make(os.path.join(DATA, "jsonl_csv", f"w{rows}"), rows)
    seq_out, par_out = (os.path.join(DATA, "jsonl_csv", n) for n in ("seq", "par"))
    load = os.getloadavg()[0]
    with two_worker_cluster() as client:

        def seq() -> None:
            shutil.rmtree(seq_out, ignore_errors=True)
            upstream_bulk_convert(folder, seq_out, to_ext="csv")

        def par() -> None:
            shutil.rmtree(par_out, ignore_errors=True)
            result = iterable_dask.bulk_convert(folder, par_out, to_ext="csv", parallel=True, client=client)
            assert result.successful_files == FILES, result.errors[:2]

        seq(), par()
        if not same(seq_out, par_out):
            print("outputs differ: no time reported")
            return 1
        times: dict[str, list[float]] = {"seq": [], "par": []}
        for _ in range(args.repeat):
            for name, run in (("seq", seq), ("par", par)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    best = min(times["seq"]) / min(times["par"])
    median = statistics.median(times["seq"]) / statistics.median(times["par"])
    print(
        f"bulk_convert {FILES} JSON Lines x {rows:,} wide records -> CSV: iterabledata {min(times['seq']):.2f}s, "
        f"iterable_dask {min(times['par']):.2f}s, best {best:.2f}x, median {median:.2f}x (target 1.8x: "
        f"{'met' if best >= 1.8 else 'NOT met'}); outputs byte-identical"
    )
    print(f"load average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
