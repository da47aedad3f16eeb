"""The per-issue targets: a threshold on one measured figure of one workload, checked on a run's result rows.

Each :class:`Target` names the workload it applies to (its ``--only`` key),
the contender measured, the threshold and the issue it came from (and the
script that first checked it, before the suite). A target without a
threshold is a figure the issue asked to report, not to meet. The measures:

``speed-up``
    The baseline's median over the contender's, at the workload's largest size (higher is better).
``vs``
    Another contender's median over this one's, at the largest size (higher is better).
``memory growth``
    The contender's peak RSS at the largest size over its peak at the smallest (lower is better).
``peak RSS``
    The contender's peak RSS in MiB at the largest size (lower is better).

``python -m benchmarks.suite --targets`` (``make bench-targets``) runs the
workloads these name at the ``targets`` size with only the contenders they
measure, prints each target PASS or FAIL and exits 1 if any falls short or
was not measured.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .runner import Workload

__all__ = ["TARGETS", "Outcome", "Target", "evaluate", "exit_code", "print_outcomes", "select", "write_targets"]

HIGHER = ("speed-up", "vs")
MEASURES = (*HIGHER, "memory growth", "peak RSS")


@dataclass(frozen=True)
class Target:
    """A threshold on one figure of one workload.

    Parameters
    ----------
    issue : int or None
        The GitHub issue that set it (None: the script that checked it named none).
    script : str
        The script that checked it before the suite, e.g. ``"bench_read.py"``.
    what : str
        The figure, as the table shows it.
    key : str
        The workload's ``--only`` key.
    measure : {"speed-up", "vs", "memory growth", "peak RSS"}
    threshold : float or None
        At least this (``speed-up``, ``vs``) or at most this (the memory measures); None: reported only.
    contender : str or None
        The contender measured; None: the fastest iterable_dask contender.
    against : str or None
        For ``vs``: the contender whose median is divided by this one's.
    """

    issue: int | None
    script: str
    what: str
    key: str
    measure: str
    threshold: float | None
    contender: str | None = None
    against: str | None = None

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"measure {self.measure!r} is not one of {MEASURES}")
        if (self.measure == "vs") != (self.against is not None):
            raise ValueError("'against' goes with the 'vs' measure, and only with it")

    @property
    def goal(self) -> str:
        """The threshold as the table shows it: ``>= 1.5x``, ``<= 1.2``, ``<= 400 MiB``, or ``-``."""
        if self.threshold is None:
            return "-"
        if self.measure in HIGHER:
            return f">= {self.threshold:g}x"
        return f"<= {self.threshold:g}" + (" MiB" if self.measure == "peak RSS" else "")


BULK = "iterable_dask bulk_convert"

#: Every target the benchmark scripts checked before the suite, in issue order.
TARGETS: list[Target] = [
    Target(2, "bench_read.py", "read_bag(...).count() of one big CSV", "read-bag-count", "speed-up", 1.5),
    Target(
        2,
        "bench_read.py",
        "shipping records: packed chunks (records_to_bag) vs dask.bag.from_sequence",
        "ship-records",
        "vs",
        None,
        "iterable_dask records_to_bag (one pickle a chunk)",
        against="dask.bag from_sequence",
    ),
    Target(
        3,
        "bench_pipeline.py",
        "pipeline, CPU-bound (~0.1 ms a record), process mode, 2 workers",
        "pipeline-cpu",
        "speed-up",
        1.8,
        "iterable_dask pipeline, process",
    ),
    Target(
        3,
        "bench_pipeline.py",
        "pipeline, trivial function, auto mode",
        "pipeline-trivial",
        "speed-up",
        0.95,
        "iterable_dask pipeline, auto",
    ),
    Target(
        3,
        "bench_pipeline.py",
        "pipeline caller peak RSS, process mode, largest vs smallest size",
        "pipeline-memory",
        "memory growth",
        1.2,
        "iterable_dask pipeline, process",
    ),
    Target(4, "bench_convert.py", "bulk_convert 8 CSV files → JSON Lines", "csv-jsonl", "speed-up", 1.8, BULK),
    Target(4, "bench_convert.py", "bulk_convert 8 CSV files → Parquet", "csv-parquet", "speed-up", 8.0, BULK),
    Target(
        4,
        "bench_convert.py",
        "convert(parallel=True) one big CSV → JSON Lines",
        "big-split",
        "speed-up",
        1.5,
        "iterable_dask convert",
    ),
    Target(5, "bench_parallel_read.py", "parallel_read of 8 gzip JSON Lines files", "parallel-read", "speed-up", 1.3),
    Target(
        5,
        "bench_parallel_read.py",
        "parallel_read of 8 sources that wait, 8 threads",
        "parallel-read-waiting",
        "speed-up",
        None,
    ),
    Target(10, "bench_jsonl_csv.py", "bulk_convert 8 wide JSON Lines files → CSV", "jsonl-csv", "speed-up", 1.8, BULK),
    Target(
        None,
        "bench_small_files.py",
        "bulk_convert many small CSV files → JSON Lines",
        "small-files",
        "speed-up",
        1.3,
        BULK,
    ),
    Target(
        None,
        "bench_small_files.py",
        "read_bag(many small files).count() vs an open_iterable loop",
        "small-files-count",
        "speed-up",
        1.3,
        "iterable_dask read_bag().count()",
    ),
    Target(
        None,
        "bench_small_files.py",
        "caller peak RSS, bulk_convert of many tiny files with the progress bar",
        "tiny-files-memory",
        "peak RSS",
        400.0,
        "iterable_dask bulk_convert, progress bar",
    ),
    Target(
        None,
        "bench_remote.py",
        "S3: read_bag(...).count() of CSV objects vs fetching each",
        "s3-count",
        "speed-up",
        None,
        "iterable_dask read_bag().count()",
    ),
    Target(
        None,
        "bench_remote.py",
        "S3 → S3: bulk_convert CSV → JSON Lines vs fetch, convert, upload each",
        "s3-convert",
        "speed-up",
        None,
        BULK,
    ),
    Target(
        None,
        "bench_dataframe.py",
        "groupby sums: read_dataframe vs iterabledata's to_dask",
        "dataframe-groupby",
        "vs",
        None,
        "iterable_dask read_dataframe",
        against="iterabledata to_dask bridge",
    ),
    Target(
        None,
        "bench_dataframe.py",
        "caller peak RSS building a groupby graph, largest vs smallest size",
        "dataframe-memory",
        "memory growth",
        1.2,
        "iterable_dask read_dataframe",
    ),
]


@dataclass(frozen=True)
class Outcome:
    """A target checked on a run's rows: what was measured, and whether it met the threshold.

    ``measured`` is None when the run has no figure for it (workload not run, contender failed or
    its output differed); ``passed`` is None for a target without a threshold that was measured.
    """

    target: Target
    measured: float | None
    passed: bool | None
    size: str
    detail: str

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "REPORTED"
        return "PASS" if self.passed else "FAIL"

    @property
    def shown(self) -> str:
        """The measured figure with its unit."""
        if self.measured is None:
            return "not measured"
        if self.target.measure == "peak RSS":
            return f"{self.measured:.0f} MiB"
        return f"{self.measured:.2f}" + ("x" if self.target.measure in HIGHER else "")


def _one(rows: list[dict], name: str | None) -> dict | None:
    """The row of contender ``name``, or (None) the fastest iterable_dask row; None if there is none timed."""
    if name is not None:
        found = [r for r in rows if r["contender"] == name]
    else:
        found = sorted((r for r in rows if r["kind"] == "iterable_dask" and r["median"]), key=lambda r: r["median"])
    return found[0] if found and found[0]["median"] is not None else None


def _measure(target: Target, rows: list[dict]) -> tuple[float | None, str, str]:
    """The figure of ``target`` in ``rows``, the size it was measured at, and how it was made."""
    group = [r for r in rows if r["key"] == target.key]
    if not group:
        return None, "-", "workload not run"
    scales = sorted({r["scale"] for r in group})
    top = [r for r in group if r["scale"] == scales[-1]]
    size = top[0]["size"]
    row = _one(top, target.contender)
    if row is None:
        states = {r["contender"]: r["status"] for r in top if r["kind"] != "baseline"}
        return None, size, f"no time for {target.contender or 'any iterable_dask contender'}: {states}"
    if target.measure == "speed-up":
        base = top[0]
        return row["ratio"], size, f"{row['contender']}: {base['median']:.3f} s → {row['median']:.3f} s"
    if target.measure == "vs":
        other = _one(top, target.against)
        if other is None:
            return None, size, f"no time for {target.against}"
        detail = f"{other['contender']} {other['median']:.3f} s → {row['contender']} {row['median']:.3f} s"
        return other["median"] / row["median"], size, detail
    if target.measure == "peak RSS":
        return row["peak_rss_mib"], size, f"{row['contender']}: peak RSS {row['peak_rss_mib']:.0f} MiB"
    low = _one([r for r in group if r["scale"] == scales[0]], target.contender)
    if low is None or len(scales) < 2:
        return None, size, "needs two sizes, both timed"
    size = f"{low['size']} → {size}"
    return row["peak_rss_mib"] / low["peak_rss_mib"], size, f"{low['peak_rss_mib']:.0f} → {row['peak_rss_mib']:.0f} MiB"


def evaluate(rows: list[dict], targets: list[Target] = TARGETS) -> list[Outcome]:
    """Check every target on a run's result rows (those of :func:`~benchmarks.suite.runner.run_workload`)."""
    outcomes = []
    for target in targets:
        measured, size, detail = _measure(target, rows)
        if measured is None:
            passed: bool | None = False if target.threshold is not None else None
        elif target.threshold is None:
            passed = None
        elif target.measure in HIGHER:
            passed = measured >= target.threshold
        else:
            passed = measured <= target.threshold
        outcomes.append(Outcome(target, measured, passed, size, detail))
    return outcomes


