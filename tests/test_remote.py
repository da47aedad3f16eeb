"""Data on object storage: every entry point against a real S3-protocol server (moto) through s3fs.

Records are compared with iterabledata's sequential reading of the same
local file; outputs with iterabledata's sequential conversion, byte for byte.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert

import iterable_dask
from iterable_dask.io.fs import get_fs
from iterable_dask.io.partitions import CSVRange, FileGroup, JSONLinesRange, ParquetRowGroups, WholeFile
from iterable_dask.sample import write_sample

from .helpers import sequential

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _put(fs, local: str, url: str) -> str:
    fs.put_file(local, url)
    fs.invalidate_cache()
    return url


def _keys(fs, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p.split("/", 1)[1] for p in fs.find(prefix.removeprefix("s3://")))


@pytest.fixture
def csv_object(s3, tmp_path):
    fs, bucket, _ = s3
    local = write_sample(str(tmp_path / "big.csv"), 3000, seed=1)
    return local, _put(fs, local, f"{bucket}/in/big.csv")


def test_read_bag_splits_an_object_into_byte_ranges(s3, csv_object, client):
    _, _, so = s3
    local, url = csv_object
    parts = iterable_dask.plan_partitions(url, blocksize=40_000, storage_options=so)
    assert len(parts) >= 3 and all(isinstance(p, CSVRange) and p.path == url for p in parts)
    bag = iterable_dask.read_bag(url, blocksize=40_000, storage_options=so)
    assert bag.npartitions == len(parts)
    assert client.compute(bag).result() == sequential(local)


def test_read_bag_takes_storage_options_inside_iterableargs(s3, csv_object, client):
    """iterabledata's own spelling, ``iterableargs={"storage_options": ...}``, reaches fsspec too."""
    _, _, so = s3
    local, url = csv_object
    bag = iterable_dask.read_bag(url, blocksize=40_000, **{"storage_options": so})
    assert client.compute(bag).result() == sequential(local)


def test_read_bag_gzip_jsonl_glob(s3, tmp_path, client):
    fs, bucket, so = s3
    expected = []
    for i in range(3):
        local = write_sample(str(tmp_path / f"log-{i}.jsonl.gz"), 200, seed=i, start=i * 200)
        _put(fs, local, f"{bucket}/logs/log-{i}.jsonl.gz")
        expected.extend(sequential(local))
    parts = iterable_dask.plan_partitions(f"{bucket}/logs/*.jsonl.gz", storage_options=so)
    paths = [q for p in parts for q in (p.paths if isinstance(p, FileGroup) else [p.path])]
    assert paths == [f"{bucket}/logs/log-{i}.jsonl.gz" for i in range(3)]  # whole objects, in order
    assert all(isinstance(p, (WholeFile, FileGroup)) for p in parts)
    bag = iterable_dask.read_bag(f"{bucket}/logs/*.jsonl.gz", storage_options=so)
    assert client.compute(bag).result() == expected


def test_read_bag_jsonl_and_parquet_objects_split(s3, tmp_path, client):
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, bucket, so = s3
    jsonl = write_sample(str(tmp_path / "r.jsonl"), 2000, seed=3)
    table = pa.Table.from_pylist(sequential(jsonl))
    parquet = str(tmp_path / "r.parquet")
    pq.write_table(table, parquet, row_group_size=250)
    _put(fs, jsonl, f"{bucket}/r.jsonl")
    _put(fs, parquet, f"{bucket}/r.parquet")
    parts = iterable_dask.plan_partitions(f"{bucket}/r.*", blocksize=30_000, storage_options=so)
    kinds = {type(p) for p in parts}
    assert kinds == {JSONLinesRange, ParquetRowGroups} and len(parts) > 4
    bag = iterable_dask.read_bag(f"{bucket}/r.*", blocksize=30_000, storage_options=so)
    assert client.compute(bag).result() == sequential(parquet) + sequential(jsonl)


