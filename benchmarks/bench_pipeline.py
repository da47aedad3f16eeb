"""Parallel pipeline against iterabledata's sequential pipeline, 100k CSV records to JSON Lines.

Targets (issue 3), on a 2-core machine:
- CPU-bound function (~100 µs per record), parallel_mode="process", workers=2: >= 1.8x sequential;
- trivial function, parallel_mode="auto": >= 0.95x sequential;
- caller peak memory for 100k and 3M rows (reported; 3M within 20% of 100k).

Run: python benchmarks/bench_pipeline.py [--small]
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, report, sample_csv, small, two_worker_cluster


def _calibrate(target_seconds: float = 100e-6) -> int:
    """Iterations of :func:`_spin` that take ``target_seconds``: the fastest of several trials,
    so that other work on the machine does not make the function cheaper than asked."""
    n = 1000
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(200):
            _spin(n)
        best = min(best, (time.perf_counter() - start) / 200)
    return max(1, int(n * target_seconds / best))


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


SPIN = int(os.environ.get("BENCH_SPIN", "0")) or None


def cpu_bound(record, state):
    return {**record, "score": _spin(SPIN)}


def trivial(record, state):
    state["n"] = state.get("n", 0) + 1
    return record


def run_case(kind: str, src: str, dst: str, func_name: str, scheduler: str | None) -> dict:
    """One run in this process; returns time and peak memory (used in a child process)."""
    import resource

    from iterable import open_iterable
    from iterable.pipeline import pipeline as upstream

    import iterable_dask

    func = globals()[func_name]
    connect = 0.0
    if scheduler and kind != "sequential":
        # Connecting to the running cluster is a one-time cost of the session, paid before the clock starts.
        connect = time.perf_counter()
        iterable_dask.get_client(scheduler=scheduler)
        connect = time.perf_counter() - connect
    start = time.perf_counter()
    with open_iterable(src) as s, open_iterable(dst, mode="w") as d:
        if kind == "sequential":
            result = upstream(s, d, func)
            mode = "sequential"
        else:
            result = iterable_dask.pipeline(
                s, d, func, parallel=True, parallel_mode=kind, workers=2, scheduler=scheduler
            )
            mode = result.parallel_mode
    return {
        "seconds": time.perf_counter() - start,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "records": result.rec_count,
        "mode": mode,
        "exceptions": result.exceptions,
        "connect": connect,
    }


def in_child(kind: str, src: str, dst: str, func_name: str, scheduler: str | None, spin: int) -> dict:
    """Run a case in a fresh process, so its peak memory is its own."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import bench_pipeline as b; "
        "print(json.dumps(b.run_case(*sys.argv[2:6], sys.argv[6] or None)))"
    )
    env = dict(os.environ, BENCH_SPIN=str(spin))
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.dirname(os.path.abspath(__file__)), kind, src, dst, func_name,
         scheduler or ""],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["exceptions"] == 0, result
    return result


def best_of(rounds: int, *contenders):
    """Run the contenders in turn ``rounds`` times; the fastest run of each."""
    best = [None] * len(contenders)
    for _ in range(rounds):
        for i, run in enumerate(contenders):
            result = run()
            if best[i] is None or result["seconds"] < best[i]["seconds"]:
                best[i] = result
    return best


def main() -> int:
    rows = 10_000 if small() else 100_000
    big_rows = 200_000 if small() else 3_000_000
    src = sample_csv(f"pipe-{rows}.csv", rows)
    spin = _calibrate()
    os.environ["BENCH_SPIN"] = str(spin)  # the worker processes inherit it
    print(
        f"# {rows} CSV rows -> JSON Lines; CPU-bound function calibrated to ~100 µs ({spin} iterations); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    ok = True
    with two_worker_cluster() as client:
        address = client.scheduler.address
        # Contenders take turns; the best of each is kept (the machine is shared and noisy).
        seq, par = best_of(
            2,
            lambda: in_child("sequential", src, data_path("seq.jsonl"), "cpu_bound", None, spin),
            lambda: in_child("process", src, data_path("par.jsonl"), "cpu_bound", address, spin),
        )
        assert filecmp.cmp(data_path("seq.jsonl"), data_path("par.jsonl"), shallow=False), "outputs differ"
        ok &= report("CPU-bound ~100 µs/record: process, 2 workers vs sequential", seq["seconds"], par["seconds"], 1.8)
        print(f"# (connecting the caller to the cluster took {par['connect']:.2f} s more, once, before the clock)")

        seq, auto = best_of(
            3,
            lambda: in_child("sequential", src, data_path("seq.jsonl"), "trivial", None, spin),
            lambda: in_child("auto", src, data_path("auto.jsonl"), "trivial", address, spin),
        )
        assert filecmp.cmp(data_path("seq.jsonl"), data_path("auto.jsonl"), shallow=False), "outputs differ"
        label = f"trivial function: auto (ran {auto['mode']}) vs sequential"
        ok &= report(label, seq["seconds"], auto["seconds"], 0.95)

        big = sample_csv(f"pipe-{big_rows}.csv", big_rows)
        mem = {}
        for n, path in ((rows, src), (big_rows, big)):
            mem[n] = in_child("process", path, data_path("mem.jsonl"), "trivial", address, spin)
            assert mem[n]["records"] == n
        ratio = mem[big_rows]["rss_mib"] / mem[rows]["rss_mib"]
        print(
            f"caller peak RSS, process mode: {rows} rows {mem[rows]['rss_mib']:.0f} MiB, "
            f"{big_rows} rows {mem[big_rows]['rss_mib']:.0f} MiB; ratio {ratio:.2f} (target <= 1.20: "
            f"{'met' if ratio <= 1.2 else 'NOT met'})"
        )
        ok &= ratio <= 1.2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
