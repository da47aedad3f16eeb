"""A real disk fault: a file size limit (RLIMIT_FSIZE) in a subprocess and the worker processes it starts.

Every entry point that writes must fail clearly, leave the target with its
old content (or absent), and leave no temporary behind. Python ignores
SIGXFSZ, so a write past the limit raises ``OSError(EFBIG)`` instead of
killing the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

LIMIT = 256 * 1024  # bytes any one file of these processes may grow to

SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys, traceback

    folder, limit = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # inherited by the worker processes

    import dask.bag as db
    from distributed import Client, LocalCluster
    from iterable import open_iterable
    import iterable_dask

    src = os.path.join(folder, "big.csv")  # written by the test, before the limit
    report = {}

    def case(name, target, run):
        try:
            run()
            report[name] = {"raised": None}
        except BaseException as e:
            report[name] = {"raised": type(e).__name__, "message": str(e)[:500]}

    def keep(record, state):
        return record

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                          silence_logs=50) as cluster, Client(cluster) as client:
            out = os.path.join(folder, "out")
            case("pipeline", "pipeline.jsonl",
                 lambda: iterable_dask.pipeline(src, os.path.join(out, "pipeline.jsonl"), keep))
            case("pipeline-parallel", "pipeline-parallel.jsonl",
                 lambda: iterable_dask.pipeline(src, os.path.join(out, "pipeline-parallel.jsonl"), keep,
                                                parallel=True, parallel_mode="process", client=client))
            case("convert", "convert.jsonl",
                 lambda: iterable_dask.convert(src, os.path.join(out, "convert.jsonl"), parallel=True, client=client))
            case("convert-columnar", "convert.parquet",
                 lambda: iterable_dask.convert(src, os.path.join(out, "convert.parquet"), parallel=True,
                                               client=client, toiterableargs={"compression": None}))
            def bulk():
                result = iterable_dask.bulk_convert(src, os.path.join(out, "bulk"), to_ext="jsonl", parallel=True,
                                                    client=client)
                if result.failed_files:
                    raise result.file_results[0].error
            case("bulk_convert", "bulk/big.jsonl", bulk)
            bag = iterable_dask.read_bag(src, blocksize=None)
            case("write_bag", "bag/part-00000.jsonl",
                 lambda: iterable_dask.write_bag(bag, os.path.join(out, "bag"), to_ext="jsonl", client=client))
            records = list(open_iterable(src))
            case("parallel_write", "pw/part-00000.jsonl",
                 lambda: iterable_dask.parallel_write(iter(records), os.path.join(out, "pw"), to_ext="jsonl",
                                                      records_per_file=10**6))
        print(json.dumps(report))
    """
)

TARGETS = {
    "pipeline": "pipeline.jsonl",
    "pipeline-parallel": "pipeline-parallel.jsonl",
    "convert": "convert.jsonl",
    "convert-columnar": "convert.parquet",
    "bulk_convert": "bulk/big.jsonl",
    "write_bag": "bag/part-00000.jsonl",
    "parallel_write": "pw/part-00000.jsonl",
}


@pytest.fixture(scope="module")
def fault_report(tmp_path_factory):
    from iterable_dask.sample import write_sample

    folder = tmp_path_factory.mktemp("fsize")
    write_sample(str(folder / "big.csv"), 12_000)  # ~350 KB of CSV, more as JSON Lines
    assert (folder / "big.csv").stat().st_size > LIMIT
    out = folder / "out"
    for name, target in TARGETS.items():
        path = out / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if name != "parallel_write":  # one target that exists already, the others absent
            path.write_text("OLD\n")
    script = folder / "run.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(folder), str(LIMIT)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), out


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_write_past_the_file_size_limit_fails_the_call(name, fault_report):
    report, out = fault_report
    outcome = report[name]
    assert outcome["raised"] is not None, f"{name} reported success over a failed write"
    assert "File too large" in outcome["message"] or "EFBIG" in outcome["message"] or "27" in outcome["message"]
    target = out / TARGETS[name]
    if name == "parallel_write":
        assert not target.exists()
    else:
        assert target.read_text() == "OLD\n"  # the old content, untouched
    leftovers = [
        os.path.join(root, f)
        for root, _, files in os.walk(out)
        for f in files
        if f.startswith(".iterable-dask-") or f.endswith(".tmp")
    ]
    assert leftovers == []
