"""The pyarrow fast paths give exactly iterabledata's own conversion, or step aside."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iterable.convert.core import convert as upstream_convert

from iterable_dask.columnar import ColumnarUnavailable, convert_columnar, parquet_flush_rows
from iterable_dask.conversion.tasks import ConvertOptions, FileTask
from iterable_dask.sample import write_sample

from .helpers import sequential

OPTS = ConvertOptions().columnar_opts()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def fast(source: str, target: str, **overrides) -> int:
    """The columnar path alone, writing ``target`` directly (it is named like itself)."""
    return convert_columnar(source, target, target, {**OPTS, **overrides})


def assert_same_parquet(ours: str, theirs: str) -> None:
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        if a.read() == b.read():  # the same file (iterabledata's empty output is 0 bytes, no Parquet at all)
            return
    assert pq.read_schema(ours).equals(pq.read_schema(theirs), check_metadata=False)
    assert sequential(ours) == sequential(theirs)


def row_groups(path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def assert_same_bytes(ours: str, theirs: str) -> None:
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        assert a.read() == b.read()


TRICKY_ROWS = [
    {"id": "1", "text": 'say "hi", twice', "empty": "", "uni": "naïve 日本"},
    {"id": "2", "text": "two\nlines", "empty": "", "uni": "tab\there"},
    {"id": "3", "text": "crlf\r\ninside", "empty": "x", "uni": "back\\slash"},
    {"id": "4", "text": "", "empty": "", "uni": ""},
]


def write_csv(path, rows, delimiter=",", **kwargs) -> str:
    with open(path, "w", newline="", encoding=kwargs.pop("encoding", "utf-8")) as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter, **kwargs)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_csv_to_parquet_equals_iterabledata(tmp_path):
    source = write_sample(str(tmp_path / "data.csv"), 2500, seed=3)
    assert fast(source, str(tmp_path / "ours.parquet"), batch_size=1000) == 2500
    upstream_convert(source, str(tmp_path / "theirs.parquet"), batch_size=1000)
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))
    # Same row groups as iterabledata's writer cuts them, every column a string.
    assert row_groups(tmp_path / "ours.parquet") == row_groups(tmp_path / "theirs.parquet") == [2000, 500]
    assert set(pq.read_schema(tmp_path / "ours.parquet").types) == {pa.string()}


def test_tricky_csv_fields_to_parquet(tmp_path):
    source = write_csv(tmp_path / "tricky.csv", TRICKY_ROWS)
    assert fast(source, str(tmp_path / "ours.parquet")) == 4
    upstream_convert(source, str(tmp_path / "theirs.parquet"))
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


def test_tsv_is_read_as_iterabledata_reads_it(tmp_path):
    """iterabledata reads a .tsv with ',' (its delimiter argument is ignored): the fast path mirrors that."""
    source = write_csv(tmp_path / "plain.tsv", [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}], delimiter="\t")
    assert fast(source, str(tmp_path / "ours.parquet")) == 2
    upstream_convert(source, str(tmp_path / "theirs.parquet"))
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))
    assert pq.read_schema(tmp_path / "ours.parquet").names == ["a\tb"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a,b\n1,2\n3\n", "Expected 2 columns"),  # ragged: iterabledata fills None
        ("a,b\n1,2,3\n", "Expected 2 columns"),  # ragged: iterabledata keeps a None key
        ("a,a\n1,2\n", "duplicate header"),
        ("a,,b\n1,2,3\n", "empty, blank or duplicate"),
        ("\ufeffa,b\n1,2\n", "BOM"),
        ("", "empty, blank or duplicate"),
    ],
)
def test_csv_cases_iterabledata_reads_differently_fall_back(tmp_path, content, reason):
    source = tmp_path / "odd.csv"
    source.write_text(content, encoding="utf-8")
    with pytest.raises((ColumnarUnavailable, pa.ArrowInvalid), match=reason):
        fast(str(source), str(tmp_path / "ours.parquet"))


def test_non_utf8_csv_falls_back_and_the_task_still_matches(tmp_path):
    rows = [{"name": "café", "n": str(i)} for i in range(50)]
    source = write_csv(tmp_path / "latin.csv", rows, encoding="latin-1")
    with pytest.raises(ColumnarUnavailable, match="not UTF-8"):
        fast(source, str(tmp_path / "ours.parquet"))
    result = FileTask(source, str(tmp_path / "ours.parquet"), "job", ConvertOptions())()
    upstream_convert(source, str(tmp_path / "theirs.parquet"))
    assert result.rows_out == 50
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


def test_ragged_csv_task_falls_back_to_rows(tmp_path):
    source = tmp_path / "ragged.csv"
    source.write_text("a,b\n1,2\n3\n4,5\n", encoding="utf-8")
    FileTask(str(source), str(tmp_path / "ours.parquet"), "job", ConvertOptions())()
    upstream_convert(str(source), str(tmp_path / "theirs.parquet"))
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


def test_infer_types_is_opt_in(tmp_path):
    source = write_csv(tmp_path / "n.csv", [{"i": "1", "f": "1.5", "s": "x"}, {"i": "2", "f": "", "s": "y"}])
    fast(source, str(tmp_path / "typed.parquet"), infer_types=True)
    schema = pq.read_schema(tmp_path / "typed.parquet")
    assert (schema.field("i").type, schema.field("f").type, schema.field("s").type) == (
        pa.int64(),
        pa.float64(),
        pa.string(),
    )
    assert sequential(str(tmp_path / "typed.parquet"))[1] == {"i": 2, "f": None, "s": "y"}


JSON_ROWS = [
    {"s": "a", "i": 1, "f": 1.5, "b": True, "n": None},
    {"s": None, "i": -7, "f": 2, "b": False, "n": "x"},
    {"s": 'é"\\', "i": None, "f": None, "b": None, "n": "y"},
]


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


def test_jsonl_to_parquet_equals_iterabledata(tmp_path):
    source = write_jsonl(tmp_path / "d.jsonl", JSON_ROWS * 400)
    assert fast(source, str(tmp_path / "ours.parquet"), batch_size=500) == 1200
    upstream_convert(source, str(tmp_path / "theirs.parquet"), batch_size=500)
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([{"a": 1}, {"a": 2, "b": 3}], "first record lacks a key"),
        ([{"a": 1}, {"a": 2.0}], "may infer differently"),  # JSON ints first: iterabledata infers int64
        ([{"a": None}] * 1024 + [{"a": 1}], "may infer differently"),  # iterabledata infers null from its head
        ([{"a": {"x": 1}}], "may infer differently"),  # nested
        ([{"a": "2020-01-01"}], "may infer differently"),  # pyarrow reads a timestamp
        ([{"$oid": "x"}], "extended-JSON"),
    ],
)
def test_jsonl_cases_where_types_could_differ_fall_back(tmp_path, rows, reason):
    source = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(ColumnarUnavailable, match=reason):
        fast(source, str(tmp_path / "ours.parquet"), batch_size=1024)


@pytest.mark.parametrize("text", ['{"a": "x"}\n\n  \n{"a": "y"}', '{"a": "x"}\r\n\r\n{"a": "y"}\r\n'])
def test_blank_lines_and_crlf_in_jsonl(tmp_path, text):
    source = tmp_path / "d.jsonl"
    source.write_bytes(text.encode())
    assert fast(str(source), str(tmp_path / "ours.parquet")) == 2
    upstream_convert(str(source), str(tmp_path / "theirs.parquet"))
    assert_same_parquet(str(tmp_path / "ours.parquet"), str(tmp_path / "theirs.parquet"))


def test_two_objects_on_one_line_fall_back(tmp_path):
    source = tmp_path / "d.jsonl"
    source.write_text('{"a": "x"}\n{"a": "y"}{"a": "z"}\n', encoding="utf-8")
    with pytest.raises(ColumnarUnavailable, match="exactly one JSON object"):
        fast(str(source), str(tmp_path / "ours.parquet"))


PARQUET_ROWS = [
    {"s": 'q"uo,te', "i": 1, "b": True, "u": "naïve"},
    {"s": "line\nbreak\ttab\\", "i": None, "b": False, "u": None},
    {"s": None, "i": -3, "b": None, "u": ""},
]


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_parquet_to_text_is_byte_identical(tmp_path, ext):
    source = str(tmp_path / "d.parquet")
    pq.write_table(pa.Table.from_pylist(PARQUET_ROWS * 300), source, row_group_size=200)
    assert fast(source, str(tmp_path / f"ours.{ext}")) == 900
    upstream_convert(source, str(tmp_path / f"theirs.{ext}"))
    assert_same_bytes(str(tmp_path / f"ours.{ext}"), str(tmp_path / f"theirs.{ext}"))


@pytest.mark.parametrize(
    ("table", "ext", "reason"),
    [
        (pa.table({"f": [1.5]}), "jsonl", "not all strings"),  # float formatting differs
        (pa.table({"s": ["\x01"]}), "jsonl", "control character"),
        (pa.table({"s": ["a"]}), "csv", "one-column"),
        (pa.table({"_id": ["a"], "b": ["c"]}), "csv", "'_id'"),
        (pa.table({"l": [[1, 2]]}), "jsonl", "not all strings"),
    ],
)
def test_parquet_cases_written_differently_fall_back(tmp_path, table, ext, reason):
    source = str(tmp_path / "d.parquet")
    pq.write_table(table, source)
    with pytest.raises(ColumnarUnavailable, match=reason):
        fast(source, str(tmp_path / f"ours.{ext}"))


def test_parquet_flush_rows_follow_iterabledata_buffering():
    assert parquet_flush_rows(50000) == 50000
    assert parquet_flush_rows(300) == 1200  # four batches reach the writer's 1024-row buffer


def test_pairs_without_a_fast_path_say_so(tmp_path):
    source = write_sample(str(tmp_path / "d.csv"), 10)
    with pytest.raises(ColumnarUnavailable, match="no columnar path"):
        fast(source, str(tmp_path / "d.jsonl"))


# -- property tests: the fast path runs where it should and equals iterabledata; else the task falls back ----


def fast_or_fallback(folder, source: str, ext: str, compare, **overrides) -> bool:
    """Convert with the fast path, or check the refusal: the conversion task then still gives iterabledata's file.

    Every example asserts: the fast path's output, or the fallback's. Returns whether the fast path ran.
    """
    theirs = str(folder / f"theirs.{ext}")
    result = upstream_convert(source, theirs, **({"batch_size": overrides["batch_size"]} if overrides else {}))
    try:
        rows = fast(source, str(folder / f"ours.{ext}"), **overrides)
    except (ColumnarUnavailable, pa.ArrowInvalid):
        rows = None
    if not rows:  # refused, or no records: the task writes iterabledata's own file for those
        task_target = str(folder / f"task.{ext}")
        outcome = FileTask(source, task_target, "fuzz", ConvertOptions(**overrides))()
        assert not isinstance(outcome, Exception), outcome
        assert outcome.rows_in == result.rows_in
        compare(task_target, theirs)
        return False
    compare(str(folder / f"ours.{ext}"), theirs)
    return True


CSV_TEXT = st.text(alphabet='ab,"\n\r x\t\u00e9', max_size=60)


@FUZZ
@given(header=st.sampled_from(["a,b\n", "a,b\r\n", '"a","b"\n', "x,y,z\n"]), body=CSV_TEXT)
def test_fuzzed_csv_fast_path_equals_iterabledata(tmp_path_factory, header, body):
    folder = tmp_path_factory.mktemp("csv")
    source = folder / "f.csv"
    source.write_bytes((header + body).encode("utf-8"))
    fast_or_fallback(folder, str(source), "parquet", assert_same_parquet)


FIELD = st.text(alphabet='ab,"\n\r x\t\u00e9;', max_size=6)
#: Fields the fast path must take: quotes, delimiters and newlines inside quotes, no carriage return.
ELIGIBLE_FIELD = st.text(alphabet='ab,"\n x\t\u00e9;', min_size=1, max_size=6)


def write_rows(folder, rows) -> str:
    source = folder / "f.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["a", "b", "c"])
        writer.writerows(rows)
    return str(source)


@FUZZ
@given(st.lists(st.lists(FIELD, min_size=3, max_size=3), min_size=1, max_size=25))
def test_fuzzed_well_formed_csv_fast_path_equals_iterabledata(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("csv")
    fast_or_fallback(folder, write_rows(folder, rows), "parquet", assert_same_parquet)


@FUZZ
@given(st.lists(st.lists(ELIGIBLE_FIELD, min_size=3, max_size=3), min_size=1, max_size=25))
def test_fuzzed_eligible_csv_takes_the_fast_path(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("csv")
    assert fast_or_fallback(folder, write_rows(folder, rows), "parquet", assert_same_parquet)


JSON_TYPES = {
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "number": st.one_of(st.integers(min_value=-(2**60), max_value=2**60), st.floats(allow_nan=False)),
    "str": st.text(max_size=8),
    "bool": st.booleans(),
}


@st.composite
def json_rows(draw, eligible: bool = False):
    """Records whose keys each hold one JSON type (or null), as real data mostly does.

    ``eligible``: every key in every record, no nulls, and types pyarrow infers as Python does.
    """
    kinds = ["int", "str", "bool"] if eligible else sorted(JSON_TYPES)
    types = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(kinds), min_size=1))
    n = draw(st.integers(min_value=1, max_value=30))
    rows = []
    for _ in range(n):
        row = {}
        for key, kind in types.items():
            if eligible:
                value = draw(st.integers(-1000, 1000) if kind == "int" else JSON_TYPES[kind])
                if kind == "str":
                    value = "".join(c for c in value if c.isprintable()) or "x"
                row[key] = value
            elif draw(st.integers(0, 9)) > 0:  # sometimes a key is missing
                row[key] = draw(st.one_of(st.none(), JSON_TYPES[kind]))
        rows.append(row or {next(iter(types)): None})
    return rows


@FUZZ
@given(json_rows())
def test_fuzzed_jsonl_fast_path_equals_iterabledata(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("jsonl")
    source = write_jsonl(folder / "f.jsonl", rows)
    fast_or_fallback(folder, source, "parquet", assert_same_parquet, batch_size=4)


@FUZZ
@given(json_rows(eligible=True))
def test_fuzzed_eligible_jsonl_takes_the_fast_path(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("jsonl")
    source = write_jsonl(folder / "f.jsonl", rows)
    assert fast_or_fallback(folder, source, "parquet", assert_same_parquet, batch_size=4)


PRINTABLE = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=10)


@FUZZ
@given(
    strings=st.lists(st.one_of(st.none(), st.text(max_size=10)), min_size=1, max_size=20),
    ext=st.sampled_from(["jsonl", "csv"]),
)
def test_fuzzed_parquet_to_text_is_byte_identical(tmp_path_factory, strings, ext):
    folder = tmp_path_factory.mktemp("pq")
    source = str(folder / "f.parquet")
    ints = [None if s is None else len(s) for s in strings]
    pq.write_table(pa.table({"s": pa.array(strings, pa.string()), "n": pa.array(ints, pa.int32())}), source)
    fast_or_fallback(folder, source, ext, assert_same_bytes)


@FUZZ
@given(strings=st.lists(PRINTABLE, min_size=1, max_size=20), ext=st.sampled_from(["jsonl", "csv"]))
def test_fuzzed_eligible_parquet_takes_the_fast_path(tmp_path_factory, strings, ext):
    folder = tmp_path_factory.mktemp("pq")
    source = str(folder / "f.parquet")
    ints = [len(s) for s in strings]
    pq.write_table(pa.table({"s": pa.array(strings, pa.string()), "n": pa.array(ints, pa.int32())}), source)
    assert fast_or_fallback(folder, source, ext, assert_same_bytes)
