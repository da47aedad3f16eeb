"""A real disk fault: a file size limit (RLIMIT_FSIZE) in a subprocess and the worker processes it starts.

Every entry point that writes must fail clearly, leave the target with its
old content (or absent), and leave no temporary behind. Python ignores
SIGXFSZ, so a write past the limit raises ``OSError(EFBIG)`` instead of
killing the process.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import REPO
from .helpers import temporaries

pytestmark = pytest.mark.slow  # one child process runs every entry point on a cluster of its own

LIMIT = 256 * 1024  # bytes any one file of these processes may grow to

SCRIPT = textwrap.dedent(
    """
    import json, os, resource, sys

    folder, limit = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # inherited by the worker processes

    from iterable import open_iterable
    import iterable_dask
    from tests.conftest import own_cluster

    src = os.path.join(folder, "big.csv")  # written by the test, before the limit
    report = {}

    def case(name, target, run):
        try:
            run()
            report[name] = {"raised": None}
        except BaseException as e:
            report[name] = {"raised": type(e).__name__, "message": str(e), **fields(e)}
            if e.__cause__ is not None:
                report[name]["cause"] = {"raised": type(e.__cause__).__name__, **fields(e.__cause__)}

    def fields(e):
        names = ("errno", "strerror", "filename", "source", "target", "error_type", "path")
        return {n: getattr(e, n) for n in names if hasattr(e, n)}

    def keep(record, state):
        return record

    if __name__ == "__main__":
        with own_cluster() as client:
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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(script), str(folder), str(LIMIT)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), out


EFBIG_TEXT = f"[Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)}"  # "[Errno 27] File too large"


def assert_file_too_large(name: str, outcome: dict, src: str, target: str) -> None:
    """The error each entry point raises for a write past RLIMIT_FSIZE: EFBIG, as such or naming the file."""
    if name in ("pipeline", "pipeline-parallel", "write_bag"):  # the OSError itself (it names no file)
        assert outcome == {
            "raised": "OSError", "message": EFBIG_TEXT,
            "errno": errno.EFBIG, "strerror": os.strerror(errno.EFBIG), "filename": None,
        }  # fmt: skip
    elif name == "parallel_write":
        assert outcome["raised"] == "FileWriteError" and outcome["path"] == target
        assert outcome["message"] == f"Failed to write {target!r}: OSError: {EFBIG_TEXT}"
        assert outcome["cause"] == {
            "raised": "OSError", "errno": errno.EFBIG, "strerror": os.strerror(errno.EFBIG), "filename": None,
        }  # fmt: skip
    else:  # convert, convert-columnar, bulk_convert: a FileConversionError naming source and target
        assert outcome["raised"] == "FileConversionError"
        assert (outcome["source"], outcome["target"], outcome["error_type"]) == (src, target, "OSError")
        head = f"Converting {src!r} to {target!r} failed: OSError: "
        if name == "convert-columnar":  # pyarrow's wording of the same EFBIG
            detail = f"[Errno {errno.EFBIG}] Error writing bytes to file. Detail: [errno {errno.EFBIG}] "
            assert outcome["message"] == head + detail + os.strerror(errno.EFBIG)
        else:
            assert outcome["message"] == head + EFBIG_TEXT


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_write_past_the_file_size_limit_fails_the_call(name, fault_report):
    report, out = fault_report
    outcome = report[name]
    assert outcome["raised"] is not None, f"{name} reported success over a failed write"
    target = out / TARGETS[name]
    assert_file_too_large(name, outcome, str(out.parent / "big.csv"), str(target))
    if name == "parallel_write":
        assert not target.exists()
    else:
        assert target.read_text() == "OLD\n"  # the old content, untouched
    assert temporaries(out, recursive=True) == []
