"""read_bag gives exactly iterabledata's sequential records, in order."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os

import dask
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import iterable_dask
from iterable_dask import PartitionReadError, UnsplittableFileError, plan_partitions, read_bag
from iterable_dask.io.partitions import CSVRange, JSONLinesRange, ParquetRowGroups, WholeFile
from iterable_dask.sample import write_sample

from .helpers import read_in_process, sequential

FORMATS = ["data.csv", "data.tsv", "data.jsonl", "data.parquet", "data.csv.gz", "data.jsonl.gz"]


@pytest.mark.parametrize("name", FORMATS)
def test_read_bag_matches_sequential_on_the_cluster(tmp_path, client, name):
    path = write_sample(str(tmp_path / name), 3000, seed=1)
    bag = read_bag(path, blocksize=20_000)
    assert iterable_dask.compute(bag, client=client)[0] == sequential(path)


def test_large_text_files_split_into_ranges_others_do_not(tmp_path):
    csv_path = write_sample(str(tmp_path / "a.csv"), 3000)
    gz_path = write_sample(str(tmp_path / "a.csv.gz"), 3000)
    jsonl_path = write_sample(str(tmp_path / "a.jsonl"), 3000)
    parts = plan_partitions([csv_path, gz_path, jsonl_path], blocksize=20_000)
    kinds = [type(p) for p in parts]
    assert kinds.count(WholeFile) == 1  # the compressed file
    assert kinds.count(CSVRange) >= 5
    assert kinds.count(JSONLinesRange) >= 5
    assert read_in_process(parts) == sequential(csv_path) + sequential(gz_path) + sequential(jsonl_path)


def test_many_sources_keep_their_order(tmp_path, client):
    paths = [
        write_sample(str(tmp_path / f"f{i}.{ext}"), 500, seed=i, start=i * 500)
        for i, ext in enumerate(["csv", "jsonl", "parquet", "csv.gz"])
    ]
    expected = [r for p in paths for r in sequential(p)]
    bag = read_bag(paths, blocksize=4000)
    assert iterable_dask.compute(bag, client=client)[0] == expected
    # A directory and a glob expand in sorted order.
    assert iterable_dask.compute(read_bag(str(tmp_path), blocksize=4000), client=client)[0] == [
        r for p in sorted(paths) for r in sequential(p)
    ]


def test_parquet_partitions_by_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(tmp_path / "rg.parquet")
    table = pa.Table.from_pylist([{"a": i, "b": str(i), "c": [i, i]} for i in range(1000)])
    pq.write_table(table, path, row_group_size=100)
    parts = plan_partitions(path, blocksize=1)
    assert [p.row_groups for p in parts] == [(i,) for i in range(10)]
    assert all(isinstance(p, ParquetRowGroups) for p in parts)
    assert read_in_process(parts) == sequential(path)


def test_open_iterables_are_shipped_as_packed_chunks(tmp_path, client):
    from iterable import open_iterable

    path = write_sample(str(tmp_path / "a.csv"), 2500)
    with open_iterable(path) as it:
        bag = read_bag([it], chunk_size=1000)
        assert bag.npartitions == 3
        assert iterable_dask.compute(bag, client=client)[0] == sequential(path)


def _write_bytes(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _split_results(path: str, blocksize: int):
    return read_in_process(plan_partitions(path, blocksize=blocksize))


CSV_CASES = {
    "empty": b"",
    "header_only": b"a,b,c\n",
    "header_only_no_newline": b"a,b,c",
    "no_trailing_newline": b"a,b\n1,2\n3,4",
    "crlf": b"a,b\r\n1,2\r\n3,4\r\n",
    "blank_lines": b"a,b\n\n1,2\n\n\n3,4\n",
    "short_and_long_rows": b"a,b,c\n1\n1,2,3,4,5\n,,\n",
    "quoted_commas": b'a,b\n"x,y",1\n"say ""hi""",2\n',
    "bom": "\ufeffa,b\n1,2\n".encode(),
    "unicode": "name,v\nÅsa,1\n日本,2\nemoji 😀,3\n".encode(),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
@pytest.mark.parametrize("blocksize", [1, 2, 3, 5, 8, 64, 10_000])
def test_csv_boundary_cases(tmp_path, case, blocksize):
    path = _write_bytes(tmp_path, f"{case}.csv", CSV_CASES[case])
    assert _split_results(path, blocksize) == sequential(path)


