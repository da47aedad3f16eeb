"""parallel_write: files of the right records, written atomically, with bounded memory."""

from __future__ import annotations

import json
import os
import pickle
import threading
from collections import Counter
from typing import Any

import dask.bag as db
import pytest

from iterable_dask import FileWriteError, WrittenFile, parallel_read, parallel_write
from iterable_dask.sample import sample_records, write_sample
from iterable_dask.streams.file_writers import FileWriter, KeyedPartitionWriter, partition_folder

from .helpers import sequential, temporaries

MODES = ["thread", "process"]


def _key(record: Any) -> str:
    return json.dumps(record, sort_keys=True)


def _options(mode: str, client: Any) -> dict[str, Any]:
    return {"client": client} if mode == "process" else {"mode": "thread"}


def _visible_files(folder: str) -> list[str]:
    out = []
    for root, _, files in os.walk(folder):
        out.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return sorted(out)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet", "jsonl.gz"])
def test_round_robin_files_hold_the_records_in_order(tmp_path, ext, mode, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    records = list(sample_records(2350))
    dest = str(tmp_path / "out")
    written = parallel_write(iter(records), dest, to_ext=ext, records_per_file=500, **_options(mode, client))
    paths = [os.path.join(dest, f"part-{i:05d}.{ext}") for i in range(5)]
    assert written == [WrittenFile(p, n) for p, n in zip(paths, [500, 500, 500, 500, 350], strict=True)]
    assert [r for p in paths for r in sequential(p)] == records
    assert _visible_files(dest) == sorted(paths) and temporaries(dest, recursive=True) == []


@pytest.mark.parametrize("mode", MODES)
def test_partition_by_field_writes_one_folder_per_value(tmp_path, mode, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    records = list(sample_records(3000, seed=4))
    dest = str(tmp_path / "out")
    written = parallel_write(records, dest, "csv", partition_by="city", records_per_file=200, **_options(mode, client))
    assert sum(w.rows for w in written) == 3000
    got: Counter = Counter()
    for path, rows in written:
        folder = os.path.basename(os.path.dirname(path))
        file_records = sequential(path)
        assert len(file_records) == rows <= 200
        assert {f"city={r['city']}" for r in file_records} == {folder}
        got.update(map(_key, file_records))
    assert got == Counter(map(_key, records))
    assert sorted(os.listdir(dest)) == sorted({f"city={r['city']}" for r in records})


def test_partition_keys_cannot_escape_or_hide(tmp_path):
    values = ["a/b", "..", ".", ".hidden", "../../etc", "", None, "x" * 500, "ok", "%2F", "/"]
    records = [{"v": v, "i": i} for i, v in enumerate(values)]
    dest = str(tmp_path / "out")
    written = parallel_write(records, dest, partition_by=lambda r: r["v"], records_per_file=10)
    folders = sorted(os.listdir(dest))
    assert len(folders) == len(values)  # distinct values, distinct folders
    for path, _ in written:
        rel = os.path.relpath(path, dest)
        folder, name = rel.split(os.sep)  # exactly one level below dest
        assert folder.startswith("key=") and not folder.startswith(".") and len(folder.encode()) <= 205
        assert name == "part-00000.jsonl"
    assert Counter(_key(r) for path, _ in written for r in sequential(path)) == Counter(map(_key, records))
    assert partition_folder("p", "../x") == "p=..%2Fx"
    assert partition_folder("p", None) == "p=__HIVE_DEFAULT_PARTITION__"


def test_flat_files_get_the_union_of_the_columns(tmp_path):
    records = [{"a": "1"}, {"a": "2", "b": "x"}, {"c": "3"}]
    (path, rows), *_ = parallel_write(records, str(tmp_path), to_ext="csv")
    assert rows == 3
    assert sequential(path) == [
        {"a": "1", "b": "", "c": ""},
        {"a": "2", "b": "x", "c": ""},
        {"a": "", "b": "", "c": "3"},
    ]


@pytest.mark.parametrize("partition_by", [None, "city"])
def test_memory_stays_bounded(tmp_path, partition_by):
    """When the generator yields record k, all but a bounded number of records are in finished files."""
    dest = str(tmp_path / "out")
    per_file, workers = 50, 2
    in_flight = workers + 1
    held = per_file if partition_by is None else 4 * per_file + 1
    excess = []

    def records():
        for k, record in enumerate(sample_records(3000, seed=2)):
            if k % 100 == 0:
                finished = sum(len(sequential(p)) for p in _visible_files(dest))
                excess.append(k - finished - held - in_flight * per_file)
            yield record

    written = parallel_write(records(), dest, partition_by=partition_by, records_per_file=per_file, workers=workers)
    assert sum(w.rows for w in written) == 3000
    assert max(excess) <= 0


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_file_names_itself_and_leaves_no_partial_output(tmp_path, mode, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    records = [{"i": i} for i in range(300)]
    records[150] = {"i": {(1, 2): "tuple key"}}  # JSON objects have no tuple keys
    dest = str(tmp_path / "out")
    with pytest.raises(FileWriteError, match=r"part-00001\.jsonl.*TypeError: keys must be str") as info:
        parallel_write(iter(records), dest, records_per_file=100, workers=1, **_options(mode, client))
    assert info.value.path == os.path.join(dest, "part-00001.jsonl")
    if mode == "thread":
        assert isinstance(info.value.__cause__, TypeError)
    assert temporaries(dest, recursive=True) == []
    assert not os.path.exists(info.value.path)
    for path in _visible_files(dest):  # whatever was completed is whole
        assert len(sequential(path)) == 100
    assert [t for t in threading.enumerate() if t.name.startswith("parallel-write")] == []


@pytest.mark.parametrize("partition_by", [None, "city", "function"])
def test_a_bag_is_written_on_the_workers(tmp_path, client, partition_by):
    records = list(sample_records(1200, seed=3))
    bag = db.from_sequence(records, npartitions=3)
    key = (lambda r: r["city"][:2]) if partition_by == "function" else partition_by
    written = parallel_write(bag, str(tmp_path / "out"), to_ext="jsonl", partition_by=key, client=client)
    assert sum(w.rows for w in written) == 1200
    got = [r for path, _ in written for r in sequential(path)]
    assert Counter(map(_key, got)) == Counter(map(_key, records))
    if partition_by is None:
        assert got == records and len(written) == 3
    else:
        label = "city" if partition_by == "city" else "key"
        assert all(os.path.basename(os.path.dirname(p)).startswith(f"{label}=") for p, _ in written)
    assert temporaries(tmp_path / "out", recursive=True) == []


def test_a_parallel_reader_round_trips_and_is_closed(tmp_path):
    sources = [write_sample(str(tmp_path / f"in{i}.{e}"), 700, seed=i) for i, e in enumerate(["csv", "jsonl.gz"])]
    reader = parallel_read(sources)
    written = parallel_write(reader, str(tmp_path / "out"), to_ext="parquet", records_per_file=300)
    assert reader.closed
    got = [r for p, _ in written for r in sequential(p)]
    expected = [r for s in sources for r in sequential(s)]
    assert Counter(map(_key, got)) == Counter(map(_key, expected))
    with pytest.raises(ValueError, match="not \\(source, record\\) pairs"):
        parallel_write(parallel_read(sources, with_source=True), str(tmp_path / "pairs"))


def test_nothing_to_write_writes_nothing(tmp_path):
    assert parallel_write(iter([]), str(tmp_path / "out"), partition_by="a") == []
    assert _visible_files(str(tmp_path / "out")) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"to_ext": "nope"}, ValueError, "Unknown output format 'nope'"),
        ({"to_ext": "a/b"}, ValueError, "to_ext must be an extension"),
        ({"partition_by": 3}, TypeError, "partition_by must be a field name or a function"),
        ({"records_per_file": 0}, ValueError, "records_per_file must be >= 1"),
        ({"mode": "fork"}, ValueError, "mode must be 'thread' or 'process'"),
        ({"mode": "thread", "scheduler": "tcp://127.0.0.1:1"}, ValueError, "mode='thread' writes in this process"),
    ],
)
def test_bad_arguments_fail_up_front(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        parallel_write([{"a": 1}], str(tmp_path / "out"), **kwargs)


def test_worker_callables_pickle(tmp_path):
    writer = FileWriter(str(tmp_path / "a" / "x.jsonl"), "job", {}, 10)
    clone = pickle.loads(pickle.dumps(writer))
    assert clone == writer and clone([{"a": 1}]) == (writer.path, 1)
    import cloudpickle

    keyed = KeyedPartitionWriter(str(tmp_path / "k"), "jsonl", 7, "job", cloudpickle.dumps(lambda r: r["a"] % 2))
    clone = pickle.loads(pickle.dumps(keyed))
    assert sorted(clone([{"a": 1}, {"a": 2}, {"a": 3}])) == [
        (str(tmp_path / "k" / "key=0" / "part-00007.jsonl"), 1),
        (str(tmp_path / "k" / "key=1" / "part-00007.jsonl"), 2),
    ]