def test_missing_object_and_empty_prefix_name_the_url(s3):
    _, bucket, so = s3
    with pytest.raises(FileNotFoundError, match=rf"{bucket}/nothing\.csv"):
        iterable_dask.read_bag(f"{bucket}/nothing.csv", storage_options=so)
    with pytest.raises(FileNotFoundError, match=rf"No objects match.*{bucket}/empty/\*\.csv"):
        iterable_dask.read_bag(f"{bucket}/empty/*.csv", storage_options=so)
    args = dict(to_ext="jsonl", parallel=True, storage_options=so)
    with pytest.raises(FileNotFoundError, match=rf"{bucket}/none/"):
        iterable_dask.bulk_convert(f"{bucket}/none/*.csv", f"{bucket}/out", strict=True, **args)
    empty = iterable_dask.bulk_convert(f"{bucket}/none/*.csv", f"{bucket}/out", **args)  # iterabledata's answer
    assert (empty.total_files, empty.file_results) == (0, [])


def test_missing_protocol_library_names_the_extra():
    pytest.importorskip("s3fs")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - only where gcsfs happens to be installed
        pytest.skip("gcsfs is installed")
    with pytest.raises(ImportError, match=r"iterable-dask\[gcs\]"):
        iterable_dask.read_bag("gs://bucket/data.csv")
    with pytest.raises(ValueError, match="no protocol 'nosuch'"):
        get_fs("nosuch://bucket/data.csv")


def test_write_bag_to_s3(s3, tmp_path, client):
    fs, bucket, so = s3
    local = write_sample(str(tmp_path / "r.csv"), 500, seed=4)
    bag = iterable_dask.read_bag(local, blocksize=8_000)
    written = iterable_dask.write_bag(bag, f"{bucket}/out", to_ext="jsonl", storage_options=so, client=client)
    assert len(written) == bag.npartitions > 1
    assert _keys(fs, f"{bucket}/out") == [w.split("/", 3)[3] for w in written]
    back = iterable_dask.read_bag(f"{bucket}/out/*.jsonl", storage_options=so)
    assert client.compute(back).result() == sequential(local)


def test_bulk_convert_s3_to_s3_is_byte_identical(s3, tmp_path, client):
    fs, bucket, so = s3
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        _put(fs, write_sample(str(src / f"f{i}.csv"), 300, seed=i), f"{bucket}/in/f{i}.csv")
    local_out = tmp_path / "seq"
    upstream_bulk_convert(str(src / "*.csv"), str(local_out), to_ext="jsonl")
    result = iterable_dask.bulk_convert(
        f"{bucket}/in/*.csv", f"{bucket}/out", to_ext="jsonl", parallel=True, client=client, storage_options=so
    )
    assert result.successful_files == 3 and result.failed_files == 0
    assert [r.source_file for r in result.file_results] == [f"{bucket}/in/f{i}.csv" for i in range(3)]
    assert [r.result.rows_out for r in result.file_results] == [300, 300, 300]
    assert _keys(fs, f"{bucket}/out") == [f"{bucket[5:]}/out/f{i}.jsonl".split("/", 1)[1] for i in range(3)]
    for i in range(3):
        assert fs.cat_file(f"{bucket}/out/f{i}.jsonl") == (local_out / f"f{i}.jsonl").read_bytes()


def test_bulk_convert_sequential_with_urls(s3, tmp_path):
    """parallel=False with a URL: iterabledata's own conversion on local stand-ins, uploaded whole."""
    fs, bucket, so = s3
    local = write_sample(str(tmp_path / "a.csv"), 100, seed=7)
    _put(fs, local, f"{bucket}/in/a.csv")
    result = iterable_dask.bulk_convert(f"{bucket}/in", f"{bucket}/seq", to_ext="jsonl", storage_options=so)
    assert (result.total_files, result.successful_files) == (1, 1)
    upstream_bulk_convert(local, str(tmp_path / "ref"), to_ext="jsonl")
    assert fs.cat_file(f"{bucket}/seq/a.jsonl") == (tmp_path / "ref" / "a.jsonl").read_bytes()