def exit_code(outcomes: list[Outcome]) -> int:
    """1 if any target fell short or was not measured, else 0."""
    return 1 if any(o.passed is False for o in outcomes) else 0


def print_outcomes(outcomes: list[Outcome], log: Callable[[str], None] = print) -> None:
    """One line per target: verdict, issue, figure and size, measured against threshold; then the count."""
    for o in outcomes:
        issue = f"issue {o.target.issue}" if o.target.issue else o.target.script
        log(f"{o.verdict:<8} {issue:<22} {o.target.what} [{o.size}]: {o.shown} vs target {o.target.goal}  ({o.detail})")
    checked = [o for o in outcomes if o.target.threshold is not None]
    met = sum(1 for o in checked if o.passed)
    log(f"{met} of {len(checked)} targets met; {len(outcomes) - len(checked)} figures reported without a target")


def select(works: list[Workload], targets: list[Target] = TARGETS) -> list[Workload]:
    """The workloads of one key that ``targets`` measure, each with only the contenders they need.

    A target measures the largest size of a workload (and the smallest too for ``memory growth``);
    the contenders kept are the baseline, the ones named, and every iterable_dask one where a
    target takes the fastest.
    """
    mine = [t for t in targets if works and t.key == works[0].key]
    if not mine:
        return []
    scales = sorted({w.scale for w in works})
    keep_scales = {scales[-1]} | ({scales[0]} if any(t.measure == "memory growth" for t in mine) else set())
    named = {t.contender for t in mine if t.contender} | {t.against for t in mine if t.against}
    fastest = any(t.contender is None for t in mine)
    chosen = []
    for work in works:
        if work.scale not in keep_scales:
            continue
        base, *others = work.contenders
        kept = [c for c in others if c.name in named or (fastest and c.kind == "iterable_dask")]
        chosen.append(dataclasses.replace(work, contenders=[base, *kept], notes=list(work.notes)))
    return chosen


