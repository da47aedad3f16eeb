"""Benchmark: many small files, where per-file overhead, not data, sets the cost.

Side by side in one run, on 2 cores with a LocalCluster of 2 workers x 1 thread:

* ``bulk_convert`` of N CSV files of 40 rows to JSON Lines, against
  iterabledata's sequential ``bulk_convert`` (target >= 1.3x at 2000 files);
  the outputs must be byte-identical.
* ``read_bag(folder/*.csv).count()`` against a plain loop over
  ``open_iterable`` (target >= 1.3x); the counts must be equal.
* with ``--huge``: 100,000 tiny files through ``bulk_convert`` with the progress
  bar on stderr; reports the caller's peak RSS (target under 400 MiB).

Contenders take turns in each round; best and median of the rounds, with the
load average (the machine is shared). Data is generated once under
``benchmarks/data/small_files/``.

Usage::

    python benchmarks/bench_small_files.py            # 2000 files
    python benchmarks/bench_small_files.py --small    # 300 files, a smoke run
    python benchmarks/bench_small_files.py --huge     # also 100,000 tiny files
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
from typing import Any

from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, two_worker_cluster

import iterable_dask
from iterable_dask.sample import write_sample

ROWS = 40


def make_files(folder: str, n: int, rows: int) -> str:
    """``n`` CSV files of ``rows`` rows in ``folder`` (made once; a stamp says how)."""
    stamp = f"{folder}.made-{n}-{rows}"  # beside the folder: in it, it would be one more source
    if not os.path.exists(stamp):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for i in range(n):
            write_sample(os.path.join(folder, f"f{i:06d}.csv"), rows, seed=i, start=i * rows)
        open(stamp, "w").close()
    return folder


def load() -> float:
    return os.getloadavg()[0]


def fresh(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    return path


def same_outputs(a: str, b: str) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    for name in names:
        with open(os.path.join(a, name), "rb") as x, open(os.path.join(b, name), "rb") as y:
            if x.read() != y.read():
                return False
    return True


def rounds(contenders: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def line(label: str, base: list[float], ours: list[float], target: float) -> str:
    best = min(base) / min(ours)
    median = statistics.median(base) / statistics.median(ours)
    mark = "met" if best >= target else "NOT met"
    return (
        f"{label:<48} {min(base):7.2f}s {min(ours):7.2f}s {best:6.2f}x   "
        f"{statistics.median(base):7.2f}s {statistics.median(ours):7.2f}s {median:6.2f}x  target {target}x: {mark}"
    )


def huge(client: Any, n: int) -> None:
    folder = make_files(os.path.join(DATA, "small_files", f"tiny-{n}"), n, 3)
    out = fresh(os.path.join(DATA, "small_files", "tiny-out"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = iterable_dask.bulk_convert(folder, out, to_ext="jsonl", parallel=True, client=client, show_progress=True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n:,} tiny files: {result.successful_files:,} converted, {result.failed_files} failed in {elapsed:.1f}s; "
        f"caller peak RSS {peak:.0f} MiB (before the run {before:.0f} MiB; target < 400 MiB)"
    )
    shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="300 files: a smoke run")
    parser.add_argument("--huge", action="store_true", help="also 100,000 tiny files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = 300 if args.small else 2000
    folder = make_files(os.path.join(DATA, "small_files", f"csv-{n}"), n, ROWS)
    seq_out, par_out = (os.path.join(DATA, "small_files", name) for name in ("out-seq", "out-par"))
    print(f"{n} CSV files of {ROWS} rows in {folder}", flush=True)
    load_before = load()
    with two_worker_cluster() as client:
        pattern = os.path.join(folder, "*.csv")

        def seq_convert() -> None:
            upstream_bulk_convert(pattern, fresh(seq_out), to_ext="jsonl")

        def par_convert() -> None:
            result = iterable_dask.bulk_convert(pattern, fresh(par_out), to_ext="jsonl", parallel=True, client=client)
            assert result.successful_files == n, result.errors[:3]

        def seq_count() -> int:
            total = 0
            for name in sorted(os.listdir(folder)):
                if name.endswith(".csv"):
                    with open_iterable(os.path.join(folder, name)) as it:
                        total += sum(1 for _ in it)
            return total

        def par_count() -> int:
            return iterable_dask.compute(iterable_dask.read_bag(pattern).count(), client=client)[0]

        seq_convert(), par_convert()  # warm up, and check
        if not same_outputs(seq_out, par_out):
            print("outputs differ: no time reported")
            return 1
        if seq_count() != par_count() or par_count() != n * ROWS:
            print("counts differ: no time reported")
            return 1
        conv = rounds({"seq": seq_convert, "par": par_convert}, args.repeat)
        count = rounds({"seq": seq_count, "par": par_count}, args.repeat)
        print(f"\n{'':<48} {'best of rounds':^30}   {'median of rounds':^30}")
        heads = f"{'iterabledata':>8} {'ours':>7} {'ratio':>7}"
        print(f"{'benchmark':<48} {heads}   {heads}")
        print(line(f"bulk_convert {n} CSV x {ROWS} rows -> jsonl", conv["seq"], conv["par"], 1.3))
        print(line(f"read_bag({n} files).count() vs open_iterable loop", count["seq"], count["par"], 1.3))
        print(f"load average (1 min) before: {load_before:.2f}, after: {load():.2f} on {os.cpu_count()} CPUs")
        if args.huge:
            huge(client, 100_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
