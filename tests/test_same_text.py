"""The faster stand-ins for iterabledata's per-record work give its very values, bytes and errors.

``line_decoder`` is ``json.loads`` for one line; the CSV stand-in writer is
``CSVIterable.write_bulk``. Each is compared with the original on the cases
that take its fast path and on every case that must leave it.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from iterable.datatypes.csv import CSVIterable

from iterable_dask.conversion.writers import same_text_writer
from iterable_dask.io.json_lines import line_decoder

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
