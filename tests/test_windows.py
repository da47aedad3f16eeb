"""Files at the edges of every fixed-size window read exactly as iterabledata reads them.

The package reads a file's first bytes in several places (the CSV header
sniff, the head a remote file's dialect is detected from, bytes-per-record
estimates, a DataFrame's sample) and reads by blocks elsewhere (range
alignment, JSON Lines blocks). A header line or a record just under, at and
just over each window (64 KiB, 1 MiB) goes through every entry point and is
compared with iterabledata record for record, and byte for byte where it
writes text. A header cut at a window once turned its tail into a record,
reported as success.
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.convert.core import convert as upstream_convert
from iterable.pipeline import pipeline as upstream_pipeline

import iterable_dask
from iterable_dask.cli.head import head_records
from iterable_dask.io.fast_records import BLOCK
from iterable_dask.io.head import FIRST_BYTES

from .helpers import sequential

W, M = FIRST_BYTES, 1 << 20
assert BLOCK == M  # the JSON Lines block reader's window is the 1 MiB one below
#: Bytes a range of the small-blocksize reads holds: many ranges, edges everywhere.
SMALL_BLOCK = 48 * 1024
#: Bytes of records after a header: over the 1 MiB at which conversions split a file into ranges.
DATA_BYTES = 1_200_000


def _first_line_length(path: str) -> int:
    with open(path, "rb") as f:
        return len(f.readline())


def _fields(n: int, length: int, newline: str, fill: str = "x") -> list[str]:
    """``n`` fields whose CSV line (commas and ``newline`` included) is exactly ``length`` bytes."""
    room = length - (n - 1) - len(newline)
    assert room >= n, (n, length)
    size, extra = divmod(room, n)
    return [fill * (size + (i < extra)) for i in range(n)]


def csv_with_header(path: str, length: int, newline: str = "\n") -> str:
    """A CSV whose header line (its line break included) is ``length`` bytes, then ~1.2 MB of short records."""
    n = max(2, length // 1000)  # long names, few columns: a narrow frame with a long header
    names = [f"{i:05d}" + name[5:] for i, name in enumerate(_fields(n, length, newline, fill="h"))]
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(names) + newline)
        written, i = 0, 0
        while written < DATA_BYTES:
            line = ",".join(f"{(i + j) % 97:02d}" * 20 for j in range(n)) + newline  # long values: few rows
            f.write(line)
            written += len(line)
            i += 1
    assert _first_line_length(path) == length
    return path


#: Line lengths of the long records: around each window, and a first record longer than the sniff.
LONG_LINES = [W - 1, W, W + 1, M - 1, M, M + 1]


def csv_with_long_records(path: str, newline: str = "\n") -> str:
    """Short records with records of exactly each :data:`LONG_LINES` length among them (the first one too)."""
    n = 200  # fields of under 6 KB: none over Python's csv field size limit
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(f"c{i}" for i in range(n)) + newline)
        for k, length in enumerate(LONG_LINES):
            f.write(",".join(_fields(n, length, newline, fill="abcdefghij"[k])) + newline)
            for i in range(40):
                f.write(",".join(str(i) for _ in range(n)) + newline)
    return path


def jsonl_with_long_records(path: str, newline: str = "\n") -> str:
    """JSON Lines records of exactly each :data:`LONG_LINES` length (the first one too), short ones between."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        for k, length in enumerate(LONG_LINES):
            stub = json.dumps({"id": k, "text": "", "n": 0.5})
            text = "é" * 3 + "x" * (length - len(newline) - len(stub) - 6)  # 3 two-byte characters
            line = json.dumps({"id": k, "text": text, "n": 0.5}, ensure_ascii=False) + newline
            assert len(line.encode("utf-8")) == length
            f.write(line)
            for i in range(300):
                f.write(json.dumps({"id": i, "text": "short", "n": i * 1.5}) + newline)
    return path


FILES: dict[str, Callable[[str], str]] = {
    "header-64KiB-minus-1.csv": lambda p: csv_with_header(p, W - 1),
    "header-64KiB.csv": lambda p: csv_with_header(p, W, "\r\n"),
    "header-64KiB-plus-1.csv": lambda p: csv_with_header(p, W + 1),
    "header-128KiB-plus-3.csv": lambda p: csv_with_header(p, 2 * W + 3),  # past a doubled window too
    "header-1MiB-plus-1.csv": lambda p: csv_with_header(p, M + 1),
    "long-records.csv": lambda p: csv_with_long_records(p, "\r\n"),
    "long-records.jsonl": jsonl_with_long_records,
}
#: The header cases at 64 KiB go through the entry points that sniff a header; the others through all.
SNIFF_ONLY = {"header-64KiB-minus-1.csv", "header-64KiB.csv", "header-64KiB-plus-1.csv"}


