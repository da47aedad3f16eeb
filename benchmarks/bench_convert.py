"""Benchmark: iterable_dask's parallel convert/bulk_convert against iterabledata's sequential ones.

Runs in one process, side by side, on a LocalCluster of 2 worker processes
with 1 thread each on 127.0.0.1, and checks every parallel output equals
iterabledata's sequential output before printing each speed-up next to its
target from GitHub issue 4:

* 8 CSV files of 100k rows to JSON Lines with ``bulk_convert``: >= 1.8x
* the same files to Parquet: >= 8x
* one 1M-row CSV to JSON Lines with ``convert(parallel=True)``: >= 1.5x

Data is generated under ``benchmarks/data/convert/`` (gitignored) and reused.
Each timing is the best of ``--repeat`` rounds in which the contenders take
turns; the cluster is started and warmed up (modules imported on the
workers) before any timing. The load average is printed with the results:
other work on the machine lowers the ratios.

Usage::

    python benchmarks/bench_convert.py            # the issue's sizes
    python benchmarks/bench_convert.py --small    # a quick check (ratios not meaningful)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pyarrow.parquet as pq
from distributed import Client, LocalCluster
from iterable.convert.core import bulk_convert as iterabledata_bulk_convert
from iterable.convert.core import convert as iterabledata_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ensure_sample

import iterable_dask

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "convert")


def ensure_csv(path: str, rows: int, seed: int) -> str:
    return ensure_sample(path, rows, seed, DATA)


def interleaved(repeat: int, contenders: dict[str, tuple[Callable[[], Any], str]]) -> dict[str, float]:
    """Best wall time of each contender over ``repeat`` rounds, the contenders taking turns in each round.

    Taking turns spreads whatever else the machine does over all of them.
    """
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeat):
        for name, (run, folder) in contenders.items():
            fresh(folder)()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def fresh(folder: str) -> Callable[[], None]:
    def reset() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)

    return reset


def same_text(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def same_parquet(a: str, b: str) -> bool:
    ta, tb = pq.read_table(a), pq.read_table(b)
    return ta.replace_schema_metadata(None).equals(tb.replace_schema_metadata(None))


def same_outputs(ours: str, theirs: str) -> bool:
    names = sorted(os.listdir(theirs))
    if sorted(os.listdir(ours)) != names:
        return False
    compare = same_parquet if names[0].endswith(".parquet") else same_text
    return all(compare(os.path.join(ours, n), os.path.join(theirs, n)) for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10x smaller data, for a quick check")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many rounds per timing")
    parser.add_argument("--threads", action="store_true", help="also time iterabledata's own thread mode")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    scale = 10 if args.small else 1
    files_rows, big_rows = 100_000 // scale, 1_000_000 // scale
    src = os.path.join(DATA, "small" if args.small else "full")
    csv_dir = os.path.join(src, "csv")
    print(f"Generating data under {src} (reused when present) ...", flush=True)
    for i in range(8):
        ensure_csv(os.path.join(csv_dir, f"part-{i}.csv"), files_rows, seed=i)
    big = ensure_csv(os.path.join(src, "big.csv"), big_rows, seed=99)
    out = os.path.join(src, "out")

    rows: list[tuple[str, float, float, float | None, bool]] = []
    load_before = os.getloadavg()[0]
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        # Warm up: import iterabledata, pyarrow and iterable_dask on both workers.
        warm = os.path.join(out, "warm")
        fresh(warm)()
        for ext in ("jsonl", "parquet"):
            iterable_dask.bulk_convert(csv_dir, warm, to_ext=ext, parallel=True, client=client)
            iterable_dask.convert(big, os.path.join(warm, f"big.{ext}"), parallel=True, client=client)

        for ext, target in (("jsonl", 1.8), ("parquet", 8.0)):
            print(f"8 CSV files -> {ext} ...", flush=True)
            seq_dir, par_dir, thr_dir = (os.path.join(out, f"{name}-{ext}") for name in ("seq", "par", "thr"))
            contenders = {
                "seq": (partial(iterabledata_bulk_convert, csv_dir, seq_dir, to_ext=ext), seq_dir),
                "par": (
                    partial(iterable_dask.bulk_convert, csv_dir, par_dir, to_ext=ext, parallel=True, client=client),
                    par_dir,
                ),
            }
            if args.threads:
                thr = partial(iterabledata_bulk_convert, csv_dir, thr_dir, to_ext=ext, parallel=True, workers=2)
                contenders["thr"] = (thr, thr_dir)
            best = interleaved(args.repeat, contenders)
            name = f"bulk_convert 8 CSV x {files_rows:,} rows -> {ext}"
            rows.append((name, best["seq"], best["par"], target, same_outputs(par_dir, seq_dir)))
            if args.threads:
                name = f"  (iterabledata's thread mode, for reference) -> {ext}"
                rows.append((name, best["seq"], best["thr"], None, same_outputs(thr_dir, seq_dir)))

        print(f"one {big_rows:,}-row CSV -> jsonl ...", flush=True)
        seq_dir, par_dir = os.path.join(out, "seq-big"), os.path.join(out, "par-big")
        seq_big, par_big = os.path.join(seq_dir, "big.jsonl"), os.path.join(par_dir, "big.jsonl")
        contenders = {
            "seq": (partial(iterabledata_convert, big, seq_big), seq_dir),
            "par": (partial(iterable_dask.convert, big, par_big, parallel=True, client=client), par_dir),
        }
        best = interleaved(args.repeat, contenders)
        name = f"convert one {big_rows:,}-row CSV -> jsonl"
        rows.append((name, best["seq"], best["par"], 1.5, same_outputs(par_dir, seq_dir)))

    print()
    print(f"{'benchmark':<58} {'iterabledata':>12} {'iterable_dask':>13} {'ratio':>7} {'target':>7}  outputs")
    all_ok = True
    for name, seq, par, target, equal in rows:
        ratio = seq / par
        verdict = "" if target is None else ("ok" if ratio >= target else "BELOW TARGET")
        all_ok &= equal and (target is None or ratio >= target or args.small)
        shown = f"{target:.1f}x" if target is not None else ""
        print(
            f"{name:<58} {seq:>11.2f}s {par:>12.2f}s {ratio:>6.2f}x {shown:>7}  "
            f"{'equal' if equal else 'DIFFERENT'} {verdict}"
        )
    print(f"\nload average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.small:
        print("\n--small: data 10x smaller, fixed costs dominate; ratios are not comparable to the targets.")
    shutil.rmtree(out, ignore_errors=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