def test_block_edge_on_a_newline_and_inside_a_record(tmp_path):
    data = b"h1,h2\n" + b"".join(b"%04d,xx\n" % i for i in range(50))  # 8-byte records after a 6-byte header
    path = _write_bytes(tmp_path, "fixed.csv", data)
    expected = sequential(path)
    for blocksize in (8, 7, 9, 16, 4):  # on newlines, one byte before and after
        assert _split_results(path, blocksize) == expected


def test_quoted_newline_across_a_boundary_is_a_clear_error_never_wrong_data(tmp_path):
    # The sniffed head is clean; a quoted newline appears later in the file.
    head = b"a,b\n" + b"".join(b"%d,plain\n" % i for i in range(20_000))
    data = head + b'1,"multi\nline"\n2,after\n'
    path = _write_bytes(tmp_path, "late.csv", data)
    boundary = len(head) + 5  # inside the quoted field
    with pytest.raises(UnsplittableFileError, match="late.csv.*blocksize=None"):
        read_in_process(plan_partitions(path, blocksize=boundary - 4))
    # blocksize=None reads it as one partition, through iterabledata.
    assert _split_results(path, None) == sequential(path)


def test_quoted_newlines_in_the_head_read_as_one_partition(tmp_path):
    data = b'a,b\n"x\ny",1\n' + b"".join(b"%d,v\n" % i for i in range(1000))
    path = _write_bytes(tmp_path, "early.csv", data)
    parts = plan_partitions(path, blocksize=100)
    assert len(parts) == 1
    assert read_in_process(parts) == sequential(path)


@st.composite
def csv_files(draw):
    field = st.one_of(
        st.text(alphabet="abc xyz,\"'é", max_size=6),
        st.text(alphabet="abc\n\r,", max_size=4).map(lambda s: s),
        st.sampled_from(["", "1", "2.5"]),
    )
    ncols = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(field, min_size=1, max_size=ncols + 1), max_size=25))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow([f"c{i}" for i in range(ncols)])
    for row in rows:
        if draw(st.booleans()) and not row:
            buf.write("\n")
        writer.writerow(row)
    return buf.getvalue().encode("utf-8")


def _record_spans(data: bytes) -> list[tuple[int, int, bool]]:
    """(first byte, end, spans several lines) of each CSV record (the header first), as Python's csv reads them."""
    lines = list(io.StringIO(data.decode("utf-8"), newline=""))
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    reader = csv.reader(iter(lines))
    spans, previous = [], 0
    for _ in reader:
        spans.append((offsets[previous], offsets[reader.line_num], reader.line_num - previous > 1))
        previous = reader.line_num
    return spans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files(), choice=st.data())
def test_csv_splits_never_lose_or_duplicate_a_record(tmp_path, data, choice):
    """Any cut of a CSV file into byte ranges reads its records exactly, or refuses when it must.

    The cuts are drawn anywhere, and on purpose inside records that span lines
    (a quoted newline). Reading raises UnsplittableFileError exactly when a
    cut, aligned to the next line start, falls inside such a record; else the
    ranges give iterabledata's records, in order.
    """
    path = _write_bytes(tmp_path, "h.csv", data)
    spans = _record_spans(data)
    if not spans or spans[0][2]:
        return  # no header line to split after (the planner never splits such a file)
    header_end = spans[0][1]
    inside = [p for start, end, multi in spans[1:] if multi for p in range(start + 1, end)]
    anywhere = st.integers(header_end, len(data))
    cut = st.one_of(anywhere, st.sampled_from(inside)) if inside else anywhere
    cuts = sorted(set(choice.draw(st.lists(cut, max_size=5), label="cuts")))
    last = len(data) + choice.draw(st.integers(0, 2), label="past the end")
    bounds = [header_end, *(c for c in cuts if header_end < c < len(data)), last]
    fieldnames = tuple(next(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))))
    parts = [CSVRange(path, s, e, fieldnames, header_end, "utf-8") for s, e in itertools.pairwise(bounds)]
    # A cut moves to the next line start in the bytes (after a b"\n"), as the range readers align it.
    line_starts = sorted({0, len(data)} | {i + 1 for i, c in enumerate(data) if c == 10})
    aligned = [next(x for x in line_starts if x >= c) for c in bounds[1:-1]]
    must_refuse = any(start < a < end for a in aligned for start, end, multi in spans[1:] if multi)
    if must_refuse:
        with pytest.raises(UnsplittableFileError, match="spans several lines"):
            read_in_process(parts)
    else:
        assert read_in_process(parts) == sequential(path)