def test_failing_conversion_leaves_no_object(s3, tmp_path, client):
    fs, bucket, so = s3
    good = write_sample(str(tmp_path / "good.jsonl"), 50, seed=1)
    bad = tmp_path / "bad.jsonl"
    shutil.copy(good, bad)
    with open(bad, "a") as f:
        f.write('{"broken": \n')
    _put(fs, good, f"{bucket}/in/good.jsonl")
    _put(fs, str(bad), f"{bucket}/in/bad.jsonl")
    result = iterable_dask.bulk_convert(
        f"{bucket}/in/*.jsonl", f"{bucket}/out", to_ext="csv", parallel=True, client=client, storage_options=so
    )
    assert (result.successful_files, result.failed_files) == (1, 1)
    failed = next(r for r in result.file_results if not r.success)
    assert "bad.jsonl" in str(failed.error)
    assert _keys(fs, f"{bucket}/out") == [f"{bucket[5:]}/out/good.csv".split("/", 1)[1]]


def test_bulk_convert_resume_on_s3(s3, tmp_path, client):
    fs, bucket, so = s3
    for i in range(2):
        _put(fs, write_sample(str(tmp_path / f"f{i}.csv"), 40, seed=i), f"{bucket}/in/f{i}.csv")
    args = dict(to_ext="jsonl", parallel=True, client=client, storage_options=so)
    first = iterable_dask.bulk_convert(f"{bucket}/in", f"{bucket}/out", **args)
    assert first.successful_files == 2 and not first.skipped_files
    again = iterable_dask.bulk_convert(f"{bucket}/in", f"{bucket}/out", resume=True, **args)
    assert again.skipped_files == [f"{bucket}/in/f0.csv", f"{bucket}/in/f1.csv"]
    fs.rm(f"{bucket}/out/f1.jsonl")
    third = iterable_dask.bulk_convert(f"{bucket}/in", f"{bucket}/out", resume=True, **args)
    assert third.skipped_files == [f"{bucket}/in/f0.csv"]
    assert fs.cat_file(f"{bucket}/out/f1.jsonl").count(b"\n") == 40


@pytest.mark.parametrize("direction", ["s3->s3", "local->s3", "s3->local"])
def test_convert_parallel_with_urls(direction, s3, tmp_path, client):
    fs, bucket, so = s3
    local = write_sample(str(tmp_path / "big.csv"), 2000, seed=5)
    reference = tmp_path / "ref.jsonl"
    iterable_dask.convert(local, str(reference))
    source = _put(fs, local, f"{bucket}/big.csv") if direction.startswith("s3") else local
    target = f"{bucket}/big.jsonl" if direction.endswith("s3") else str(tmp_path / "out.jsonl")
    result = iterable_dask.convert(
        source, target, parallel=True, client=client, blocksize=1 << 20, storage_options=so, columnar=False
    )
    assert result.rows_out == 2000
    data = fs.cat_file(target) if target.startswith("s3://") else Path(target).read_bytes()
    assert data == reference.read_bytes()


def test_convert_sequential_url_to_url(s3, tmp_path):
    fs, bucket, so = s3
    local = write_sample(str(tmp_path / "a.csv"), 120, seed=2)
    _put(fs, local, f"{bucket}/a.csv")
    result = iterable_dask.convert(f"{bucket}/a.csv", f"{bucket}/a.parquet", storage_options=so)
    assert result.rows_out == 120
    fs.get_file(f"{bucket}/a.parquet", str(tmp_path / "back.parquet"))
    assert sequential(str(tmp_path / "back.parquet")) == sequential(local)


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_pipeline_s3_to_s3(mode, s3, csv_object, client):
    fs, bucket, so = s3
    local, url = csv_object
    result = iterable_dask.pipeline(
        url,
        f"{bucket}/piped.jsonl",
        _upper_name,
        parallel=True,
        parallel_mode=mode,
        client=client,
        chunk_size=500,
        storage_options=so,
    )
    assert result.rec_count == 3000
    with open_iterable(local) as src:
        expected = [_upper_name(r, {}) for r in src]
    fs.invalidate_cache()
    lines = fs.cat_file(f"{bucket}/piped.jsonl").decode().splitlines()
    import json

    assert [json.loads(line) for line in lines] == expected


