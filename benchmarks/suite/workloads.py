"""The local workloads: each job, its data, its contenders (iterabledata sequential first) and its check.

Every builder takes the run's :class:`Context` and returns one or more
:class:`~benchmarks.suite.runner.Workload`; a contender is listed only where
its engine can do the job (pyarrow writes no JSON; dask.bag writes no
Parquet; DuckDB and pyarrow run no Python function per record).
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.convert.core import convert as upstream_convert
from iterable.helpers.bridges import to_dask as upstream_to_dask
from iterable.pipeline import pipeline as upstream_pipeline

import iterable_dask

from . import peers
from .checks import fingerprint, same_groups, same_rows, same_value
from .data import FILES, Data, Sizes
from .runner import Contender, Workload

__all__ = ["BUILDERS", "Context", "CpuBound", "calibrate", "chain", "count", "sources", "trivial"]


@dataclass
class Context:
    """What every builder needs: the cluster's client, the data, the sizes, where outputs go."""

    client: Any
    data: Data
    sizes: Sizes
    scratch: str
    quick: bool


# -- record functions of the pipelines --------------------------------------------------------------------------


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(seconds: float = 100e-6) -> int:
    """Iterations of the spin loop that take ``seconds`` here: the fastest of several trials."""
    n, best = 1000, float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(200):
            _spin(n)
        best = min(best, (time.perf_counter() - start) / 200)
    return max(1, int(n * seconds / best))


