"""Benchmark: read_dataframe + groupby against iterabledata's to_dask bridge, and the caller's memory.

Side by side, 2 workers x 1 thread on 127.0.0.1:

* ``read_dataframe(folder/*.jsonl.gz).groupby("city").amount.sum()`` against the
  same groupby on ``iterable.helpers.bridges.to_dask`` (which reads every file
  into the caller first); the results must be equal.
* The caller's peak RSS while building the graph, at two data sizes: it must not
  grow with the data (the graph holds file descriptors, the workers read).

Usage::

    python benchmarks/bench_dataframe.py [--small]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, two_worker_cluster

import iterable_dask
from iterable_dask.sample import write_sample


def make(folder: str, files: int, rows: int) -> str:
    stamp = f"{folder}.made-{files}-{rows}"
    if not os.path.exists(stamp):
        os.makedirs(folder, exist_ok=True)
        for i in range(files):
            write_sample(os.path.join(folder, f"p{i:03d}.jsonl.gz"), rows, seed=i, start=i * rows)
        open(stamp, "w").close()
    return os.path.join(folder, "*.jsonl.gz")


def graph_rss(pattern: str) -> float:
    """Peak RSS (MiB) of a fresh process that builds the DataFrame graph for ``pattern`` (no compute)."""
    import subprocess

    # VmHWM, the process's own high-water mark (ru_maxrss would carry the forking parent's across exec).
    code = (
        "import iterable_dask; "
        f"df = iterable_dask.read_dataframe({pattern!r}); g = df.groupby('city').amount.sum(); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from iterable.helpers.bridges import to_dask as upstream_to_dask

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    rows = 5_000 if args.small else 100_000
    small = make(os.path.join(DATA, "frame", f"f8x{rows // 10}"), 8, rows // 10)
    big = make(os.path.join(DATA, "frame", f"f8x{rows}"), 8, rows)
    with two_worker_cluster() as client:
        start = time.perf_counter()
        ours = client.compute(iterable_dask.read_dataframe(big).groupby("city").amount.sum()).result()
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        theirs = upstream_to_dask(sorted(__import__("glob").glob(big))).groupby("city").amount.sum().compute()
        t_theirs = time.perf_counter() - start
    same = ours.sort_index().round(6).tolist() == theirs.sort_index().round(6).tolist()
    print(
        f"groupby over 8 gzip JSON Lines x {rows:,} rows: iterabledata to_dask {t_theirs:.2f}s, "
        f"read_dataframe {t_ours:.2f}s, ratio {t_theirs / t_ours:.2f}x; results {'equal' if same else 'DIFFER'}"
    )
    r_small, r_big = graph_rss(small), graph_rss(big)
    print(
        f"caller peak RSS building the graph: {r_small:.0f} MiB for {rows // 10:,} rows a file, "
        f"{r_big:.0f} MiB for {rows:,} rows a file (ratio {r_big / r_small:.2f}; no growth is 1.00)"
    )
    print(
        f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
        "holding iterabledata's whole frame)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
