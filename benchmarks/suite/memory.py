"""Workloads of the caller's memory: each run is a fresh Python process, the job's caller, whose peak is sampled.

The runner samples the resident memory of the process :func:`~benchmarks.suite.runner.run_fresh`
starts (imports included), so a figure is what a script doing only that job
would hold. The iterable_dask contenders connect to the suite's cluster: the
workers, not the caller, hold the data. Two sizes of a job tell whether the
caller's memory grows with the data; one round each (time is not the point).

``pipeline-memory``: a trivial function through the pipeline in process mode.
``dataframe-memory``: building a groupby graph over gzip JSON Lines files
(no compute), against iterabledata's ``to_dask``, which reads every file into
the caller. ``tiny-files-memory``: many 3-row files through ``bulk_convert``
with the progress bar drawn.
"""

from __future__ import annotations

import os
from typing import Any

from .checks import same_bytes, same_value
from .data import FILES
from .runner import Contender, Workload, run_fresh
from .workloads import Context, values_equal

__all__ = ["dataframe_memory", "pipeline_memory", "tiny_files_memory"]

#: ``sys.argv``: the CSV file, the output folder, the scheduler's address ("" for iterabledata sequential).
PIPELINE = """
import sys
from iterable import open_iterable

def trivial(record, state):
    state["n"] = state.get("n", 0) + 1
    return record

if __name__ == "__main__":
    src, out, scheduler = sys.argv[1:4]
    with open_iterable(src) as s, open_iterable(out + "/out.jsonl", mode="w") as d:
        if scheduler:
            import iterable_dask
            r = iterable_dask.pipeline(
                s, d, trivial, parallel=True, parallel_mode="process", workers=2, scheduler=scheduler
            )
            assert r.parallel_mode == "process", r.parallel_mode
        else:
            from iterable.pipeline import pipeline
            r = pipeline(s, d, trivial)
    assert not r.exceptions, r.exceptions
    print(r.rec_count)
"""

#: What each fresh process runs (``sys.argv[1]`` the files' glob): the graph only, no compute.
FRAME = {
    "iterabledata to_dask bridge": (
        "baseline",
        "import glob, sys\nfrom iterable.helpers.bridges import to_dask\n"
        "df = to_dask(sorted(glob.glob(sys.argv[1])))\n"
        "sums = df.assign(amount=df.amount.astype('float64')).groupby('city').amount.sum()\n"
        "print(sorted(df.columns))",
    ),
    "iterable_dask read_dataframe": (
        "iterable_dask",
        "import sys, iterable_dask\ndf = iterable_dask.read_dataframe(sys.argv[1])\n"
        "sums = df.assign(amount=df.amount.astype('float64')).groupby('city').amount.sum()\n"
        "print(sorted(df.columns))",
    ),
}

#: ``sys.argv``: the folder of tiny CSV files, the output folder, the scheduler's address.
TINY = {
    "iterabledata sequential": (
        "baseline",
        "import sys\nfrom iterable.convert.core import bulk_convert\n"
        "r = bulk_convert(sys.argv[1], sys.argv[2], to_ext='jsonl')\nprint(r.successful_files, r.failed_files)",
    ),
    "iterable_dask bulk_convert, progress bar": (
        "iterable_dask",
        "import sys, iterable_dask\n"
        "r = iterable_dask.bulk_convert(\n"
        "    sys.argv[1], sys.argv[2], to_ext='jsonl', parallel=True, scheduler=sys.argv[3], show_progress=True\n"
        ")\nprint(r.successful_files, r.failed_files)",
    ),
}


def _same_count_and_bytes(ref_out: str, ref: Any, out: str, got: Any) -> str | None:
    return same_value(ref, got) or same_bytes(ref_out, out)


def pipeline_memory(ctx: Context) -> list[Workload]:
    address = ctx.client.scheduler.address
    works = []
    for rows in ctx.sizes.memory_rows:
        src = ctx.data.big_csv(rows)
        contenders = [
            Contender("iterabledata sequential", "baseline", lambda out, src=src: run_fresh(PIPELINE, src, out, "")),
            Contender(
                "iterable_dask pipeline, process",
                "iterable_dask",
                lambda out, src=src: run_fresh(PIPELINE, src, out, address),
            ),
        ]
        title = "caller memory: pipeline, trivial function, CSV → JSON Lines, in a fresh process"
        work = Workload(
            "pipeline-memory", title, f"{rows:,} rows", rows, contenders, _same_count_and_bytes, fresh=True, rounds=1
        )
        work.notes.append("outputs compared byte for byte; time includes the process's start and imports")
        works.append(work)
    return works


def dataframe_memory(ctx: Context) -> list[Workload]:
    works = []
    for rows in ctx.sizes.frame_rows:
        pattern = os.path.join(ctx.data.gz_files(rows), "*.jsonl.gz")
        contenders = [
            Contender(name, kind, lambda out, code=code, pattern=pattern: run_fresh(code, pattern))
            for name, (kind, code) in FRAME.items()
        ]
        title = "caller memory: a groupby graph over gzip JSON Lines files (no compute), in a fresh process"
        size = f"{FILES} files x {rows:,} rows"
        work = Workload("dataframe-memory", title, size, FILES * rows, contenders, values_equal, fresh=True, rounds=1)
        work.notes.append("checked: the same columns; to_dask reads every file into the caller to build the graph")
        works.append(work)
    return works


def tiny_files_memory(ctx: Context) -> list[Workload]:
    n = ctx.sizes.tiny_files
    folder = ctx.data.tiny_files()
    address = ctx.client.scheduler.address
    contenders = [
        Contender(name, kind, lambda out, code=code: run_fresh(code, folder, out, address))
        for name, (kind, code) in TINY.items()
    ]
    title = "caller memory: many tiny files (3 rows), CSV → JSON Lines, in a fresh process"
    work = Workload("tiny-files-memory", title, f"{n:,} files", n, contenders, values_equal, fresh=True, rounds=1)
    work.notes.append("checked: files converted and failed; the small-files job checks such outputs row by row")
    return [work]
