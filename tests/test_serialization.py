"""Every partition callable, task and option object survives pickle (as Dask ships them)."""

from __future__ import annotations

import pickle

import pytest

from iterable_dask.core.chunks import PackedChunk, pack, unpack
from iterable_dask.core.exceptions import ClusterConnectionError, PartitionReadError, UnsplittableFileError
from iterable_dask.io.partitions import CSVRange, FileGroup, JSONLinesRange, PackedRecords, ParquetRowGroups, WholeFile
from iterable_dask.io.write import PartitionWriter
from iterable_dask.pipelines.result import RecordError
from iterable_dask.pipelines.tasks import ChunkOutcome, ChunkTask, RecordFailure

OBJECTS = [
    CSVRange("a.csv", 10, 20, ("a", "b"), 4, "utf-8", ";", "'"),
    JSONLinesRange("a.jsonl", 0, 100, "utf8"),
    ParquetRowGroups("a.parquet", (0, 1, 2)),
    WholeFile("a.csv.gz", {"encoding": "latin-1"}),
    WholeFile("s3://bucket/a.xml", {}, {"anon": True, "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}),
    FileGroup((WholeFile("a.csv"), WholeFile("b.jsonl.gz", {}, {"key": "k"}))),
    CSVRange("s3://b/a.csv", 10, 20, ("a",), 2, "utf-8", storage_options={"key": "k"}),
    PackedRecords(pack([{"a": 1}])),
    PartitionWriter("out/part-0.jsonl", "job", {"keys": ["a"]}, 100),
    ChunkTask(skip_nulls=False, keep_results=True, raise_errors=True, max_failures=3, encode="jsonl"),
    ChunkOutcome(2, [{"a": 1}], {"n": 2}, [RecordFailure(1, "ValueError", "bad")], 1, 0, "tcp://w", None),
    RecordError(5, "KeyError", "'x'"),
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: type(o).__name__)
def test_round_trip(obj):
    assert pickle.loads(pickle.dumps(obj)) == obj


def test_packed_chunk_round_trip():
    chunk = pack([{"a": i} for i in range(10)])
    back = pickle.loads(pickle.dumps(chunk))
    assert isinstance(back, PackedChunk) and len(back) == 10
    assert unpack(back) == [{"a": i} for i in range(10)]


@pytest.mark.parametrize(
    "error",
    [
        PartitionReadError("bad line", filename="a.csv", offset=12),
        UnsplittableFileError("quoted newline", filename="b.csv", offset=99),
        ClusterConnectionError("no scheduler"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_keep_their_details(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert getattr(back, "filename", None) == getattr(error, "filename", None)
    assert getattr(back, "offset", None) == getattr(error, "offset", None)
