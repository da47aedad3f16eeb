"""Run the benchmark suite: iterable_dask, iterabledata and the peers side by side; write the report.

``python -m benchmarks.suite [--quick | --full] [--only WORKLOAD ...] [--rounds N] [--out DIR] [--data DIR]``;
``--redraw`` rewrites the table and the charts from ``OUT/suite.json`` without running anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from iterable_dask import close_embedded_clusters

from .data import SIZES, Data
from .remote import BUCKET, first_call, s3_context, s3_convert, s3_count
from .report import write_report
from .runner import machine_info, run_workload
from .workloads import BUILDERS, Context

__all__ = ["KEYS", "main", "run"]

HERE = os.path.dirname(os.path.abspath(__file__))
REMOTE = {"s3-count": s3_count, "s3-convert": s3_convert}
#: Every workload's ``--only`` key, in the report's order.
KEYS = [*BUILDERS, *REMOTE, "first-call"]


def run(
    size: str,
    rounds: int,
    out: str,
    data_root: str,
    keys: list[str] | None = None,
    client: Any = None,
    s3_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the workloads ``keys`` (default all) at ``size`` and write the report into ``out``.

    Parameters
    ----------
    size : {"quick", "full"}
    rounds : int
        Timed rounds per workload.
    out, data_root : str
        The report's folder; the data's (made there once, then reused).
    keys : list of str, optional
        Workloads to run (see :data:`KEYS`).
    client : distributed.Client, optional
        The cluster of iterable_dask and the dask peers; default a new 2-worker x 1-thread LocalCluster
        on 127.0.0.1 for the run.
    s3_options : dict, optional
        s3fs options of a running S3 server; default a moto server started for the run.
    log : callable
        Where progress lines go.

    Returns
    -------
    dict
        The report's data (as ``suite.json``).
    """
    from benchmarks.common import two_worker_cluster

    keys = keys or KEYS
    sizes = SIZES[size]
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    rows: list[dict] = []
    log(f"# suite, {size} size, {rounds} round(s); data in {data_root}")
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(two_worker_cluster())
            log(f"# 2-worker cluster on 127.0.0.1 up after {time.perf_counter() - started:.1f} s")
        s3 = stack.enter_context(s3_context(s3_options))
        ctx = Context(client, Data(data_root, sizes), sizes, os.path.join(data_root, "out"), size == "quick")
        for key in KEYS:
            if key not in keys:
                continue
            if key in BUILDERS:
                works = BUILDERS[key](ctx)
            elif key in REMOTE:
                works = REMOTE[key](ctx, s3)
            else:
                works = first_call(ctx)
            for work in works:
                log(f"== {work.title}, {work.size}  (load {os.getloadavg()[0]:.2f})")
                scratch = f"s3://{BUCKET}/out" if key == "s3-convert" else ctx.scratch
                rows += run_workload(work, rounds, scratch, log, warm_up=size != "quick")
    close_embedded_clusters()  # the thread-mode pipeline's
    payload = {
        "size": size,
        "rounds": rounds,
        "seconds": round(time.perf_counter() - started, 1),
        "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "machine": machine_info(),
        "rows": rows,
    }
    for path in write_report(payload, out):
        log(f"wrote {path}")
    log(f"# {payload['seconds']:.0f} s in all")
    return payload


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="size", help="tiny data: a smoke run")
    size.add_argument("--full", action="store_const", const="full", dest="size", help="the report's sizes (default)")
    parser.add_argument("--only", action="append", choices=KEYS, metavar="WORKLOAD", help=f"one of {', '.join(KEYS)}")
    parser.add_argument("--rounds", type=int, help="timed rounds per workload (default 3, 1 with --quick)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "results"), help="report folder")
    parser.add_argument("--data", help="data folder (default benchmarks/data/suite/SIZE)")
    parser.add_argument("--redraw", action="store_true", help="only rewrite the table and charts from OUT/suite.json")
    args = parser.parse_args(argv)
    if args.redraw:
        with open(os.path.join(args.out, "suite.json"), encoding="utf-8") as f:
            for path in write_report(json.load(f), args.out):
                print(f"wrote {path}")
        return 0
    size_name = args.size or "full"
    rounds = args.rounds or (1 if size_name == "quick" else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    data_root = args.data or os.path.join(os.path.dirname(HERE), "data", "suite", size_name)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)

    def log(line: str) -> None:
        print(line, flush=True)

    run(size_name, rounds, args.out, data_root, args.only, log=log)
    return 0
