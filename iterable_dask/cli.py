"""Command line: ``iterable-dask demo`` and ``iterable-dask convert``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from iterable import open_iterable

    import iterable_dask
    from iterable_dask.sample import write_sample

    src = os.path.join(args.dir, "csv")
    out = os.path.join(args.dir, "jsonl")
    print(f"Generating {args.files} CSV files of {args.rows:,} rows in {src}/ ...", flush=True)
    for i in range(args.files):
        path = os.path.join(src, f"part-{i:02d}.csv")
        if not os.path.exists(path):
            write_sample(path, args.rows, seed=i, start=i * args.rows)
    with iterable_dask.local_cluster(workers=args.workers, dashboard_address="127.0.0.1:8787") as client:
        workers = len(client.scheduler_info()["workers"])
        print(f"Embedded Dask cluster: {workers} worker processes on 127.0.0.1")
        print(f"Dashboard: {client.dashboard_link}", flush=True)
        start = time.perf_counter()
        result = iterable_dask.bulk_convert(os.path.join(src, "*.csv"), out, to_ext="jsonl", parallel=True,
                                            client=client)  # fmt: skip
        elapsed = time.perf_counter() - start
        (count,) = iterable_dask.compute(iterable_dask.read_bag(os.path.join(out, "*.jsonl")).count(), client=client)
    with open_iterable(os.path.join(out, "part-00.jsonl")) as it:
        first = next(iter(it))
    print()
    print("Summary")
    print(f"  files converted : {result.successful_files}/{result.total_files} (failed: {result.failed_files})")
    print(f"  rows in / out   : {result.total_rows_in:,} / {result.total_rows_out:,}")
    print(f"  elapsed         : {elapsed:.2f} s ({result.total_rows_in / max(elapsed, 1e-9):,.0f} rows/s)")
    print(f"  rows re-read    : {count:,} (read_bag on the workers)")
    print(f"  first record    : {first}")
    print(f"  output folder   : {out}/")
    return 0 if result.failed_files == 0 and count == result.total_rows_out else 1


def _convert(args: argparse.Namespace) -> int:
    import iterable_dask

    result = iterable_dask.bulk_convert(
        args.source, args.dest, to_ext=args.to_ext, parallel=True, workers=args.workers,
        scheduler=args.scheduler, resume=args.resume, show_progress=True, silent=False,
    )  # fmt: skip
    for item in result.file_results:
        status = "ok" if item.success else f"FAILED: {item.error}"
        print(f"{item.source_file} -> {item.dest_file}: {status}")
    print(f"{result.successful_files}/{result.total_files} files, {result.total_rows_out:,} rows")
    return 0 if result.failed_files == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iterable-dask`` command."""
    parser = argparse.ArgumentParser(prog="iterable-dask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate sample CSV files and convert them in parallel on a local cluster")
    demo.add_argument("--dir", default="demo-data", help="working folder (default: demo-data)")
    demo.add_argument("--files", type=int, default=8)
    demo.add_argument("--rows", type=int, default=50_000, help="rows per file")
    demo.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    demo.set_defaults(run=_demo)
    conv = sub.add_parser("convert", help="convert many files in parallel (bulk_convert)")
    conv.add_argument("source", help="glob, directory or file")
    conv.add_argument("dest", help="output folder")
    conv.add_argument("--to-ext", required=True, help="target format, e.g. jsonl, parquet, csv")
    conv.add_argument("--workers", type=int, default=None)
    conv.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    conv.add_argument("--resume", action="store_true", help="skip files whose complete output exists")
    conv.set_defaults(run=_convert)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