@st.composite
def jsonl_files(draw):
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
    nested = st.one_of(leaf, st.lists(leaf, max_size=3), st.dictionaries(st.text(max_size=3), leaf, max_size=3))
    values = st.one_of(nested, st.lists(nested, max_size=3), st.dictionaries(st.text(max_size=3), nested, max_size=3))
    records = draw(st.lists(st.dictionaries(st.text(max_size=4), values, max_size=3), max_size=20))
    lines = []
    for record in records:
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "   "])))
        lines.append(json.dumps(record, ensure_ascii=draw(st.booleans())))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return (ending.join(lines) + (ending if draw(st.booleans()) else "")).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=jsonl_files(), blocksize=st.integers(1, 100))
def test_jsonl_splits_match_sequential(tmp_path, data, blocksize):
    path = _write_bytes(tmp_path, "h.jsonl", data)
    assert _split_results(path, blocksize) == sequential(path)


def test_malformed_json_line_names_file_and_offset(tmp_path, client):
    data = b'{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n'
    path = _write_bytes(tmp_path, "bad.jsonl", data)
    with pytest.raises(PartitionReadError, match=r"Malformed JSON line in '.*bad.jsonl' at byte offset 18"):
        iterable_dask.compute(read_bag(path, blocksize=5), client=client)


def test_truncated_gzip_names_the_file(tmp_path, client):
    path = str(tmp_path / "cut.jsonl.gz")
    with gzip.open(path, "wt") as f:
        for i in range(2000):
            f.write(json.dumps({"i": i, "pad": "x" * 50}) + "\n")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(PartitionReadError, match=r"Failed to read '.*cut.jsonl.gz'"):
        iterable_dask.compute(read_bag(path), client=client)


def test_missing_sources_fail_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="No files match the pattern"):
        read_bag(str(tmp_path / "*.csv"))
    with pytest.raises(FileNotFoundError, match="File not found: .*nope.csv"):
        read_bag(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="sources is empty"):
        read_bag([])


def test_non_default_reader_arguments_fall_back_to_whole_files(tmp_path):
    path = write_sample(str(tmp_path / "a.jsonl"), 100)
    parts = plan_partitions(path, blocksize=100, on_error="skip")
    assert [type(p) for p in parts] == [WholeFile]
    assert read_in_process(parts) == sequential(path, on_error="skip")


def test_utf16_csv_is_not_split(tmp_path):
    path = str(tmp_path / "u16.csv")
    with open(path, "w", encoding="utf-16", newline="") as f:
        f.write("a,b\n" + "".join(f"{i},x\n" for i in range(200)))
    parts = plan_partitions(path, blocksize=10, encoding="utf-16")
    assert [type(p) for p in parts] == [WholeFile]
    assert read_in_process(parts) == sequential(path, encoding="utf-16")


def test_reader_arguments_reach_iterabledata(tmp_path):
    path = _write_bytes(tmp_path, "latin.csv", "a,b\ncafé,1\n".encode("latin-1"))
    assert _split_results(path, 4) == sequential(path, encoding="latin-1") == [{"a": "café", "b": "1"}]
    assert read_in_process(plan_partitions(path, blocksize=4, encoding="latin-1")) == [{"a": "café", "b": "1"}]


