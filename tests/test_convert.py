"""Parallel convert and bulk_convert on a real cluster give iterabledata's sequential outputs."""

from __future__ import annotations

import gzip
import inspect
import os
import pickle
import signal
import threading
import time

import cloudpickle
import dask
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.convert.core import convert as upstream_convert
from iterable.types import BulkConversionResult, ConversionResult, FileConversionResult

from iterable_dask.columnar import ColumnarUnavailable
from iterable_dask.conversion.api import ParallelBulkConversionResult, bulk_convert, convert
from iterable_dask.conversion.parts import JoinParts, PartResult, PartTask, ScanKeys, SplitFallback
from iterable_dask.conversion.tasks import ConvertOptions, FileTask
from iterable_dask.core.exceptions import EmptySourceError, FileConversionError
from iterable_dask.io.atomic import TEMP_PREFIX
from iterable_dask.io.read import plan_partitions
from iterable_dask.sample import write_sample

from .conftest import own_cluster
from .helpers import sequential, temporaries

DEAD_SCHEDULER = "tcp://127.0.0.1:9"  # nothing listens: reaching it would fail, checks must fail first


def assert_same_output(ours: str, theirs: str) -> None:
    """Outputs equal: Parquet by schema and records, text byte for byte."""
    if ours.endswith(".parquet") and os.path.getsize(theirs):
        assert pq.read_schema(ours).equals(pq.read_schema(theirs), check_metadata=False)
        assert sequential(ours) == sequential(theirs)
    else:
        with open(ours, "rb") as a, open(theirs, "rb") as b:
            assert a.read() == b.read()


MIXED = ["a.csv", "b.tsv", "c.jsonl", "d.parquet", "e.csv.gz", "f.jsonl.gz"]


def write_sources(folder, names=MIXED, n=600) -> str:
    for i, name in enumerate(names):
        write_sample(str(folder / name), n, seed=i, start=i * n)
    return str(folder)


# -- drop-in -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [(convert, upstream_convert), (bulk_convert, upstream_bulk_convert)])
def test_signature_is_iterabledatas_plus_keyword_options(ours, theirs):
    mine = list(inspect.signature(ours).parameters.values())
    upstream = list(inspect.signature(theirs).parameters.values())
    assert [(p.name, p.default, p.kind) for p in mine[: len(upstream)]] == [
        (p.name, p.default, p.kind) for p in upstream
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in mine[len(upstream) :])
    assert {"client", "scheduler", "retries", "resume"} <= {p.name for p in mine}


def test_parallel_false_is_iterabledata(tmp_path):
    source = write_sources(tmp_path / "in", ["a.csv", "b.jsonl"], n=50)
    ours = bulk_convert(source, str(tmp_path / "ours"), to_ext="parquet")
    theirs = upstream_bulk_convert(source, str(tmp_path / "theirs"), to_ext="parquet")
    assert type(ours) is BulkConversionResult
    assert (ours.successful_files, ours.total_rows_out) == (theirs.successful_files, theirs.total_rows_out) == (2, 100)
    one = convert(source + "/a.csv", str(tmp_path / "one.csv"))
    assert type(one) is ConversionResult and one.rows_out == 50
    with pytest.raises(ValueError, match="resume, retries apply to parallel=True only"):
        bulk_convert(source, str(tmp_path / "x"), to_ext="csv", resume=True, retries=1)


# -- bulk conversion -----------------------------------------------------------------------------