def _upper_name(record, state):
    return {**record, "city": record["city"].upper()}


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parallel_read_from_s3(mode, s3, tmp_path, client):
    fs, bucket, so = s3
    expected = []
    for i, ext in enumerate(["csv", "jsonl.gz", "jsonl"]):
        local = write_sample(str(tmp_path / f"s{i}.{ext}"), 150, seed=i)
        _put(fs, local, f"{bucket}/p/s{i}.{ext}")
        expected.extend(sequential(local))
    options = {"client": client} if mode == "process" else {"mode": "thread"}
    with iterable_dask.parallel_read(f"{bucket}/p/", ordered=True, storage_options=so, **options) as reader:
        assert list(reader) == expected


def test_parallel_write_to_s3(s3, tmp_path, client):
    _, bucket, so = s3
    records = [{"n": i, "city": "AB"[i % 2]} for i in range(100)]
    written = iterable_dask.parallel_write(
        iter(records), f"{bucket}/pw", to_ext="jsonl", partition_by="city", records_per_file=30, storage_options=so
    )
    assert sum(w.rows for w in written) == 100
    assert all(w.path.startswith(f"{bucket}/pw/city=") for w in written)
    back = iterable_dask.read_bag([w.path for w in written], storage_options=so)
    assert sorted(client.compute(back).result(), key=lambda r: r["n"]) == records


def test_gzip_object_converts(s3, tmp_path, client):
    fs, bucket, so = s3
    local = write_sample(str(tmp_path / "g.csv"), 80, seed=9)
    gz = tmp_path / "g.csv.gz"
    with open(local, "rb") as f, gzip.open(gz, "wb") as out:
        out.write(f.read())
    _put(fs, str(gz), f"{bucket}/g.csv.gz")
    result = iterable_dask.bulk_convert(
        f"{bucket}/g.csv.gz", str(tmp_path / "out"), to_ext="jsonl", parallel=True, client=client, storage_options=so
    )
    assert result.successful_files == 1
    assert sequential(str(tmp_path / "out" / "g.csv.jsonl")) == sequential(local)  # iterabledata's naming
    assert os.listdir(tmp_path / "out") == ["g.csv.jsonl"]


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_read_bag_and_convert_over_http(http_folder, tmp_path, client):
    pytest.importorskip("aiohttp")
    folder, base = http_folder
    csv_path = write_sample(str(folder / "a.csv"), 120, seed=3)
    gz_path = write_sample(str(folder / "b.jsonl.gz"), 80, seed=4)
    bag = iterable_dask.read_bag([f"{base}/a.csv", f"{base}/b.jsonl.gz"])
    assert client.compute(bag).result() == sequential(csv_path) + sequential(gz_path)
    result = iterable_dask.convert(f"{base}/a.csv", str(tmp_path / "a.parquet"), parallel=True, client=client)
    assert result.rows_out == 120
    assert sequential(str(tmp_path / "a.parquet")) == sequential(csv_path)


@pytest.mark.slow
def test_remote_byte_ranges_align_as_local_ones(s3, tmp_path):
    """Range requests on an object give the bytes, start and end flag the local seek-and-readline gives."""
    import random

    from iterable_dask.io.partitions import _read_range

    fs, bucket, so = s3
    rng = random.Random(7)
    lines = [("x" * rng.choice([3, 40, 150_000])) + "\n" for _ in range(12)]  # some lines outrun one request
    local = tmp_path / "ragged.txt"
    local.write_text("".join(lines) + "tail without newline")
    url = _put(fs, str(local), f"{bucket}/ragged.txt")
    size = local.stat().st_size
    newlines = [i for i, c in enumerate(local.read_bytes()) if c == 10]
    points = sorted(
        {0, 1, size - 1, size, size + 10, *newlines, *(n + 1 for n in newlines), *(n + 2 for n in newlines)}
    )
    cases = [(a, b, floor) for a in points for b in points if a <= b for floor in (0, 4)][::7]
    assert len(cases) > 100
    for start, end, floor in cases:
        assert _read_range(url, start, end, floor, so) == _read_range(str(local), start, end, floor, None), (start, end)