@pytest.fixture(scope="module")
def window_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("windows")
    return {name: make(str(folder / name)) for name, make in FILES.items()}


def _other_text(path: str) -> str:
    return "jsonl" if path.endswith(".csv") else "csv"


def _bag(path: str, client: Any, **options: Any) -> list[Any]:
    return iterable_dask.compute(iterable_dask.read_bag(path, **options), client=client)[0]


def _same_bytes(ours: str, theirs: str) -> None:
    assert os.path.getsize(ours) == os.path.getsize(theirs)
    assert filecmp.cmp(ours, theirs, shallow=False), f"{ours} differs from iterabledata's {theirs}"


def check_read_bag_default(path: str, client: Any, tmp: Any) -> None:
    assert _bag(path, client) == sequential(path)


def check_read_bag_small_blocks(path: str, client: Any, tmp: Any) -> None:
    assert _bag(path, client, blocksize=SMALL_BLOCK) == sequential(path)


def check_read_bag_window_blocks(path: str, client: Any, tmp: Any) -> None:
    """Ranges whose edges fall at multiples of the 64 KiB window."""
    assert _bag(path, client, blocksize=W) == sequential(path)


def check_convert(path: str, client: Any, tmp: Any) -> None:
    ext = _other_text(path)
    upstream_convert(path, str(tmp / f"ref.{ext}"))
    iterable_dask.convert(path, str(tmp / f"seq.{ext}"))
    result = iterable_dask.convert(path, str(tmp / f"par.{ext}"), parallel=True, client=client, blocksize=SMALL_BLOCK)
    _same_bytes(str(tmp / f"seq.{ext}"), str(tmp / f"ref.{ext}"))
    _same_bytes(str(tmp / f"par.{ext}"), str(tmp / f"ref.{ext}"))
    assert result.rows_out == len(sequential(path))


def check_convert_row_path(path: str, client: Any, tmp: Any) -> None:
    ext = _other_text(path)
    upstream_convert(path, str(tmp / f"ref.{ext}"))
    iterable_dask.convert(
        path, str(tmp / f"par.{ext}"), parallel=True, client=client, blocksize=SMALL_BLOCK, columnar=False
    )
    _same_bytes(str(tmp / f"par.{ext}"), str(tmp / f"ref.{ext}"))


def _bulk(path: str, client: Any, tmp: Any, to_ext: str, **options: Any) -> tuple[str, str]:
    folder = tmp / "in"
    folder.mkdir()
    name = os.path.basename(path)
    os.symlink(path, folder / name)
    stem, ext = name.rsplit(".", 1)
    reference = upstream_bulk_convert(str(folder / f"*.{ext}"), str(tmp / "ref"), to_ext=to_ext)
    result = iterable_dask.bulk_convert(str(folder / f"*.{ext}"), str(tmp / "par"), to_ext=to_ext, parallel=True,
                                        client=client, **options)  # fmt: skip
    assert result.successful_files == reference.successful_files == 1 and not result.errors
    assert result.total_rows_out == reference.total_rows_out
    return str(tmp / "par" / f"{stem}.{to_ext}"), str(tmp / "ref" / f"{stem}.{to_ext}")


def check_bulk_convert_text(path: str, client: Any, tmp: Any) -> None:
    ours, theirs = _bulk(path, client, tmp, _other_text(path))
    _same_bytes(ours, theirs)


def check_bulk_convert_row_path(path: str, client: Any, tmp: Any) -> None:
    """Without the columnar path, bulk_convert reads a big file in byte ranges on the worker."""
    ours, theirs = _bulk(path, client, tmp, _other_text(path), columnar=False)
    _same_bytes(ours, theirs)


def check_bulk_convert_parquet(path: str, client: Any, tmp: Any) -> None:
    ours, theirs = _bulk(path, client, tmp, "parquet")
    assert sequential(ours) == sequential(theirs)


def check_read_dataframe(path: str, client: Any, tmp: Any) -> None:
    import pandas as pd

    df = iterable_dask.read_dataframe(path, blocksize=4 * W)  # each partition's columns cost Dask, not records
    got = client.compute(df).result().reset_index(drop=True)
    expected = pd.DataFrame.from_records(sequential(path))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def check_parallel_read(path: str, client: Any, tmp: Any) -> None:
    with iterable_dask.parallel_read([path, path], ordered=True, client=client, blocksize=SMALL_BLOCK) as reader:
        assert list(reader) == sequential(path) * 2


