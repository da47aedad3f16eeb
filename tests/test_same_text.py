"""The faster stand-ins for iterabledata's per-record work give its very values, bytes and errors.

``line_decoder`` is ``json.loads`` for one line; the CSV stand-in writer is
``CSVIterable.write_bulk``. Each is compared with the original on the cases
that take its fast path and on every case that must leave it.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from typing import Any

import pytest
from iterable.datatypes.csv import CSVIterable

from iterable_dask.conversion.writers import same_text_writer
from iterable_dask.io.fast_records import fast_records, line_decoder

from .helpers import sequential

LINES = [
    '{"id": 1, "name": "a", "tags": ["x", {"y": null}], "f": 1.5e3, "t": true}',
    '{"u": "na\\u00efve \\ud83d\\ude00", "raw": "naïve", "esc": "\\"q\\" \\\\ \\n"}',
    '{"big": 123456789012345678901234567890, "neg": -0.0, "nan": NaN, "inf": -Infinity}',
    '{"dup": 1, "dup": 2}',
    "[1, 2, 3]",
    '"just a string"',
    "42",
    "null",
    '  {"lead": "whitespace"}',
    '{"trail": "whitespace"}  \t',
    '{"a": 1}\r',
    "\ufeff" + '{"bom": 1}',
    "",
    "   ",
    '{"a": }',
    '{"a": 1} x',
    '{"a": 1}{"b": 2}',
    '{"a": "unterminated}',
    "{'single': 'quotes'}",
    '{"a": 1,}',
    "tru",
]


def _outcome(func: Any, line: str) -> tuple[str, str]:
    try:
        value = func(line)
    except Exception as e:  # the very error type and message
        return type(e).__name__, str(e)
    return "value", repr(value) if not isinstance(value, float) or not math.isnan(value) else "nan"


@pytest.mark.parametrize("line", LINES)
def test_line_decoder_is_json_loads(line):
    assert _outcome(line_decoder(), line) == _outcome(json.loads, line)


def test_line_decoder_keeps_no_key_memo_between_lines():
    decode = line_decoder()
    first, second = decode('{"k": 1}'), decode('{"k": 2}')
    assert first == {"k": 1} and second == {"k": 2}
    assert [type(k) for k in second] == [str]


def _csv_text(records: list[Any], keys: list[str] | None, stand_in: bool, batches: int = 1) -> tuple[str, list[str]]:
    """What a CSV writer (iterabledata's or the stand-in over it) writes for ``records``, and the errors it raised."""
    buffer = io.StringIO()
    out = CSVIterable(stream=buffer, mode="w", keys=keys)
    writer = same_text_writer(out) if stand_in else out
    assert (writer is not out) == stand_in
    errors: list[str] = []
    size = max(1, len(records) // batches)
    for i in range(0, len(records), size):
        try:
            writer.write_bulk(records[i : i + size])
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
    return buffer.getvalue(), errors


FIELDS = ["id", "name", "amount", "note"]

CSV_CASES = {
    "exact keys in another order": [
        {"note": f"n,{i}", "amount": i * 1.5, "name": f'"q{i}"', "id": i} for i in range(50)
    ],
    "values of every type": [{"id": None, "name": "a\nb", "amount": True, "note": [1, {"x": 2}]}] * 3,
    "a record missing a key": [
        *({"id": i, "name": "n", "amount": 1, "note": ""} for i in range(5)),
        {"id": 5, "name": "short"},
        {"id": 6, "name": "n", "amount": 1, "note": ""},
    ],
    "a record with an extra key": [
        *({"id": i, "name": "n", "amount": 1, "note": ""} for i in range(5)),
        {"id": 5, "name": "n", "amount": 1, "note": "", "extra": "x"},
        {"id": 6, "name": "n", "amount": 1, "note": ""},
    ],
    "missing and extra at once": [{"id": 1, "name": "n", "amount": 1, "other": 2}],
    "a record that is not a dict": [{"id": 1, "name": "n", "amount": 1, "note": ""}, ["a", "list"]],
    "a dict subclass": [{"id": 1, "name": "n", "amount": 1, "note": ""}, type("D", (dict,), {})(id=2, name="x")],
    "empty batch": [],
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
@pytest.mark.parametrize("keys", [FIELDS, None], ids=["keys-at-open", "keys-from-first-record"])
def test_csv_stand_in_writes_iterabledatas_bytes_and_errors(case, keys):
    records = CSV_CASES[case]
    for batches in (1, 3):
        assert _csv_text(records, keys, True, batches) == _csv_text(records, keys, False, batches)


@pytest.mark.parametrize("keys", [["only"], ["a", "a", "b"]], ids=["one-field", "duplicate-fields"])
def test_csv_stand_in_narrow_and_odd_headers(keys):
    records = [{"only": 1, "a": 2, "b": 3}, {"a": 1, "b": 2}, {"only": "x"}]
    assert _csv_text(records, keys, True) == _csv_text(records, keys, False)


def test_csv_stand_in_refuses_none_as_iterabledata_does():
    errors = []
    for stand_in in (True, False):
        out = CSVIterable(stream=io.StringIO(), mode="w", keys=FIELDS)
        with pytest.raises(TypeError) as error:
            (same_text_writer(out) if stand_in else out).write_bulk(None)
        errors.append(str(error.value))
    assert errors[0] == errors[1]


def test_json_lines_to_csv_conversion_equals_iterabledata(tmp_path, client):
    """Through a real conversion: a >1 MiB JSON Lines file (read in byte ranges) with uneven records."""
    from iterable.convert.core import convert as upstream_convert

    import iterable_dask

    source = tmp_path / "in.jsonl"
    with open(source, "w", encoding="utf8") as f:
        for i in range(12_000):
            record = {"id": i, "city": f"c{i % 7}", "amount": i / 4, "note": "x" * (i % 90), "u": "ü\u2028"}
            if i % 1000 == 999:
                record.pop("note")  # missing: written as an empty field by both
            f.write(("  " if i % 500 == 0 else "") + json.dumps(record) + "\n")
    assert source.stat().st_size > 1 << 20
    (tmp_path / "ours").mkdir()
    ours = iterable_dask.bulk_convert(str(source), str(tmp_path / "ours"), to_ext="csv", parallel=True, client=client)
    theirs = upstream_convert(str(source), str(tmp_path / "theirs.csv"))
    assert ours.total_rows_out == theirs.rows_out == 12_000 and ours.failed_files == 0
    assert (tmp_path / "ours" / "in.csv").read_bytes() == (tmp_path / "theirs.csv").read_bytes()
    assert sequential(str(tmp_path / "ours" / "in.csv"))[999]["note"] == ""


def _write(path: Any, text: str, encoding: str = "utf8") -> str:
    data = text.encode(encoding)
    opener = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}.get(path.suffix)
    if opener:
        import importlib

        data = importlib.import_module(opener).compress(data)
    path.write_bytes(data)
    return str(path)


JSON_LINES_TEXTS = {
    "newlines of every kind": '{"a": 1}\r\n{"a": 2}\r{"a": 3}\n\n   \n{"a": "x\\ny"}\r\n',
    "blank and unicode-blank lines": '\n{"a": 1}\n\t \n\u2028\n\x1c\n{"a": 2}',
    "unicode line breaks inside values": '{"a": "x\u2028y\x85z\u2029"}\n{"b": "v\\u000b"}\n',
    "no final newline": '{"a": 1}\n{"b": [1, 2, {"c": null}]}',
    "not only objects": '[1, 2]\n"text"\n3.5\nnull\n{"a": {"b": {}}}\n',
    "lines padded with whitespace": '   {"a": 1}   \n\t{"a": 2}\t\r\n',
    "a line longer than a block": '{"a": 1}\n{"long": "' + "y" * (3 << 20) + '"}\n{"a": 2}\n',
    "empty": "",
    "blank only": "\n\n  \r\n",
}


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.bz2", ".jsonl.xz"])
@pytest.mark.parametrize("case", sorted(JSON_LINES_TEXTS))
def test_block_reader_gives_iterabledatas_records(tmp_path, case, suffix):
    from iterable import open_iterable

    from iterable_dask.core.chunks import unpack
    from iterable_dask.io.fast_records import fast_records
    from iterable_dask.io.partitions import WholeFile
    from iterable_dask.streams.packed import ReadPacked

    path = _write(tmp_path / f"data{suffix}", JSON_LINES_TEXTS[case])
    with open_iterable(path) as it:
        expected = list(it)
    with open_iterable(path) as it:
        fast = fast_records(it)
        assert fast is not None  # the block reader is the one under test
        assert list(fast) == expected
    assert WholeFile(path)() == expected
    assert [r for chunk in ReadPacked(WholeFile(path), 2)() for r in unpack(chunk)] == expected


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_block_reader_decodes_as_iterabledata_does(tmp_path, suffix):
    """An ``encoding`` argument: the same records, or the same error, as iterabledata."""
    from iterable import open_iterable

    from iterable_dask.core.exceptions import PartitionReadError
    from iterable_dask.io.partitions import WholeFile

    path = _write(tmp_path / f"latin{suffix}", '{"name": "Zoë"}\r\n{"name": "Søren"}\n', encoding="latin-1")
    args = {"encoding": "latin-1"}
    try:
        with open_iterable(path, iterableargs=dict(args)) as it:
            expected: Any = list(it)
    except UnicodeDecodeError as e:
        expected = str(e)
    if isinstance(expected, str):
        with pytest.raises(PartitionReadError, match=re.escape(expected)):
            WholeFile(path, args)()
    else:
        assert WholeFile(path, args)() == expected == [{"name": "Zoë"}, {"name": "Søren"}]


@pytest.mark.parametrize(
    "text, position",
    [
        ('{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": }\n{"a": 5}\n', 3),
        ("\ufeff" + '{"a": 1}\n', 0),
        ('{"a": 1}\n{"a": 2} trailing\n', 1),
    ],
    ids=["malformed", "bom", "extra-data"],
)
def test_block_reader_leaves_a_bad_line_to_iterabledata(tmp_path, text, position):
    """The error names the file and iterabledata's own position and error, as without the block reader."""
    from iterable import open_iterable

    from iterable_dask.core.exceptions import PartitionReadError
    from iterable_dask.io.partitions import WholeFile
    from iterable_dask.streams.packed import ReadPacked

    path = _write(tmp_path / "bad.jsonl.gz", text)
    with open_iterable(path) as it, pytest.raises(Exception) as upstream:
        list(it)
    where = f" after record {position}" if position else ""
    expected = f"Failed to read {path!r}{where}: {type(upstream.value).__name__}: {upstream.value}"
    for read in (WholeFile(path), ReadPacked(WholeFile(path))):
        with pytest.raises(PartitionReadError) as error:
            read()
        assert str(error.value) == expected


def test_block_reader_steps_aside_for_what_it_does_not_handle(tmp_path):
    from iterable import open_iterable

    from iterable_dask.io.fast_records import fast_records

    path = _write(tmp_path / "a.jsonl", '{"a": 1}\n{"a": 2}\n')
    with open_iterable(path, iterableargs={"on_error": "skip"}) as it:
        assert fast_records(it) is None
    with open_iterable(path) as it:
        next(it)
        assert fast_records(it) is None  # already being read
        it.reset()
        assert fast_records(it) is not None  # rewound (its pos stays 1: iterabledata's reset keeps it)
    with open(path, encoding="utf8") as stream:
        from iterable.datatypes.jsonl import JSONLinesIterable

        assert fast_records(JSONLinesIterable(stream=stream)) is None
    with open_iterable(str(tmp_path / "out.jsonl"), mode="w") as it:
        assert fast_records(it) is None


CSV_TEXTS = {
    "plain": "id,name\n1,a\n2,b\n",
    "quoted fields and newlines": 'id,text\n1,"a, ""quoted""\nline"\r\n2,plain\r\n',
    "blank lines and ragged rows": "a,b,c\n1,2,3\n\n4,5\n6,7,8,9,10\n,,\n",
    "header only": "a,b\n",
    "empty": "",
    "blank header": "\n1,2\n",
    "semicolons": "a;b\n1;2\n",
    "no final newline": "a,b\n1,2",
}


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("case", sorted(CSV_TEXTS))
def test_csv_batch_reader_gives_iterabledatas_records(tmp_path, case, suffix):
    from iterable import open_iterable

    from iterable_dask.core.chunks import unpack
    from iterable_dask.io.partitions import WholeFile
    from iterable_dask.streams.packed import ReadPacked

    path = _write(tmp_path / f"data{suffix}", CSV_TEXTS[case])
    for args in ({}, {"delimiter": ";"}):
        with open_iterable(path, iterableargs=dict(args)) as it:
            expected = list(it)
        with open_iterable(path, iterableargs=dict(args)) as it:
            fast = fast_records(it)
            assert fast is not None  # the batch reader is the one under test
            assert list(fast) == expected
        assert WholeFile(path, args)() == expected
        assert [r for chunk in ReadPacked(WholeFile(path, args), 2)() for r in unpack(chunk)] == expected


def test_csv_batch_reader_leaves_a_bad_row_to_iterabledata(tmp_path):
    from iterable import open_iterable

    from iterable_dask.core.exceptions import PartitionReadError
    from iterable_dask.io.partitions import WholeFile

    path = _write(tmp_path / "bad.csv", 'a,b\n1,2\n3,"unterminated\n' + "x" * (200 << 10) + "\n")
    with open_iterable(path) as it, pytest.raises(Exception) as upstream:
        list(it)  # the field is over the csv module's limit
    expected = f"Failed to read {path!r} after record 1: {type(upstream.value).__name__}: {upstream.value}"
    with pytest.raises(PartitionReadError) as error:
        WholeFile(path)()
    assert str(error.value) == expected


@pytest.mark.parametrize(
    "name, text",
    [
        ("bad.jsonl", '{"a": 1}\n{"a": 2}\n{"a": }\n{"a": 4}\n'),
        ("bad.jsonl.gz", '{"a": 1}\n\ufeff{"a": 2}\n'),
        ("bad.csv", 'a,b\n1,2\n3,"open\n' + "x" * (200 << 10) + "\n"),
    ],
)
def test_a_conversion_names_iterabledatas_error_for_a_bad_small_file(tmp_path, name, text):
    """Small files are read by the fast readers; a bad one is read again by iterabledata, whose error is reported."""
    from iterable.convert.core import convert as upstream_convert

    from iterable_dask.conversion.tasks import ConvertOptions, FileTask, conversion_error
    from iterable_dask.core.exceptions import FileConversionError

    source = _write(tmp_path / name, text)
    target = str(tmp_path / "out.parquet")
    with pytest.raises(Exception) as upstream:
        upstream_convert(source, str(tmp_path / "theirs.parquet"))
    result = FileTask(source, target, "job", ConvertOptions(columnar=False))()
    assert isinstance(result, FileConversionError)
    assert str(result) == str(conversion_error(source, target, upstream.value))
    leftovers = {name, "theirs.parquet"}  # iterabledata leaves its partial output; ours leaves nothing
    assert set(os.listdir(tmp_path)) <= leftovers and name in os.listdir(tmp_path)


def test_a_small_file_converts_as_iterabledata_does(tmp_path):
    from iterable.convert.core import convert as upstream_convert

    from iterable_dask.conversion.tasks import ConvertOptions, FileTask

    records = '{"a": 1, "b": "x,y"}\r\n{"b": "z", "c": 2}\n\n  {"a": 3}\n'
    cases = [
        ("s.csv", CSV_TEXTS["blank lines and ragged rows"]),
        ("s.jsonl.gz", JSON_LINES_TEXTS["not only objects"]),
        ("d.jsonl", records),  # to CSV: keys scanned, the source rewound, then read by the fast reader
        ("d.jsonl.gz", records),
    ]
    for name, text in cases:
        source = _write(tmp_path / name, text)
        for ext in ("jsonl", "csv"):
            if name == "s.jsonl.gz" and ext == "csv":
                continue  # iterabledata cannot write non-dict records to CSV either way
            ours, theirs = tmp_path / f"ours-{name}.{ext}", tmp_path / f"theirs-{name}.{ext}"
            result = FileTask(source, str(ours), "job", ConvertOptions())()
            upstream = upstream_convert(source, str(theirs))
            assert (result.rows_in, result.rows_out) == (upstream.rows_in, upstream.rows_out)
            assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize(
    "name, text, good",
    [
        ("bad.jsonl.gz", '{"a": 1}\n{"a": 2}\n{"a": 3}\n{"a": }\n{"a": 5}\n', 3),
        ("bad.csv", 'a,b\n1,2\n3,4\n5,"open\n' + "x" * (200 << 10) + "\n", 2),
    ],
)
def test_records_of_hands_on_the_good_records_then_iterabledatas_error(tmp_path, name, text, good):
    """A consumer that cannot start over gets iterabledata's records, then iterabledata's own error."""
    from iterable import open_iterable

    from iterable_dask.io.fast_records import records_of

    path = _write(tmp_path / name, text)
    expected, upstream = [], None
    with open_iterable(path) as it:
        try:
            for record in it:
                expected.append(record)
        except Exception as e:
            upstream = e
    assert upstream is not None and len(expected) == good
    got = []
    with open_iterable(path) as it:
        assert fast_records(it) is not None
    with open_iterable(path) as it, pytest.raises(type(upstream)) as error:
        for record in records_of(it, lambda: open_iterable(path)):
            got.append(record)
    assert got == expected and str(error.value) == str(upstream)


def test_thread_mode_parallel_read_names_iterabledatas_error_after_the_good_records(tmp_path):
    import iterable_dask
    from iterable_dask import SourceReadError

    bad = _write(tmp_path / "bad.jsonl", '{"a": 1}\n{"a": 2}\n{"a": }\n')
    with pytest.raises(SourceReadError) as error:
        got = []
        for record in iterable_dask.parallel_read([bad], mode="thread"):
            got.append(record)
    assert got == [{"a": 1}, {"a": 2}]
    assert type(error.value.__cause__).__name__ == "FormatParseError" and bad in str(error.value)
