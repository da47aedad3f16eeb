"""The runner: outputs checked first, then interleaved rounds, medians, the load average beside them.

For each workload every contender runs once untimed (warming up imports and
the workers' caches) and its output is compared with iterabledata's
sequential output; a contender whose output differs, or that fails, gets no
time. Then ``rounds`` rounds, each running every remaining contender once in
an order rotated by one per round, so that a busy moment of the shared
machine falls on all of them; a contender whose checked run took more than
five times the baseline's (and over 5 s) is timed in the first round only, so
that a slow peer does not stretch the run. A workload of fresh processes
(first-call overhead) has no warm-up: its first round's outputs are checked
before any of its times is kept.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["Contender", "Workload", "machine_info", "run_workload"]

#: A contender whose checked run took this many times the baseline's (and over SLOW_SECONDS) is timed once.
SLOW, SLOW_SECONDS = 5.0, 5.0

#: Kinds of contenders, in the order the report lists them.
KINDS = ("baseline", "iterabledata", "iterable_dask", "peer")


@dataclass
class Contender:
    """One way of doing a workload's job.

    Parameters
    ----------
    name : str
        As the report shows it, e.g. ``"DuckDB COPY"``.
    kind : {"baseline", "iterabledata", "iterable_dask", "peer"}
        ``baseline`` is iterabledata sequential, the reference of every check and ratio.
    run : callable
        ``run(out)`` does the job, writing into the empty location ``out``, and returns its result.
    check_run : callable, optional
        Used instead of ``run`` for the untimed checked run (e.g. a fingerprint of the records where
        the timed run only counts them).
    """

    name: str
    kind: str
    run: Callable[[str], Any]
    check_run: Callable[[str], Any] | None = None


@dataclass
class Workload:
    """A job, its size and its contenders (the first is the baseline).

    Parameters
    ----------
    key : str
        Short name for ``--only`` (``"csv-parquet"``); several sizes of one job share it.
    title : str
        The job, as the report shows it.
    size : str
        The data, as the report shows it (``"8 files x 100,000 rows"``).
    scale : float
        Rows or files, the x of the scaling chart.
    contenders : list of Contender
    check : callable
        ``check(ref_out, ref_result, out, result)``: None when the contender's output equals the
        baseline's, else why not.
    fresh : bool
        Each run is a fresh process: no warm-up, the first round is checked.
    reset : callable, optional
        ``reset(out)`` empties an output location (default: a fresh local folder).
    """

    key: str
    title: str
    size: str
    scale: float
    contenders: list[Contender]
    check: Callable[[str, Any, str, Any], str | None]
    fresh: bool = False
    reset: Callable[[str], None] | None = None
    notes: list[str] = field(default_factory=list)


def _fresh_folder(out: str) -> None:
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _attempt(run: Callable[[str], Any], out: str) -> tuple[Any, str | None]:
    try:
        return run(out), None
    except Exception as e:  # a contender that fails is reported as failing, not timed
        traceback.print_exc()
        return None, f"failed: {type(e).__name__}: {str(e)[:120]}"


def run_workload(
    work: Workload, rounds: int, scratch: str, log: Callable[[str], None] = print, warm_up: bool = True
) -> list[dict]:
    """Check, then time, every contender of ``work``; one result row per contender.

    ``warm_up=False`` (the quick size) skips the untimed run: the first round's outputs are checked
    instead, before any time is kept, as for a workload of fresh processes.

    Returns
    -------
    list of dict
        ``workload``, ``key``, ``size``, ``scale``, ``contender``, ``kind``, ``status`` (``"ok"``,
        ``"output differs: ..."`` or ``"failed: ..."``), ``checked`` (whether its output was compared with
        the baseline's; ``"reference"`` for the baseline), ``times`` (s), ``median`` (s, None unless
        ok), ``ratio`` (the baseline's median over this one's), ``load`` (1-minute load average before and
        after the workload's rounds).
    """
    reset = work.reset or _fresh_folder
    base = work.contenders[0]
    outs = {c.name: f"{scratch}/{work.key}/{_slug(work.size)}/{_slug(c.name)}" for c in work.contenders}
    status = dict.fromkeys(outs, "ok")
    checked: set[str] = set()
    results: dict[str, Any] = {}
    load_before, began = os.getloadavg()[0], time.perf_counter()

    def check() -> None:
        for c in work.contenders[1:]:
            if status[c.name] == "ok":
                why = work.check(outs[base.name], results[base.name], outs[c.name], results[c.name])
                checked.add(c.name)
                if why:
                    status[c.name] = f"output differs: {why}"
                    log(f"    {c.name}: OUTPUT DIFFERS ({why})")

    check_first_round = work.fresh or not warm_up
    once: set[str] = set()
    if not check_first_round:
        took = {}
        for c in work.contenders:
            reset(outs[c.name])
            start = time.perf_counter()
            results[c.name], error = _attempt(c.check_run or c.run, outs[c.name])
            took[c.name] = time.perf_counter() - start
            status[c.name] = error or "ok"
        if status[base.name] != "ok":
            raise RuntimeError(f"{work.key}: the baseline {base.name} {status[base.name]}")
        check()
        once = {n for n, t in took.items() if t > max(SLOW * took[base.name], SLOW_SECONDS)}
    times: dict[str, list[float]] = {c.name: [] for c in work.contenders}
    for r in range(rounds):
        shift = r % len(work.contenders)
        for c in work.contenders[shift:] + work.contenders[:shift]:
            if status[c.name] != "ok" or (r and c.name in once):
                continue
            reset(outs[c.name])
            start = time.perf_counter()
            result, error = _attempt(c.run, outs[c.name])
            times[c.name].append(time.perf_counter() - start)
            if error:
                status[c.name] = error
            elif check_first_round and r == 0:
                if c.check_run:  # e.g. a fingerprint of the records the timed run only counted
                    result, error = _attempt(c.check_run, outs[c.name])
                    status[c.name] = error or "ok"
                results[c.name] = result
        if check_first_round and r == 0:
            if status[base.name] != "ok":
                raise RuntimeError(f"{work.key}: the baseline {base.name} {status[base.name]}")
            check()
    load_after = os.getloadavg()[0]
    log(f"    ({time.perf_counter() - began:.1f} s for checks and {rounds} round(s))")
    medians = {n: statistics.median(t) if status[n] == "ok" and t else None for n, t in times.items()}
    rows = []
    for c in work.contenders:
        median = medians[c.name]
        rows.append(
            {
                "workload": work.title,
                "key": work.key,
                "size": work.size,
                "scale": work.scale,
                "contender": c.name,
                "kind": c.kind,
                "status": status[c.name],
                "checked": "reference" if c is base else c.name in checked,
                "times": times[c.name] if status[c.name] == "ok" else [],
                "median": median,
                "ratio": medians[base.name] / median if median else None,
                "load": [round(load_before, 2), round(load_after, 2)],
                "notes": work.notes,
            }
        )
        shown = f"{median:8.3f}s  {rows[-1]['ratio']:6.2f}x" if median else status[c.name]
        log(f"    {c.name:<44} {shown}")
    for out in outs.values():
        if not out.startswith("s3://"):
            shutil.rmtree(out, ignore_errors=True)
    return rows


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and the versions of every engine the suite runs."""
    memory = cpu = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 2**20:.0f} GiB"
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except (OSError, StopIteration):
        pass
    packages = ("iterable-dask", "iterabledata", "dask", "distributed", "pyarrow", "duckdb", "pandas", "s3fs", "moto")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in packages},
    }