def _tag(record: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    return {**record, "seen": 1}


def check_pipeline(path: str, client: Any, tmp: Any) -> None:
    outputs = {}
    for name, extra in (("ref", None), ("par", {"parallel": True, "parallel_mode": "process", "client": client})):
        out = str(tmp / f"{name}.jsonl")
        with open_iterable(path) as src, open_iterable(out, mode="w") as dst:
            if extra is None:
                upstream_pipeline(src, dst, _tag)
            else:
                iterable_dask.pipeline(src, dst, _tag, chunk_size=50, **extra)
        outputs[name] = out
    _same_bytes(outputs["par"], outputs["ref"])


def check_head(path: str, client: Any, tmp: Any) -> None:
    assert head_records(path, 5) == sequential(path)[:5]


CHECKS = {
    f.__name__.removeprefix("check_"): f
    for f in (
        check_read_bag_default,
        check_read_bag_small_blocks,
        check_read_bag_window_blocks,
        check_convert,
        check_convert_row_path,
        check_bulk_convert_text,
        check_bulk_convert_row_path,
        check_bulk_convert_parquet,
        check_read_dataframe,
        check_parallel_read,
        check_pipeline,
        check_head,
    )
}
SNIFFING = {"read_bag_small_blocks", "read_bag_window_blocks", "convert", "bulk_convert_row_path", "head"}
CASES = [
    pytest.param(file, check, id=f"{file}-{check}")
    for file in FILES
    for check in CHECKS
    if file not in SNIFF_ONLY or check in SNIFFING
]


@pytest.mark.slow
@pytest.mark.parametrize(("file", "check"), CASES)
def test_window_edges_read_as_iterabledata_does(window_files, client, tmp_path, file, check):
    CHECKS[check](window_files[file], client, tmp_path)


def test_the_header_files_are_at_the_window_edges(window_files):
    lengths = {name: _first_line_length(path) for name, path in window_files.items() if "header" in name}
    assert sorted(lengths.values()) == [W - 1, W, W + 1, 2 * W + 3, M + 1]


REMOTE_FILES = ["header-128KiB-plus-3.csv", "header-1MiB-plus-1.csv", "long-records.csv", "long-records.jsonl"]


@pytest.mark.slow
@pytest.mark.parametrize("file", REMOTE_FILES)
def test_window_edges_on_object_storage(window_files, s3, client, tmp_path, file):
    """Remote heads and ranges are fetched by range requests that grow: the same records and bytes."""
    fs, bucket, so = s3
    path = window_files[file]
    url = f"{bucket}/{file}"
    fs.put_file(path, url)
    expected = sequential(path)
    bag = iterable_dask.read_bag(url, blocksize=SMALL_BLOCK, storage_options=so)
    assert iterable_dask.compute(bag, client=client)[0] == expected
    assert head_records(url, 3, so) == expected[:3]
    ext = _other_text(path)
    upstream_convert(path, str(tmp_path / f"ref.{ext}"))
    iterable_dask.convert(url, str(tmp_path / f"par.{ext}"), parallel=True, client=client, blocksize=SMALL_BLOCK,
                          storage_options=so)  # fmt: skip
    _same_bytes(str(tmp_path / f"par.{ext}"), str(tmp_path / f"ref.{ext}"))


def test_a_header_longer_than_the_sniff_limit_reads_the_file_whole(tmp_path, monkeypatch):
    """Past the sniff's limit the file is not split at all (one exact whole-file read), never guessed."""
    from iterable_dask.io import head
    from iterable_dask.io.partitions import WholeFile

    path = csv_with_header(str(tmp_path / "wide.csv"), W + 1)
    monkeypatch.setattr(head, "HEAD_LIMIT", W)
    parts = iterable_dask.plan_partitions(path, blocksize=SMALL_BLOCK)
    assert [type(p) for p in parts] == [WholeFile]
    assert parts[0]() == sequential(path)


def test_csv_header_sniff_sees_the_whole_header(window_files):
    from iterable_dask.io.csv_ranges import _csv_header

    for name in ("header-64KiB-plus-1.csv", "header-128KiB-plus-3.csv", "header-1MiB-plus-1.csv"):
        path = window_files[name]
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        fieldnames, header_end, multiline = _csv_header(path, "utf-8", ",", '"')
        assert fieldnames == tuple(header)
        assert header_end == _first_line_length(path)
        assert not multiline


@pytest.mark.slow
def test_a_quoted_line_break_past_the_head_keeps_a_pipeline_exact(client, tmp_path):
    """The pipeline has no blocksize=None to offer: a record spanning lines anywhere joins the file's ranges."""
    path = tmp_path / "late.csv"
    rows = [f'{i},"plain {i}"' for i in range(30_000)]
    for i in range(20_000, 30_000, 7):  # far past the head the header sniff reads; some range edge falls in one
        rows[i] = f'{i},"a field\nover two lines, {i}"'
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    check_pipeline(str(path), client, tmp_path)
    from iterable_dask.io.csv_ranges import joined_if_records_span_lines
    from iterable_dask.io.read import plan_sized

    parts, _ = plan_sized(str(path), 16_384, {})
    assert len(parts) > 1  # the planner alone splits it (the head shows no quoted line break)
    assert len(joined_if_records_span_lines(parts)) == 1
