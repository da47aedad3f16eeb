"""Run the benchmark suite: iterable_dask, iterabledata and the peers side by side; write the report.

``python -m benchmarks.suite [--quick | --full] [--only WORKLOAD ...] [--rounds N] [--out DIR] [--data DIR]``;
``--redraw`` rewrites the table and the charts from ``OUT/suite.json`` without running anything;
``--targets`` runs only what the per-issue targets measure (at the ``targets`` size unless ``--quick``
or ``--full`` is given), prints each PASS or FAIL, writes ``OUT/targets.md`` and exits 1 if one falls short.
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
from .memory import dataframe_memory, pipeline_memory, tiny_files_memory
from .records import parallel_read_waiting, ship_records
from .remote import BUCKET, first_call, s3_context, s3_convert, s3_count
from .report import write_report
from .runner import Workload, machine_info, parallel_capacity, run_workload, two_worker_cluster
from .targets import TARGETS, Outcome, Target, evaluate, exit_code, print_outcomes, select, write_targets
from .workloads import BUILDERS, Context

__all__ = ["KEYS", "main", "measure", "run", "run_targets"]

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL: dict[str, Callable[[Context], list[Workload]]] = {
    **BUILDERS,
    "parallel-read-waiting": parallel_read_waiting,
    "ship-records": ship_records,
    "pipeline-memory": pipeline_memory,
    "dataframe-memory": dataframe_memory,
    "tiny-files-memory": tiny_files_memory,
}
REMOTE = {"s3-count": s3_count, "s3-convert": s3_convert}
#: Every workload's ``--only`` key, in the report's order.
KEYS = [*LOCAL, *REMOTE, "first-call"]


def measure(
    size: str,
    rounds: int,
    data_root: str,
    keys: list[str] | None = None,
    client: Any = None,
    s3_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    pick: Callable[[list[Workload]], list[Workload]] | None = None,
) -> dict[str, Any]:
    """Run the workloads ``keys`` (default all) at ``size``; the report's data (as ``suite.json``).

    Parameters
    ----------
    size : {"quick", "full", "targets"}
    rounds : int
        Timed rounds per workload.
    data_root : str
        The data's folder (made there once, then reused).
    keys : list of str, optional
        Workloads to run (see :data:`KEYS`).
    client : distributed.Client, optional
        The cluster of iterable_dask and the dask peers; default a new 2-worker x 1-thread LocalCluster
        on 127.0.0.1 for the run.
    s3_options : dict, optional
        s3fs options of a running S3 server; default a moto server started for the run.
    log : callable
        Where progress lines go.
    pick : callable, optional
        ``pick(workloads)``: the ones of a key to run (default all), e.g. :func:`~benchmarks.suite.targets.select`.
    """
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
            if key in LOCAL:
                works = LOCAL[key](ctx)
            elif key in REMOTE:
                works = REMOTE[key](ctx, s3)
            else:
                works = first_call(ctx)
            for work in pick(works) if pick else works:
                log(f"== {work.title}, {work.size}  (load {os.getloadavg()[0]:.2f})")
                scratch = f"s3://{BUCKET}/out" if key == "s3-convert" else ctx.scratch
                rows += run_workload(work, rounds, scratch, log, warm_up=size != "quick")
    close_embedded_clusters()  # the thread-mode pipeline's
    return {
        "size": size,
        "rounds": rounds,
        "seconds": round(time.perf_counter() - started, 1),
        "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "machine": machine_info(),
        "rows": rows,
    }


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
    """Run the workloads ``keys`` (default all) at ``size`` (see :func:`measure`) and write the report into ``out``.

    Returns
    -------
    dict
        The report's data (as ``suite.json``).
    """
    payload = measure(size, rounds, data_root, keys, client, s3_options, log)
    for path in write_report(payload, out):
        log(f"wrote {path}")
    log(f"# {payload['seconds']:.0f} s in all")
    return payload


def run_targets(
    size: str,
    rounds: int,
    out: str,
    data_root: str,
    client: Any = None,
    s3_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    targets: list[Target] = TARGETS,
) -> tuple[dict[str, Any], list[Outcome]]:
    """Run what ``targets`` measure at ``size``, print each target's verdict, write ``targets.md`` and ``.json``.

    Only the workloads and contenders the targets need run (see :func:`~benchmarks.suite.targets.select`).

    Returns
    -------
    tuple
        The run's data (with ``capacity``, the control of :func:`~benchmarks.suite.runner.parallel_capacity`)
        and the outcomes; :func:`~benchmarks.suite.targets.exit_code` of the outcomes is 1 if one fell short.
    """
    capacity = parallel_capacity()
    log(f"# control: two CPU-bound processes get {capacity:.2f}x the throughput of one (2.00: two free cores)")
    keys = [k for k in KEYS if any(t.key == k for t in targets)]
    payload = measure(size, rounds, data_root, keys, client, s3_options, log, pick=lambda w: select(w, targets))
    payload["capacity"] = round(capacity, 2)
    outcomes = evaluate(payload["rows"], targets)
    log("")
    print_outcomes(outcomes, log)
    for path in write_targets(outcomes, payload, out):
        log(f"wrote {path}")
    log(f"# {payload['seconds']:.0f} s in all")
    return payload, outcomes


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="size", help="tiny data: a smoke run")
    size.add_argument("--full", action="store_const", const="full", dest="size", help="the report's sizes (default)")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="check the per-issue targets (at the targets size); exit 1 if one falls short",
    )
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
    size_name = args.size or ("targets" if args.targets else "full")
    rounds = args.rounds or (1 if size_name == "quick" else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    data_root = args.data or os.path.join(os.path.dirname(HERE), "data", "suite", size_name)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)

    def log(line: str) -> None:
        print(line, flush=True)

    if args.targets:
        chosen = [t for t in TARGETS if not args.only or t.key in args.only]
        _, outcomes = run_targets(size_name, rounds, args.out, data_root, log=log, targets=chosen)
        return exit_code(outcomes)
    run(size_name, rounds, args.out, data_root, args.only, log=log)
    return 0