class CpuBound:
    """A record function that spends a fixed CPU time (``spin`` loop turns) per record and adds a score."""

    def __init__(self, spin: int) -> None:
        self.spin = spin

    def __call__(self, record: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {**record, "score": _spin(self.spin)}


def trivial(record: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Counts records in the state; returns the record."""
    state["n"] = state.get("n", 0) + 1
    return record


# -- checks -----------------------------------------------------------------------------------------------------


def files_equal(ref_out: str, ref: Any, out: str, got: Any) -> str | None:
    return same_rows(ref_out, out)


def values_equal(ref_out: str, ref: Any, out: str, got: Any) -> str | None:
    return same_value(ref, got)


def groups_equal(ref_out: str, ref: Any, out: str, got: Any) -> str | None:
    return same_groups(ref, got)


# -- contenders shared by several workloads ---------------------------------------------------------------------


def sources(folder: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p))


def _ensure(result: Any, files: int) -> Any:
    if result.failed_files or result.successful_files != files:
        raise RuntimeError(f"{result.successful_files} of {files} files converted; errors {result.errors[:2]}")
    return result


def bulk_contenders(ctx: Context, folder: str, to_ext: str, peers_too: bool = True) -> list[Contender]:
    """iterabledata sequential and threads, iterable_dask, then the peers that can write ``to_ext``.

    ``peers_too=False`` (the smaller sizes of a scaled workload): iterabledata sequential and iterable_dask only.
    """
    files = sources(folder)
    n = len(files)

    def seq(out: str) -> Any:
        return _ensure(upstream_bulk_convert(folder, out, to_ext=to_ext), n)

    def threads(out: str) -> Any:
        return _ensure(upstream_bulk_convert(folder, out, to_ext=to_ext, parallel=True, workers=2), n)

    def ours(out: str, **options: Any) -> Any:
        result = iterable_dask.bulk_convert(folder, out, to_ext=to_ext, parallel=True, client=ctx.client, **options)
        return _ensure(result, n)

    found = [
        Contender("iterabledata sequential", "baseline", seq),
        Contender("iterable_dask bulk_convert", "iterable_dask", ours),
    ]
    if not peers_too:  # the smaller sizes of a scaled workload
        return found
    found.insert(1, Contender("iterabledata bulk_convert, 2 threads", "iterabledata", threads))
    if to_ext == "parquet":
        found.append(
            Contender("iterable_dask bulk_convert, columnar=False", "iterable_dask", partial(ours, columnar=False))
        )
    if to_ext == "jsonl":
        found.append(Contender("dask.bag read_text+map+to_textfiles", "peer", partial(_bag_bulk, files, ctx)))
    if to_ext == "csv":
        found.append(Contender("dask.bag read_text+map+to_textfiles", "peer", partial(_bag_bulk_csv, files, ctx)))
    found.append(Contender("dask.dataframe", "peer", partial(_frame_bulk, files, to_ext, ctx)))
    if to_ext != "jsonl":
        found.append(Contender("pyarrow", "peer", partial(_pa_bulk, files, to_ext)))
    found.append(Contender("DuckDB COPY", "peer", partial(_duck_bulk, files, to_ext)))
    return found


def _bag_bulk(files: list[str], ctx: Context, out: str) -> None:
    peers.bag_convert_csv_jsonl(files, out, ctx.client)


def _bag_bulk_csv(files: list[str], ctx: Context, out: str) -> None:
    peers.bag_convert_jsonl_csv(files, out, ctx.client)


def _frame_bulk(files: list[str], to_ext: str, ctx: Context, out: str) -> None:
    peers.frame_convert(files, out, to_ext, ctx.client)


def _pa_bulk(files: list[str], to_ext: str, out: str) -> None:
    peers.pa_convert(files, out, to_ext)


def _duck_bulk(files: list[str], to_ext: str, out: str) -> None:
    peers.duck_copy(files, out, to_ext)


def _rows(n: int) -> str:
    return f"{n:,} rows"


# -- the workloads ----------------------------------------------------------------------------------------------


def _pipeline(ctx: Context, key: str, title: str, rows: int, func: Callable, modes: Iterable[str]) -> Workload:
    src = ctx.data.big_csv(rows)
    notes: list[str] = []

    def seq(out: str) -> None:
        with open_iterable(src) as s, open_iterable(os.path.join(out, "out.jsonl"), mode="w") as d:
            upstream_pipeline(s, d, func)

    def ours(mode: str, out: str) -> str:
        # Thread mode gets no client: given one, it runs on that cluster's worker processes (see the notes).
        client = None if mode == "thread" else ctx.client
        with open_iterable(src) as s, open_iterable(os.path.join(out, "out.jsonl"), mode="w") as d:
            result = iterable_dask.pipeline(s, d, func, parallel=True, parallel_mode=mode, workers=2, client=client)
        if result.exceptions:
            raise RuntimeError(f"{result.exceptions} records failed")
        if mode == "auto" and not any(n.startswith("auto ran") for n in notes):
            notes.append(f"auto ran {result.parallel_mode} ({result.mode_reason})")
        return result.parallel_mode

    contenders = [Contender("iterabledata sequential", "baseline", seq)]
    contenders += [Contender(f"iterable_dask pipeline, {m}", "iterable_dask", partial(ours, m)) for m in modes]
    contenders.append(
        Contender(
            "dask.bag read_text+map+to_textfiles",
            "peer",
            partial(peers.bag_pipeline, src, func=func, client=ctx.client),
        )
    )
    if "thread" in modes:
        notes.append(
            "thread mode runs on the embedded thread cluster (no client=): with client= given, "
            "parallel_mode='thread' runs the function in that cluster's worker processes"
        )
    return Workload(key, title, _rows(rows), rows, contenders, files_equal, notes=notes)


def pipeline_cpu(ctx: Context) -> list[Workload]:
    spin = 50 if ctx.quick else calibrate()
    title = "pipeline, CPU-bound function (~0.1 ms a record), CSV → JSON Lines"
    work = _pipeline(ctx, "pipeline-cpu", title, ctx.sizes.pipe_cpu_rows, CpuBound(spin), ("process", "thread", "auto"))
    return [work]


def pipeline_trivial(ctx: Context) -> list[Workload]:
    title = "pipeline, trivial function, CSV → JSON Lines"
    return [_pipeline(ctx, "pipeline-trivial", title, ctx.sizes.pipe_trivial_rows, trivial, ("auto", "process"))]


def csv_jsonl(ctx: Context) -> list[Workload]:
    works = []
    for rows in ctx.sizes.file_rows:
        folder = ctx.data.csv_files(rows)
        size = f"{FILES} files x {_rows(rows)}"
        contenders = bulk_contenders(ctx, folder, "jsonl", peers_too=rows == ctx.sizes.file_rows[-1])
        works.append(Workload("csv-jsonl", "bulk CSV → JSON Lines", size, FILES * rows, contenders, files_equal))
    return works


def csv_parquet(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.file_rows[-1]
    folder = ctx.data.csv_files(rows)
    contenders = bulk_contenders(ctx, folder, "parquet")
    size = f"{FILES} files x {_rows(rows)}"
    return [Workload("csv-parquet", "bulk CSV → Parquet", size, FILES * rows, contenders, files_equal)]


def jsonl_csv(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.wide_rows
    contenders = bulk_contenders(ctx, ctx.data.wide_files(), "csv")
    size = f"{FILES} files x {_rows(rows)} x 20 fields"
    return [Workload("jsonl-csv", "bulk JSON Lines → CSV", size, FILES * rows, contenders, files_equal)]


def small_files(ctx: Context) -> list[Workload]:
    works = []
    for n in ctx.sizes.small_files:
        folder = ctx.data.small_files(n)
        contenders = bulk_contenders(ctx, folder, "jsonl", peers_too=n == ctx.sizes.small_files[-1])
        size = f"{n:,} files x {_rows(ctx.sizes.small_rows)}"
        works.append(Workload("small-files", "many small files, CSV → JSON Lines", size, n, contenders, files_equal))
    return works


def small_files_count(ctx: Context) -> list[Workload]:
    n = ctx.sizes.small_files[-1]
    folder = ctx.data.small_files(n)
    files = sources(folder)

    def seq(out: str) -> int:
        return count(chain(files))

    def ours(out: str) -> int:
        bag = iterable_dask.read_bag(os.path.join(folder, "*.csv"))
        return iterable_dask.compute(bag.count(), client=ctx.client)[0]

    contenders = [
        Contender("iterabledata sequential (open_iterable loop)", "baseline", seq),
        Contender("iterable_dask read_bag().count()", "iterable_dask", ours),
        Contender(
            "dask.bag read_text+csv parse, count",
            "peer",
            lambda out: peers.bag_count_csv(files, ctx.client, split=False),
        ),
        Contender("pyarrow read_csv, num_rows", "peer", lambda out: peers.pa_count_csv(files)),
        Contender("DuckDB count(*)", "peer", lambda out: peers.duck_count_csv(files)),
    ]
    size = f"{n:,} files x {_rows(ctx.sizes.small_rows)}"
    return [Workload("small-files-count", "many small files, count the records", size, n, contenders, values_equal)]


def big_split(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.big_rows
    big = ctx.data.big_csv()

    def seq(out: str) -> None:
        upstream_convert(big, os.path.join(out, "big.jsonl"))

    def ours(out: str) -> None:
        iterable_dask.convert(big, os.path.join(out, "big.jsonl"), parallel=True, client=ctx.client)

    contenders = [
        Contender("iterabledata sequential", "baseline", seq),
        Contender("iterable_dask convert", "iterable_dask", ours),
        Contender(
            "dask.bag read_text+map+to_textfiles",
            "peer",
            lambda out: peers.bag_convert_csv_jsonl([big], out, ctx.client, split=True),
        ),
        Contender("dask.dataframe", "peer", lambda out: peers.frame_convert(big, out, "jsonl", ctx.client, split=True)),
        Contender("DuckDB COPY", "peer", lambda out: peers.duck_copy([big], out, "jsonl")),
    ]
    work = Workload(
        "big-split", "one big file split, CSV → JSON Lines", f"1 file x {_rows(rows)}", rows, contenders, files_equal
    )
    work.notes.append("dask.bag and dask.dataframe write part files, not one file (their rows are compared in order)")
    return [work]


def count(records: Iterable[Any]) -> int:
    n = 0
    for _ in records:
        n += 1
    return n


def chain(paths: list[str]) -> Iterable[dict[str, Any]]:
    for path in paths:
        with open_iterable(path) as it:
            yield from it


def parallel_read(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.gz_rows
    files = sources(ctx.data.gz_files())
    readers: list[tuple[str, str, Callable[[], Iterable[Any]]]] = [
        ("iterabledata sequential (chain of open_iterable)", "baseline", lambda: chain(files)),
        (
            "iterable_dask parallel_read, thread",
            "iterable_dask",
            lambda: iterable_dask.parallel_read(files, 2, mode="thread"),
        ),
        (
            "iterable_dask parallel_read, process",
            "iterable_dask",
            lambda: iterable_dask.parallel_read(files, mode="process", client=ctx.client),
        ),
        ("dask.bag read_text+map(json.loads)", "peer", lambda: peers.bag_records(files, ctx.client)),
        ("pyarrow read_json, to_pylist", "peer", lambda: peers.pa_records(files)),
    ]
    contenders = [
        Contender(name, kind, lambda out, read=read: count(read()), lambda out, read=read: fingerprint(read()))
        for name, kind, read in readers
    ]
    size = f"{FILES} gzip JSON Lines files x {_rows(rows)}"
    work = Workload(
        "parallel-read",
        "records of many files into the caller (parallel_read)",
        size,
        FILES * rows,
        contenders,
        values_equal,
    )
    work.notes.append("checked: the multiset of records (values as strings); timed: iterating them all")
    return [work]


def read_count(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.big_rows
    big = ctx.data.big_csv()

    def seq(out: str) -> int:
        with open_iterable(big) as it:
            return count(it)

    def ours(out: str, blocksize: Any = "default") -> int:
        return iterable_dask.compute(iterable_dask.read_bag(big, blocksize).count(), client=ctx.client)[0]

    contenders = [
        Contender("iterabledata sequential", "baseline", seq),
        Contender("iterable_dask read_bag().count()", "iterable_dask", ours),
        Contender(
            "iterable_dask read_bag(blocksize as the peers').count()",
            "iterable_dask",
            partial(ours, blocksize=peers.blocksize_for([big])),
        ),
        Contender("dask.bag read_text+csv parse, count", "peer", lambda out: peers.bag_count_csv([big], ctx.client)),
        Contender("dask.dataframe read_csv, len", "peer", lambda out: peers.frame_count_csv(big, ctx.client)),
        Contender("pyarrow read_csv, num_rows", "peer", lambda out: peers.pa_count_csv([big])),
        Contender("DuckDB count(*)", "peer", lambda out: peers.duck_count_csv([big])),
    ]
    size = f"1 file x {_rows(rows)}"
    work = Workload("read-bag-count", "count the records of one big CSV", size, rows, contenders, values_equal)
    work.notes.append(
        "the dask peers read partitions of 1/8 of the file (at least 1 MiB); read_bag's default is "
        "iterable-dask.blocksize (32 MiB), so a smaller file is one partition, read by one worker"
    )
    return [work]


def _sequential_groupby(files: list[str]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for record in chain(files):
        sums[record["city"]] = sums.get(record["city"], 0.0) + float(record["amount"])
    return sums


def _frame_sums(df: Any) -> Any:
    return df.assign(amount=df.amount.astype("float64")).groupby("city").amount.sum()


def dataframe_groupby(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.gz_rows
    folder = ctx.data.gz_files()
    files = sources(folder)

    def ours(out: str) -> dict[str, float]:
        df = iterable_dask.read_dataframe(os.path.join(folder, "*.jsonl.gz"))
        return {str(k): float(v) for k, v in ctx.client.compute(_frame_sums(df)).result().items()}

    def bridge(out: str) -> dict[str, float]:
        return {str(k): float(v) for k, v in _frame_sums(upstream_to_dask(files)).compute().items()}

    contenders = [
        Contender("iterabledata sequential (open_iterable loop)", "baseline", lambda out: _sequential_groupby(files)),
        Contender("iterabledata to_dask bridge", "iterabledata", bridge),
        Contender("iterable_dask read_dataframe", "iterable_dask", ours),
        Contender("dask.dataframe read_json", "peer", lambda out: peers.frame_groupby(files, ctx.client)),
        Contender("pyarrow read_json, group_by", "peer", lambda out: peers.pa_groupby(files)),
        Contender("DuckDB GROUP BY", "peer", lambda out: peers.duck_groupby(files)),
    ]
    size = f"{FILES} gzip JSON Lines files x {_rows(rows)}"
    work = Workload(
        "dataframe-groupby",
        "sum of amount by city (read_dataframe + groupby)",
        size,
        FILES * rows,
        contenders,
        groups_equal,
    )
    work.notes.append(
        "iterabledata's to_dask reads every file into the caller, then computes with dask's local threads"
    )
    return [work]


#: Every local workload by its ``--only`` key, in the report's order (remote.py adds the S3 and first-call ones).
BUILDERS: dict[str, Callable[[Context], list[Workload]]] = {
    "pipeline-cpu": pipeline_cpu,
    "pipeline-trivial": pipeline_trivial,
    "csv-jsonl": csv_jsonl,
    "jsonl-csv": jsonl_csv,
    "csv-parquet": csv_parquet,
    "big-split": big_split,
    "small-files": small_files,
    "small-files-count": small_files_count,
    "parallel-read": parallel_read,
    "read-bag-count": read_count,
    "dataframe-groupby": dataframe_groupby,
}
