"""The runner: outputs checked first, then interleaved rounds, medians, the load average beside them.

For each workload every contender runs once untimed (warming up imports and
the workers' caches) and its output is compared with iterabledata's
sequential output; a contender whose output differs, or that fails, gets no
time. Then ``rounds`` rounds, each running every remaining contender once in
an order rotated by one per round, so that a busy moment of the shared
machine falls on all of them; a contender whose checked run took more than
five times the baseline's (and over 5 s) is timed in the first round only, so
that a slow peer does not stretch the run. A workload of fresh processes
(first-call overhead, a fresh caller's memory) has no warm-up: its first
round's outputs are checked before any of its times is kept.

The caller's peak resident memory is sampled in a thread while each timed
run goes on (:class:`PeakRss`); a contender that runs its job in a fresh
process (:func:`run_fresh`) has that process sampled instead, since it is
the job's caller. The cluster every run shares is :func:`two_worker_cluster`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil
from distributed import Client, LocalCluster

__all__ = [
    "REPO",
    "Contender",
    "PeakRss",
    "Workload",
    "machine_info",
    "parallel_capacity",
    "run_fresh",
    "run_workload",
    "two_worker_cluster",
]

#: The repository's root: the working directory and ``PYTHONPATH`` of a fresh process.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
    rounds : int, optional
        At most this many timed rounds, whatever the run asks (a memory measurement needs one).
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
    rounds: int | None = None


@contextlib.contextmanager
def two_worker_cluster() -> Iterator[Client]:
    """The suite's cluster: 2 worker processes, 1 thread each, everything on 127.0.0.1."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


class PeakRss:
    """The peak resident memory (MiB) of the job's caller while a contender runs, sampled every ``interval`` s.

    The caller is this process, unless the contender starts its job in a fresh process
    (:func:`run_fresh` calls :meth:`watch`): then only that process counts. Used as a context
    manager around one run; :attr:`peak` is set when it exits.
    """

    #: The sampler of the run going on, which :func:`run_fresh` tells about its process.
    current: PeakRss | None = None

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.peak = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)

    def watch(self, pid: int) -> None:
        """Sample process ``pid`` from now on, forgetting what was sampled before."""
        with self._lock:
            self.process, self.peak = psutil.Process(pid), 0.0
        self.sample()

    def sample(self) -> None:
        # a fresh process that has ended: its last samples stand
        with self._lock, contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, self.process.memory_info().rss / 2**20)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRss:
        self.sample()
        PeakRss.current = self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        PeakRss.current = None


def run_fresh(code: str, *args: str, timeout: float = 600) -> str:
    """``python -c code args`` in a fresh process at the repository's root; the last line it printed.

    Raises ``RuntimeError`` with the end of its stderr when it exits with an error. While a
    contender runs, the runner samples this process's memory instead of the caller's.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env["PYTHONPATH"] = REPO
    command = [sys.executable, "-c", code, *args]
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        if PeakRss.current is not None:
            PeakRss.current.watch(p.pid)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
    if p.returncode:
        raise RuntimeError(f"exit {p.returncode}: {err.strip()[-300:]}")
    lines = out.strip().splitlines()
    return lines[-1] if lines else ""


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
        ok), ``ratio`` (the baseline's median over this one's), ``peak_rss_mib`` (the caller's peak
        resident memory over the timed rounds, None unless ok), ``load`` (1-minute load average before
        and after the workload's rounds).
    """
    rounds = min(rounds, work.rounds or rounds)
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
    peaks: dict[str, float] = dict.fromkeys(times, 0.0)
    for r in range(rounds):
        shift = r % len(work.contenders)
        for c in work.contenders[shift:] + work.contenders[:shift]:
            if status[c.name] != "ok" or (r and c.name in once):
                continue
            reset(outs[c.name])
            with PeakRss() as rss:
                start = time.perf_counter()
                result, error = _attempt(c.run, outs[c.name])
                times[c.name].append(time.perf_counter() - start)
            peaks[c.name] = max(peaks[c.name], rss.peak)
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
                "peak_rss_mib": round(peaks[c.name], 1) if median else None,
                "load": [round(load_before, 2), round(load_after, 2)],
                "notes": work.notes,
            }
        )
        shown = f"{median:8.3f}s  {rows[-1]['ratio']:6.2f}x  {peaks[c.name]:6.0f} MiB" if median else status[c.name]
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


def _spin(_: Any = None) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(5_000_000):
        x += i
    return time.perf_counter() - start


def parallel_capacity() -> float:
    """The throughput of two CPU-bound processes at once over one alone: 2.0 is two free cores.

    A control for the run: on a shared machine, what the parallel contenders can hope for right now.
    """
    alone = min(_spin() for _ in range(2))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, range(2))  # start-up
        start = time.perf_counter()
        pool.map(_spin, range(2))
        both = time.perf_counter() - start
    return 2 * alone / both


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