def markdown(outcomes: list[Outcome], payload: dict[str, Any]) -> str:
    """The targets as a Markdown table, with the machine and the load."""
    m = payload["machine"]
    lines = [
        f"# Targets per issue ({payload['size']} size)",
        "",
        f"Made by `make bench-targets` (`python -m benchmarks.suite --targets`): {m['cores']} cores "
        f"({m['cpu'] or 'unknown CPU'}), {m['memory']} memory, Python {m['python']}; a LocalCluster of 2 worker "
        f"processes x 1 thread on 127.0.0.1. Medians of {payload['rounds']} interleaved round(s) after a checked "
        "run (at the quick size, the first round is checked; memory: one run in a fresh process). Load average (1 min) "
        f"{payload['load'][0]:.2f} at the start, {payload['load'][1]:.2f} at the end; two CPU-bound processes got "
        f"{payload.get('capacity', 0):.2f}x the throughput of one (2.00: two free cores). {payload['seconds']:.0f} s.",
        "",
        "| issue | figure | workload size | target | measured | verdict | how |",
        "| --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for o in outcomes:
        issue = str(o.target.issue) if o.target.issue else f"- ({o.target.script})"
        lines.append(
            f"| {issue} | {o.target.what} | {o.size} | {o.target.goal} | {o.shown} | {o.verdict} | {o.detail} |"
        )
    return "\n".join(lines) + "\n"


def write_targets(outcomes: list[Outcome], payload: dict[str, Any], folder: str) -> list[str]:
    """Write ``targets.md`` and ``targets.json`` (the outcomes and every row) into ``folder``; their paths."""
    os.makedirs(folder, exist_ok=True)
    md, js = os.path.join(folder, "targets.md"), os.path.join(folder, "targets.json")
    with open(md, "w", encoding="utf-8") as f:
        f.write(markdown(outcomes, payload))
    found = [{**dataclasses.asdict(o), "verdict": o.verdict} for o in outcomes]
    with open(js, "w", encoding="utf-8") as f:
        json.dump({**payload, "targets": found}, f, indent=1)
    return [md, js]