def test_file_size_is_not_read_in_the_caller(tmp_path):
    # Planning a 3 MB CSV reads only its head: the partitions hold descriptors, not records.
    path = write_sample(str(tmp_path / "a.csv"), 40_000)
    parts = plan_partitions(path, blocksize=256_000)
    assert len(parts) == -(-(os.path.getsize(path) - parts[0].header_end) // 256_000)
    assert all(isinstance(p, CSVRange) for p in parts)


def test_gc_pause_is_shared_and_restored():
    import gc

    from iterable_dask.core.chunks import gc_paused

    assert gc.isenabled()
    with gc_paused:
        assert not gc.isenabled()
        with gc_paused:
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused:
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()


def test_exotic_line_breaks_split_as_a_text_file_would(tmp_path):
    data = "a,b\nx\u2028y,1\nz\x0cw,2\n".encode()
    path = _write_bytes(tmp_path, "exotic.csv", data)
    assert _split_results(path, 3) == sequential(path)
    jdata = '{"a": "x\u2028y"}\n{"a": "\x85"}\n'.encode()
    jpath = _write_bytes(tmp_path, "exotic.jsonl", jdata)
    assert _split_results(jpath, 3) == sequential(jpath)


def test_small_files_share_partitions_by_bytes_and_big_ones_split(tmp_path, client):
    """Consecutive small files group up to the target bytes (each counting an open cost); order holds."""
    from iterable_dask.io.partitions import FileGroup

    paths = [write_sample(str(tmp_path / f"s{i:03d}.csv"), 20, seed=i) for i in range(100)]
    paths.insert(50, write_sample(str(tmp_path / "s049b-big.csv"), 3000, seed=99))  # splits: closes the group
    with dask.config.set({"iterable-dask.files.open-cost": 1000, "iterable-dask.workers": 2}):
        parts = plan_partitions(paths, blocksize=20_000)
    kinds = [type(p).__name__ for p in parts]
    assert kinds[0] == "FileGroup" and kinds[-1] == "FileGroup" and kinds.count("CSVRange") >= 4
    grouped = [path for p in parts if isinstance(p, FileGroup) for path in p.paths]
    assert grouped == [p for p in paths if "big" not in p]
    assert all(sum(os.path.getsize(q) + 1000 for q in p.paths) <= 20_000 for p in parts if isinstance(p, FileGroup))
    expected = [r for p in paths for r in sequential(p)]
    assert iterable_dask.compute(read_bag(paths, blocksize=20_000), client=client)[0] == expected
    with dask.config.set({"iterable-dask.files.open-cost": "1MiB"}):  # opening costs more than the target
        assert not any(isinstance(p, FileGroup) for p in plan_partitions(paths, blocksize=20_000))
    assert not any(isinstance(p, FileGroup) for p in plan_partitions(paths, blocksize=None))  # one per file


class Flaky:
    """A partition reader that fails its first ``fails`` calls with ``error``; a file counts the calls."""

    def __init__(self, counter: str, fails: int, error: Exception):
        self.counter, self.fails, self.error = counter, fails, error

    def __call__(self):
        with open(self.counter, "a") as f:
            f.write("x")
        with open(self.counter) as f:
            calls = len(f.read())
        if calls <= self.fails:
            raise self.error
        return [{"calls": calls}]


def test_partitions_retry_transient_failures_in_place_and_data_errors_never(tmp_path, client):
    import errno

    from iterable_dask.core.retry import Retrying

    eio = tmp_path / "eio"
    assert client.submit(Retrying(Flaky(str(eio), 2, OSError(errno.EIO, "I/O error")), 2), pure=False).result() == [
        {"calls": 3}
    ]
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="malformed"):
        client.submit(Retrying(Flaky(str(data), 5, ValueError("malformed")), 2), pure=False).result()
    assert data.read_text() == "x"  # once, not three times


def test_read_bag_reads_a_malformed_file_once(tmp_path, client):
    path = _write_bytes(tmp_path, "bad.jsonl", b'{"a": 1}\n{"a": \n')
    before = {str(e[0]) for e in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.transition_log))}
    with pytest.raises(PartitionReadError, match="bad.jsonl"):
        iterable_dask.compute(read_bag(path), client=client)
    log = client.run_on_scheduler(lambda dask_scheduler: [(str(e[0]), e[2]) for e in dask_scheduler.transition_log])
    runs = [key for key, finish in log if "iterable-read" in key and finish == "processing" and key not in before]
    assert len(runs) == 1  # not retried: the same error would come again


def test_a_few_big_compressed_files_are_not_grouped_into_one_task(tmp_path):
    """Grouping keeps about four tasks per worker thread: eight gzip files on 2 threads stay eight partitions."""
    paths = [write_sample(str(tmp_path / f"g{i}.jsonl.gz"), 3000, seed=i) for i in range(8)]
    with dask.config.set({"iterable-dask.workers": 2}):
        parts = plan_partitions(paths)  # each far below the 32 MiB blocksize
    assert [p.path for p in parts] == paths