@pytest.mark.parametrize("to_ext", ["jsonl", "csv", "parquet"])
def test_bulk_convert_matches_iterabledata_in_order(tmp_path, client, to_ext):
    source = write_sources(tmp_path / "in")
    ours = bulk_convert(source, str(tmp_path / "ours"), to_ext=to_ext, parallel=True, client=client)
    theirs = upstream_bulk_convert(source, str(tmp_path / "theirs"), to_ext=to_ext)
    assert isinstance(ours, BulkConversionResult) and isinstance(ours, ParallelBulkConversionResult)
    assert all(isinstance(r, FileConversionResult) for r in ours.file_results)
    assert [r.source_file for r in ours.file_results] == [r.source_file for r in theirs.file_results]
    assert [r.dest_file.replace("ours", "theirs") for r in ours.file_results] == [
        r.dest_file for r in theirs.file_results
    ]
    for a, b in zip(ours.file_results, theirs.file_results, strict=True):
        assert a.success == b.success, (a, b)
        assert (a.result.rows_in, a.result.rows_out) == (b.result.rows_in, b.result.rows_out)
        assert isinstance(a.result, ConversionResult) and not a.result.skipped
        assert len(a.result.errors) == len(b.result.errors)  # a .tsv read with ',' (as iterabledata does)
        assert_same_output(a.dest_file, b.dest_file)
    assert (ours.total_files, ours.successful_files, ours.total_rows_in, ours.total_rows_out) == (
        theirs.total_files,
        theirs.successful_files,
        theirs.total_rows_in,
        theirs.total_rows_out,
    )
    assert temporaries(tmp_path / "ours") == []


def test_tasks_are_named_for_the_dashboard(tmp_path, client):
    source = write_sources(tmp_path / "in", ["a.csv"], n=20)
    bulk_convert(source, str(tmp_path / "out"), to_ext="jsonl", parallel=True, client=client)
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "iterable-convert" in prefixes


def unreadable(path) -> str:
    """A file whose read fails: unreadable by permissions, or (for root) an I/O error."""
    if os.geteuid() == 0:
        os.symlink("/proc/self/mem", path)  # reading offset 0 of a process's memory is EIO
    else:
        path.write_text("a,b\n1,2\n")
        path.chmod(0)
    return str(path)