def test_many_small_files_make_balanced_partitions(tmp_path):
    """2000-odd small files on 2 threads: 8 partitions of about equal bytes, not 8 full ones and a small ninth."""
    from iterable_dask.io.partitions import FileGroup

    paths = []
    for i in range(203):
        path = tmp_path / f"f{i:03d}.csv"
        path.write_text("id,v\n" + "".join(f"{j},{'x' * (i % 13)}\n" for j in range(5 + i % 7)))
        paths.append(str(path))
    with dask.config.set({"iterable-dask.workers": 2}):
        parts = plan_partitions(str(tmp_path / "*.csv"))
    assert all(isinstance(p, FileGroup) for p in parts) and len(parts) == 8
    assert [q for p in parts for q in p.paths] == paths  # in order, each once
    costs = [sum(os.path.getsize(q) + 65536 for q in p.paths) for p in parts]  # the default open cost
    assert max(costs) - min(costs) <= 2 * (max(os.path.getsize(q) for q in paths) + 65536)  # within two files


@settings(max_examples=300, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=10_000), max_size=60),
    runs=st.integers(min_value=1, max_value=20),
    target=st.one_of(st.none(), st.integers(min_value=1, max_value=30_000)),
)
def test_runs_are_consecutive_complete_and_within_target(weights, runs, target):
    from iterable_dask.core.runs import run_ids

    ids = run_ids(weights, runs, target)
    assert len(ids) == len(weights)
    if not weights:
        return
    assert ids[0] == 0 and all(b - a in (0, 1) for a, b in itertools.pairwise(ids))  # consecutive, in order
    assert ids[-1] + 1 >= min(runs, len(weights))  # every run used while there are items for it
    if target is None:
        assert ids[-1] + 1 == min(runs, len(weights))
    else:
        for run in set(ids):
            members = [w for w, i in zip(weights, ids, strict=True) if i == run]
            assert len(members) == 1 or sum(members) <= target


#: Line lengths around every window a head, sniff or block is read in (64 KiB, a doubled one, 1 MiB).
_WINDOW_EDGES = [(1 << 16) + d for d in (-2, -1, 0, 1, 2)] + [(1 << 17) + 3, (1 << 20) + 1]


def _csv_past_the_windows(newline: str, ncols: int, header_length: int, rows: list[int]) -> bytes:
    """A CSV whose header and records are lines of exactly these lengths (line breaks included)."""

    def line(length: int, fill: str) -> str:
        n = max(ncols, length // 100_000 + 1)  # no field over Python's csv field size limit (128 KiB)
        room = length - (n - 1) - len(newline)
        size, extra = divmod(room, n)
        return ",".join(fill * (size + (i < extra)) for i in range(n)) + newline

    text = line(header_length, "h") + "".join(line(n, "abcdefgh"[i % 8]) for i, n in enumerate(rows))
    return text.encode("utf-8")


_LENGTHS = st.one_of(st.sampled_from(_WINDOW_EDGES), st.integers(100, 300))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(newline="\n", ncols=2, header_length=(1 << 16) + 2, rows=[300, (1 << 16) - 1], blocksize=4096)
@example(newline="\r\n", ncols=2, header_length=(1 << 20) + 1, rows=[], blocksize=4096)
@given(
    newline=st.sampled_from(["\n", "\r\n"]),
    ncols=st.integers(2, 40),
    header_length=_LENGTHS,
    rows=st.lists(_LENGTHS, max_size=8),
    blocksize=st.sampled_from([4096, 1 << 16, (1 << 16) + 1, 1 << 20]),
)
def test_csv_headers_and_records_past_every_window_plan_exactly(tmp_path, newline, ncols, header_length, rows,
                                                                 blocksize):  # fmt: skip
    """The planner's header sniff grows past any window: splits give iterabledata's records.

    The header and the records are drawn as long as a window, give or take a
    byte or two, or short.
    """
    path = _write_bytes(tmp_path, "wide.csv", _csv_past_the_windows(newline, ncols, header_length, rows))
    assert _split_results(path, blocksize) == sequential(path)