@pytest.mark.parametrize("strict", [False, True], ids=["drop-in", "strict"])
def test_each_bad_file_is_its_own_error_and_the_rest_convert(strict, tmp_path, client):
    folder = tmp_path / "in"
    good = write_sample(str(folder / "good.csv"), 300)
    (folder / "empty.csv").write_text("")
    (folder / "header.csv").write_text("id,name\n")
    (folder / "malformed.jsonl").write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with gzip.open(folder / "full.csv.gz", "wt") as f:
        f.write("a,b\n" + "1,2\n" * 20000)
    data = (folder / "full.csv.gz").read_bytes()
    (folder / "full.csv.gz").unlink()
    (folder / "truncated.csv.gz").write_bytes(data[: len(data) // 2])
    (folder / "lies.parquet").write_text("a,b\n1,2\n")
    (folder / "not-json.jsonl").write_text("a,b\n1,2\n")
    unreadable(folder / "unreadable.csv")
    out = tmp_path / "out"
    result = bulk_convert(str(folder), str(out), to_ext="jsonl", parallel=True, client=client, retries=1, strict=strict)
    by_name = {os.path.basename(r.source_file): r for r in result.file_results}
    assert by_name["good.csv"].success and sequential(by_name["good.csv"].dest_file) == sequential(good)
    failed = {name for name, r in by_name.items() if not r.success}
    empties = {"empty.csv", "header.csv"}
    assert failed == set(by_name) - {"good.csv"} - (set() if strict else empties)
    for name in failed:
        error = by_name[name].error
        assert isinstance(error, FileConversionError) and name in str(error)
        assert not os.path.exists(by_name[name].dest_file)
    for name in empties:
        if strict:
            assert isinstance(by_name[name].error, EmptySourceError)
        else:  # iterabledata's own output for a source without records (here: an empty file), rows 0
            assert by_name[name].result.rows_in == by_name[name].result.rows_out == 0
            reference = tmp_path / f"ref-{name}.jsonl"
            upstream_convert(str(folder / name), str(reference))
            assert (out / name.replace(".csv", ".jsonl")).read_bytes() == reference.read_bytes()
    malformed = str(by_name["malformed.jsonl"].error)
    assert "malformed.jsonl:2" in malformed or "byte offset 9" in malformed  # line 2, by either reader
    assert (result.successful_files, result.failed_files) == (len(by_name) - len(failed), len(failed))
    assert result.errors == [by_name[n].error for n in sorted(by_name) if n in failed]
    written = {"good.jsonl"} | (set() if strict else {"empty.jsonl", "header.jsonl"})
    assert set(os.listdir(out)) == written


BULK, ONE = bulk_convert, convert


@pytest.mark.parametrize(
    ("function", "args", "options", "error", "match"),
    [
        (BULK, ("*.nothing", "o"), {"to_ext": "csv", "strict": True}, FileNotFoundError, "No files match"),
        (BULK, ("in", "in/a.csv/o"), {"to_ext": "csv"}, OSError, "Cannot create the destination"),
        (BULK, ("in", "in/a.csv"), {"to_ext": "csv"}, ValueError, "exists but is not a directory"),
        (BULK, ("in", "/proc"), {"to_ext": "csv"}, OSError, "not writable"),
        (BULK, ("in", "o"), {"to_ext": "nope"}, ValueError, "Unknown output format .* \\(to_ext\\)"),
        (BULK, ("in", "o"), {"pattern": "{stem}.parquet"}, ValueError, "both be converted .* change pattern"),
        (BULK, ("in", "o"), {}, ValueError, "'pattern' or 'to_ext'"),
        (BULK, ("in", "in"), {"to_ext": "csv"}, ValueError, "onto itself"),
        (BULK, ("in", "o"), {"pattern": "{name}.jsonl", "infer_types": True}, ValueError, "infer_types"),
        (ONE, ("missing.csv", "o.csv"), {}, FileNotFoundError, "fromfile"),
        (ONE, ("in/a.csv", "o.nope"), {}, ValueError, "Unknown output format"),
        (ONE, ("in/a.csv", "no/o.csv"), {}, FileNotFoundError, "does not exist"),
        (ONE, ("in/a.csv", "o.csv"), {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, function, args, options, error, match):
    write_sources(tmp_path / "in", ["a.csv", "a.jsonl"], n=5)
    paths = [a if a.startswith("/") else str(tmp_path / a) for a in args]
    # Reaching the scheduler would fail differently (and slowly): the checks come first.
    with dask.config.set({"iterable-dask.scheduler-address": DEAD_SCHEDULER}), pytest.raises(error, match=match):
        function(*paths, parallel=True, **options)
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_resume_converts_only_what_is_missing(tmp_path, client):
    source = write_sources(tmp_path / "in", ["f0.csv", "f1.csv", "f2.csv", "f3.csv"], n=200)
    out = tmp_path / "out"
    first = bulk_convert(source, str(out), to_ext="jsonl", parallel=True, client=client)
    assert first.successful_files == 4 and first.skipped_files == []
    kept = os.stat(out / "f0.jsonl").st_mtime_ns
    (out / "f1.jsonl").unlink()  # missing
    (out / "f2.jsonl").write_bytes((out / "f2.jsonl").read_bytes()[:-10])  # a partial write
    later = time.time() + 5
    os.utime(tmp_path / "in" / "f3.csv", (later, later))  # the source changed since
    stale = out / f"{TEMP_PREFIX}0123456789ab-89abcdef.f1.jsonl"  # a crashed run's temporary
    stale.write_text("partial")
    again = bulk_convert(source, str(out), to_ext="jsonl", parallel=True, client=client, resume=True)
    assert again.skipped_files == [os.path.join(source, "f0.csv")]
    assert again.file_results[0].result.skipped and again.file_results[0].success
    assert (again.successful_files, again.failed_files, again.total_rows_out) == (4, 0, 600)
    assert os.stat(out / "f0.jsonl").st_mtime_ns == kept
    for i in range(4):
        assert sequential(str(out / f"f{i}.jsonl")) == sequential(os.path.join(source, f"f{i}.csv"))
    assert temporaries(out) == []
    single = convert(str(tmp_path / "in" / "f0.csv"), str(out / "f0.jsonl"), parallel=True, client=client, resume=True)
    assert single.skipped and single.rows_out == 0


def test_progress_callback_and_bar(tmp_path, client, capsys):
    source = write_sources(tmp_path / "in", ["a.csv", "b.csv", "c.csv"], n=100)
    calls = []
    bulk_convert(
        source, str(tmp_path / "out"), to_ext="jsonl", parallel=True, client=client, progress=calls.append,
        show_progress=True,
    )  # fmt: skip
    assert sorted(c["file_index"] for c in calls) == [1, 2, 3]
    assert {c["total_files"] for c in calls} == {3} and calls[-1]["rows_written"] == 300
    assert {"current_file", "file_rows_read", "file_rows_written", "rows_read", "elapsed"} <= set(calls[0])
    assert "Converting files" in capsys.readouterr().err


# -- one big file in parallel --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ext", "columnar"),
    [
        ("big.csv", "jsonl", True),
        ("big.csv", "csv", True),
        ("big.jsonl", "jsonl", True),
        ("big.jsonl", "csv", True),
        ("big.csv", "parquet", False),
        ("big.jsonl", "parquet", False),
    ],
)
def test_one_big_file_is_split_and_joined(tmp_path, client, name, ext, columnar):
    source = write_sample(str(tmp_path / name), 3000, seed=7)
    calls = []
    ours = convert(
        source, str(tmp_path / f"ours.{ext}"), parallel=True, client=client, blocksize=20_000, columnar=columnar,
        progress=calls.append,
    )  # fmt: skip
    theirs = upstream_convert(source, str(tmp_path / f"theirs.{ext}"))
    assert (ours.rows_in, ours.rows_out) == (theirs.rows_in, theirs.rows_out) == (3000, 3000)
    assert_same_output(str(tmp_path / f"ours.{ext}"), str(tmp_path / f"theirs.{ext}"))
    assert len(calls) > len(plan_partitions(source, 20_000)) // 2  # a call per part, and one at the end
    if ext == "parquet":
        assert pq.ParquetFile(tmp_path / "ours.parquet").metadata.num_row_groups > 1
    assert temporaries(tmp_path) == []


def test_big_file_to_parquet_uses_pyarrow_by_default(tmp_path, client):
    source = write_sample(str(tmp_path / "big.csv"), 3000)
    convert(source, str(tmp_path / "ours.parquet"), parallel=True, client=client, blocksize=20_000)
    upstream_convert(source, str(tmp_path / "theirs.parquet"))
    assert_same_output(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


def test_quoted_newline_across_a_boundary_falls_back_to_one_task(tmp_path, client):
    source = tmp_path / "multi.csv"
    rows = [f"{i},plain" for i in range(12000)]  # the multi-line field comes after the sniffed head
    long_field = '"' + "\n".join("x" * 80 for _ in range(400)) + '"'
    source.write_text("id,text\n" + "\n".join([*rows[:9000], f"9000,{long_field}", *rows[9000:]]) + "\n")
    calls = []
    ours = convert(
        str(source), str(tmp_path / "ours.jsonl"), parallel=True, client=client, blocksize=8_000, progress=calls.append
    )
    upstream_convert(str(source), str(tmp_path / "theirs.jsonl"))
    assert len(calls) > 10 and ours.rows_out == 12001  # parts ran, then the file was converted whole
    assert_same_output(str(tmp_path / "ours.jsonl"), str(tmp_path / "theirs.jsonl"))
    assert temporaries(tmp_path) == []


def test_parts_inferring_different_parquet_schemas_fall_back(tmp_path, client):
    source = tmp_path / "nulls.jsonl"
    lines = ['{"v": null, "s": "x"}'] * 1500 + ['{"v": 1, "s": "y"}'] * 1500
    source.write_text("\n".join(lines) + "\n")
    calls = []
    ours = convert(
        str(source), str(tmp_path / "ours.parquet"), parallel=True, client=client, blocksize=8_000, columnar=False,
        progress=calls.append,
    )  # fmt: skip
    upstream_convert(str(source), str(tmp_path / "theirs.parquet"))
    assert len(calls) > 2 and ours.rows_out == 3000
    assert_same_output(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))
    assert pq.read_schema(tmp_path / "ours.parquet").field("v").type == pa.int64()  # the parts' first was null


def test_failed_single_conversion_raises_naming_the_file(tmp_path, client):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(FileConversionError, match="bad.jsonl"):
        convert(str(source), str(tmp_path / "out.parquet"), parallel=True, client=client)
    assert os.listdir(tmp_path) == ["bad.jsonl"]


# -- worker failure ------------------------------------------------------------------------------


def _wait_for_temporary(folder, timeout=60.0) -> None:
    deadline = time.time() + timeout
    while not temporaries(folder):
        assert time.time() < deadline, "no conversion started"
        time.sleep(0.002)


def _kill_busy_worker(client) -> int:
    """SIGKILL the worker process running a task; return its pid."""
    pids = client.run(os.getpid)
    deadline = time.time() + 30
    while True:
        busy = [addr for addr, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return pids[busy[0]]
        assert time.time() < deadline
        time.sleep(0.002)


def _slow_sources(folder, count=4, n=60_000) -> list[str]:
    return [write_sample(str(folder / f"f{i}.csv"), n, seed=i) for i in range(count)]


@pytest.fixture
def own_cluster_client():
    """A cluster for one test that kills a worker (the session cluster stays whole)."""
    with own_cluster() as own:
        yield own


@pytest.mark.slow
def test_sigkilled_worker_files_convert_elsewhere(tmp_path, own_cluster_client):
    client = own_cluster_client
    sources = _slow_sources(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    box = {}
    run = threading.Thread(
        target=lambda: box.update(
            result=bulk_convert(str(tmp_path / "in"), str(out), to_ext="jsonl", parallel=True, client=client)
        )
    )
    run.start()
    _wait_for_temporary(out)
    killed = _kill_busy_worker(client)
    run.join(120)
    result = box["result"]
    assert (result.successful_files, result.failed_files) == (4, 0)
    for source, r in zip(sources, result.file_results, strict=True):
        assert sequential(r.dest_file) == sequential(source)
    assert temporaries(out) == []
    client.wait_for_workers(2, timeout=60)
    assert killed not in client.run(os.getpid).values()  # the nanny started a new worker process


@pytest.mark.slow
def test_a_task_whose_worker_keeps_dying_is_reported_failed(tmp_path):
    sources = _slow_sources(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    with own_cluster(allowed_failures=0, dashboard_address=None) as own:
        box = {}
        run = threading.Thread(
            target=lambda: box.update(
                result=bulk_convert(str(tmp_path / "in"), str(out), to_ext="jsonl", parallel=True, client=own)
            )
        )
        run.start()
        _wait_for_temporary(out)
        _kill_busy_worker(own)
        run.join(120)
    result = box["result"]
    failed = [r for r in result.file_results if not r.success]
    assert 1 <= len(failed) <= 2 and result.successful_files == 4 - len(failed)
    for r in failed:
        assert "KilledWorker" in str(r.error) and os.path.basename(r.source_file) in str(r.error)
        assert not os.path.exists(r.dest_file)
    for source, r in zip(sources, result.file_results, strict=True):
        if r.success:
            assert sequential(r.dest_file) == sequential(source)
    assert temporaries(out) == []


# -- serialization -------------------------------------------------------------------------------


def test_task_callables_and_errors_pickle(tmp_path):
    source = write_sample(str(tmp_path / "a.csv"), 50)
    options = ConvertOptions(iterableargs={"encoding": "utf8"}, toiterableargs={"compression": "zstd"})
    reader = plan_partitions(source, 500)[0]
    target = str(tmp_path / "a.jsonl")
    objects = [
        options,
        FileTask(source, target, "job", options),
        ScanKeys(source, target, (reader,), options),
        PartTask(source, target, "job", reader, options),
        JoinParts(source, target, "job", options),
        PartResult(target, 1, 1, 10),
    ]
    for obj in objects:
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert cloudpickle.loads(cloudpickle.dumps(obj)) == obj
    for error in [
        FileConversionError("m", source, target, "ValueError"),
        EmptySourceError("e", source, target, "EmptySourceError"),
        SplitFallback("s"),
        ColumnarUnavailable("c"),
    ]:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert getattr(back, "source", None) == getattr(error, "source", None)
    # A task called in this process converts like iterabledata.
    assert isinstance(FileTask(source, target, "job", options)(), ConversionResult)
    assert sequential(target) == sequential(source)


@pytest.mark.slow
def test_without_a_client_an_embedded_cluster_runs_it(tmp_path):
    source = write_sources(tmp_path / "in", ["a.csv", "b.jsonl"], n=40)
    with dask.config.set({"iterable-dask.embedded-cluster.mode": "thread", "iterable-dask.workers": 2}):
        result = bulk_convert(source, str(tmp_path / "out"), to_ext="parquet", parallel=True)
    assert (result.successful_files, result.total_rows_out) == (2, 80)
    assert sequential(str(tmp_path / "out" / "a.parquet")) == sequential(os.path.join(source, "a.csv"))


def _install_tblib_pickling() -> None:
    """What a worker does once it reports a failed task: that error's classes then pickle causes and contexts."""
    from tblib import pickling_support

    from iterable_dask.core.exceptions import FileConversionError

    pickling_support.install(FileConversionError(""), OSError())


def test_errors_cross_the_wire_after_workers_reported_failures(tmp_path, client):
    """Errors and recorded errors come back without causes that would not unpickle in the caller."""
    client.run(_install_tblib_pickling)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "malformed.jsonl").write_text('{"a": 1}\n{"a": \n')
    (folder / "lies.parquet").write_text("a,b\n1,2\n")
    write_sample(str(folder / "ragged.tsv"), 50)  # read with ',' as iterabledata does: write errors recorded
    result = bulk_convert(str(folder), str(tmp_path / "out"), to_ext="csv", parallel=True, client=client)
    by_name = {os.path.basename(r.source_file): r for r in result.file_results}
    lies = by_name["lies.parquet"].error  # iterabledata's FormatParseError does not unpickle: only its text travels
    assert lies.error_type == "FormatParseError" and "Failed to parse parquet" in str(lies), lies
    malformed = by_name["malformed.jsonl"].error
    assert malformed.error_type in {"FormatParseError", "PartitionReadError"} and "Expecting value" in str(malformed)
    ragged = by_name["ragged.tsv"]
    theirs = upstream_convert(str(folder / "ragged.tsv"), str(tmp_path / "theirs.csv"))
    assert ragged.success and len(ragged.result.errors) == len(theirs.errors) > 0
    assert [str(e) for e in ragged.result.errors] == [str(e) for e in theirs.errors]


def test_whole_file_task_rereads_a_file_its_ranges_cannot_split(tmp_path):
    """A quoted newline across the task's own byte ranges: the file is read again by iterabledata's reader."""
    source = tmp_path / "multi.csv"
    rows = [f"{i},plain" for i in range(30_000)]
    long_field = '"' + "\n".join("y" * 60 for _ in range(1500)) + '"'  # under the csv field limit
    source.write_text("id,text\n" + "\n".join([*rows[:20_000], f"20000,{long_field}", *rows[20_000:]]) + "\n")
    result = FileTask(str(source), str(tmp_path / "ours.jsonl"), "job", ConvertOptions())()
    upstream_convert(str(source), str(tmp_path / "theirs.jsonl"))
    assert result.rows_out == 30_001
    assert_same_output(str(tmp_path / "ours.jsonl"), str(tmp_path / "theirs.jsonl"))


def test_json_lines_stand_in_writes_iterabledatas_exact_text(tmp_path):
    import datetime
    import io

    from iterable.datatypes.jsonl import JSONLinesIterable

    from iterable_dask.conversion.writers import same_text_writer

    class Opaque:
        pass

    records = [
        {"s": 'naïve "q" \\ \n\t', "i": 1, "f": 1.5, "nan": float("nan"), "inf": float("-inf"), "b": True},
        {"d": datetime.date(2020, 1, 2), "t": datetime.datetime(2020, 1, 2, 3, 4, 5), "none": None},
        {"nested": {"a": [1, {"b": None}], "c": []}, "o": Opaque(), "big": 2**70, "u": "\u2028\x01"},
        ["not", "a", "dict"],
        "text",
    ]
    theirs = JSONLinesIterable(str(tmp_path / "theirs.jsonl"), mode="w")
    theirs.write_bulk(records)
    theirs.write_bulk(records[:1])
    theirs.close()
    out = JSONLinesIterable(str(tmp_path / "ours.jsonl"), mode="w")
    ours = same_text_writer(out)
    assert ours is not out
    ours.write_bulk(records)
    ours.write_bulk(records[:1])
    out.close()
    assert_same_output(str(tmp_path / "ours.jsonl"), str(tmp_path / "theirs.jsonl"))
    # A record json cannot encode fails the batch the same way, and leaves nothing behind for the next one.
    bad = [{"ok": 1}, {(1, 2): "tuple key"}]
    with pytest.raises(TypeError) as upstream_error:
        JSONLinesIterable(stream=io.StringIO(), mode="w").write_bulk(bad)
    buffer = io.StringIO()
    stream_writer = JSONLinesIterable(stream=buffer, mode="w")
    stand_in = same_text_writer(stream_writer)
    assert stand_in is not stream_writer
    with pytest.raises(TypeError, match=str(upstream_error.value)):
        stand_in.write_bulk(bad)
    stand_in.write_bulk(records[:1])
    assert buffer.getvalue().count("\n") == 1


def test_the_columnar_path_falls_back_only_on_what_it_reads_differently(tmp_path):
    """A file pyarrow would read differently goes to the row path; an I/O error is the file's error."""
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")  # pyarrow refuses the short row; iterabledata reads it
    options = ConvertOptions()
    out = FileTask(str(ragged), str(tmp_path / "r.parquet"), "job", options, rows=False)()
    assert isinstance(out, ColumnarUnavailable)
    broken = unreadable(tmp_path / "broken.csv")
    task = FileTask(broken, str(tmp_path / "b.parquet"), "job", options, rows=False)
    if os.geteuid() == 0:  # EIO: transient, raised for Dask to retry
        with pytest.raises(FileConversionError, match=r"broken\.csv.*OSError"):
            task()
    else:  # EACCES: the file's error, returned
        error = task()
        assert isinstance(error, FileConversionError) and "PermissionError" in str(error)


def _attempts(client, prefix: str) -> dict[str, int]:
    """How often each task whose key starts with ``prefix`` went to a worker (the scheduler's own log)."""

    def count(dask_scheduler, prefix=prefix):
        out: dict[str, int] = {}
        for entry in dask_scheduler.transition_log:
            key, finish = str(entry[0]), entry[2]
            if key.startswith(prefix) and finish == "processing":
                out[key] = out.get(key, 0) + 1
        return out

    return client.run_on_scheduler(count)


def test_data_errors_run_once_transient_errors_are_retried(tmp_path, client):
    """A malformed file is converted once (its error is the file's); an I/O error is retried ``retries`` times."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "malformed.jsonl").write_text('{"a": 1}\n{"a": \n')
    before = _attempts(client, "iterable-convert-")
    result = bulk_convert(str(folder), str(tmp_path / "out"), to_ext="csv", parallel=True, client=client, retries=2)
    assert result.failed_files == 1
    new = {k: n for k, n in _attempts(client, "iterable-convert-").items() if k not in before}
    assert list(new.values()) == [1]
    assert "attempts" not in str(result.file_results[0].error)
    (folder / "malformed.jsonl").unlink()
    unreadable(folder / "broken.csv")  # EIO for root, EACCES otherwise
    before = _attempts(client, "iterable-convert-")
    result = bulk_convert(str(folder), str(tmp_path / "out2"), to_ext="jsonl", parallel=True, client=client, retries=2)
    assert result.failed_files == 1
    new = {k: n for k, n in _attempts(client, "iterable-convert-").items() if k not in before}
    assert list(new.values()) == [1]  # retried inside its task, not rescheduled
    error = str(result.file_results[0].error)
    if os.geteuid() == 0:  # EIO is transient: 1 + 2 retries
        assert "failed 3 attempts" in error
    else:  # EACCES is not
        assert "attempts" not in error


def test_split_planning_hides_no_bug(tmp_path):
    """Only a file iterabledata cannot open sends a split back to one task; a wrong argument is raised here."""
    from iterable_dask.conversion.run import split_readers

    source = write_sample(str(tmp_path / "big.csv"), 3000)
    assert len(split_readers(source, str(tmp_path / "o.jsonl"), ConvertOptions(), 20_000)) > 2
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00" * 20_000)  # no CSV iterabledata opens: the single task names the problem
    assert split_readers(str(garbage), str(tmp_path / "g.jsonl"), ConvertOptions(), 20_000) is None
    with pytest.raises(TypeError):
        split_readers(source, str(tmp_path / "o.jsonl"), ConvertOptions(iterableargs={"encoding": 123}), 20_000)


def test_many_small_files_share_tasks_each_with_its_own_result(tmp_path, client):
    folder = tmp_path / "in"
    sources = [write_sample(str(folder / f"f{i:03d}.csv"), 15, seed=i) for i in range(60)]
    (folder / "f030.csv").unlink()
    unreadable(folder / "f030.csv")  # one bad file among them
    upstream_bulk_convert(str(folder), str(tmp_path / "ref"), to_ext="jsonl")
    before = _attempts(client, "iterable-convert-")
    result = bulk_convert(str(folder), str(tmp_path / "out"), to_ext="jsonl", parallel=True, client=client)
    tasks = {k for k in _attempts(client, "iterable-convert-") if k not in before}
    threads = sum(client.nthreads().values())
    assert 1 <= len(tasks) <= threads * 4 + 1  # 60 files, a handful of tasks (about 4 per thread)
    assert [r.source_file for r in result.file_results] == sorted(sources)
    by_name = {os.path.basename(r.source_file): r for r in result.file_results}
    assert (result.successful_files, result.failed_files) == (59, 1) and not by_name["f030.csv"].success
    assert "f030.csv" in str(by_name["f030.csv"].error)
    for name, r in by_name.items():
        if name != "f030.csv":
            assert r.result.rows_out == 15
            assert (tmp_path / "out" / name.replace(".csv", ".jsonl")).read_bytes() == (
                tmp_path / "ref" / name.replace(".csv", ".jsonl")
            ).read_bytes()
    assert not (tmp_path / "out" / "f030.jsonl").exists()


def test_bulk_convert_keeps_a_bounded_number_of_tasks_in_flight(tmp_path, client):
    folder = tmp_path / "in"
    for i in range(30):
        write_sample(str(folder / f"f{i:02d}.csv"), 200, seed=i)
    seen: list[int] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            names = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
            seen.append(sum(1 for k in names if k.startswith("iterable-convert-")))

    watcher = threading.Thread(target=sample)
    with dask.config.set({"iterable-dask.files.target-bytes": 1, "iterable-dask.in-flight-per-worker": 1}):
        watcher.start()
        try:
            result = bulk_convert(str(folder), str(tmp_path / "out"), to_ext="jsonl", parallel=True, client=client)
        finally:
            stop.set()
            watcher.join()
    assert result.successful_files == 30  # one file per task here: 30 tasks in all
    assert max(seen) > 0 and max(seen) <= 2 + 1  # the window (2 threads x 1), plus one finishing
