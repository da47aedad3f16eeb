"""CSV, TSV and JSON Lines to Parquet by pyarrow, where the result provably equals iterabledata's."""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iterable.helpers.detect import open_iterable

from .kinds import ColumnarUnavailable, check_args, is_utf8, parquet_flush_rows

__all__ = ["csv_dialect", "csv_to_parquet", "jsonl_to_parquet"]

#: iterableargs the fast readers reproduce (they take the dialect from iterabledata's own reader).
_CSV_READ_ARGS = frozenset({"encoding", "delimiter", "quotechar", "autodetect"})
_JSONL_READ_ARGS = frozenset({"encoding"})
#: toiterableargs of the Parquet writer the fast path honours; ``keys`` is ignored by it.
_PARQUET_WRITE_ARGS = frozenset({"compression", "keys"})
_JSONL_MAX_BYTES = 512 << 20
_BLANK_LINE = re.compile(rb"^[ \t\r\x0b\x0c]*$", re.MULTILINE)  # what bytes.strip() empties
_NON_BLANK = re.compile(rb"[^ \t\r\n\x0b\x0c]")
_EXACT_DOUBLE = 2**53


def _parquet_writer(tmp: str, schema: pa.Schema, toiterableargs: dict[str, Any]) -> Any:
    import pyarrow.parquet as pq

    check_args(toiterableargs, _PARQUET_WRITE_ARGS, "Parquet writer arguments")
    compression = toiterableargs.get("compression", "snappy")
    return pq.ParquetWriter(tmp, schema, compression=compression, use_dictionary=False)


def _write_row_groups(writer: Any, table: pa.Table, rows: int) -> pa.Table:
    """Write whole row groups of ``rows`` rows from ``table``; return what is left."""
    while table.num_rows >= rows:
        writer.write_table(table.slice(0, rows), row_group_size=rows)
        table = table.slice(rows)
    return table


def csv_dialect(source: str, iterableargs: dict[str, Any]) -> tuple[str, str, str]:
    check_args(iterableargs, _CSV_READ_ARGS, "CSV reader arguments")
    it = open_iterable(source, iterableargs=dict(iterableargs))
    try:
        if type(it).__name__ != "CSVIterable" or getattr(it, "codec", None) is not None or it.keys is not None:
            raise ColumnarUnavailable("not a plain CSV file read with its own header")
        return it.encoding, it.delimiter, it.quotechar
    finally:
        it.close()


def _csv_header(source: str, encoding: str, delimiter: str, quotechar: str) -> list[str]:
    with open(source, "rb") as f:
        if f.read(3).startswith(codecs.BOM_UTF8):
            raise ColumnarUnavailable("a UTF-8 BOM (iterabledata keeps it in the first column name)")
    with open(source, encoding=encoding, newline="") as f:
        header = next(csv.reader(f, delimiter=delimiter, quotechar=quotechar), None)
    if not header or "" in header or len(set(header)) != len(header):
        raise ColumnarUnavailable(f"an empty, blank or duplicate header name in {header!r}")
    return header


def csv_to_parquet(source: str, tmp: str, dialect: tuple[str, str, str], opts: dict[str, Any]) -> int:
    import pyarrow.csv as pcsv

    encoding, delimiter, quotechar = dialect
    if not is_utf8(encoding):
        raise ColumnarUnavailable(f"encoding {encoding!r} is not UTF-8")
    header = _csv_header(source, encoding, delimiter, quotechar)
    read = pcsv.ReadOptions(use_threads=False, block_size=8 << 20)
    parse = pcsv.ParseOptions(
        delimiter=delimiter, quote_char=quotechar, double_quote=True, escape_char=False, newlines_in_values=True
    )
    rows = parquet_flush_rows(opts["batch_size"])
    if opts.get("infer_types"):
        table = pcsv.read_csv(source, read_options=read, parse_options=parse)
        with _parquet_writer(tmp, table.schema, opts["toiterableargs"]) as writer:
            writer.write_table(table, row_group_size=rows)
        return table.num_rows
    types = {name: pa.string() for name in header}
    convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)
    limit = csv.field_size_limit()
    total = 0
    with (
        pcsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert) as reader,
        _parquet_writer(tmp, reader.schema, opts["toiterableargs"]) as writer,
    ):
        if reader.schema.names != header or any(t != pa.string() for t in reader.schema.types):
            raise ColumnarUnavailable("pyarrow read a different header than Python's csv module")
        pending = reader.schema.empty_table()
        for batch in reader:
            for column in batch.columns:
                longest = pc.max(pc.utf8_length(column)).as_py()
                if longest is not None and longest >= limit:
                    raise ColumnarUnavailable("a field longer than Python's csv field_size_limit")
            total += batch.num_rows
            pending = _write_row_groups(writer, pa.concat_tables([pending, pa.Table.from_batches([batch])]), rows)
        if pending.num_rows:
            writer.write_table(pending, row_group_size=rows)
    return total


def _json_column_ok(column: pa.ChunkedArray, head: pa.ChunkedArray) -> bool:
    """Whether ``from_pylist`` on iterabledata's first batch (``head``) infers this column's type."""
    if head.null_count == len(head):
        return False  # iterabledata would infer a null column
    if pa.types.is_floating(column.type):
        integral = pc.equal(column, pc.floor(column))
        if pc.any(pc.and_(integral, pc.greater(pc.abs(column), _EXACT_DOUBLE))).as_py():
            return False  # maybe a big JSON int, which from_pylist refuses to store as a double
        head_integral = pc.equal(head, pc.floor(head))
        return bool(pc.any(pc.invert(head_integral)).as_py())  # else the head may hold only JSON ints
    return column.type in (pa.string(), pa.int64(), pa.bool_())


def jsonl_to_parquet(source: str, tmp: str, iterableargs: dict[str, Any], opts: dict[str, Any]) -> int:
    import pyarrow.json as pj

    check_args(iterableargs, _JSONL_READ_ARGS, "JSON Lines reader arguments")
    if not is_utf8(iterableargs.get("encoding")) or os.path.getsize(source) > _JSONL_MAX_BYTES:
        raise ColumnarUnavailable("not UTF-8, or too large to check in memory")
    with open(source, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8) or data.count(b"\r") != data.count(b"\r\n"):
        raise ColumnarUnavailable("a BOM or a bare carriage return (a line break to Python only)")
    found = _NON_BLANK.search(data)
    if found is None:
        return 0
    start, end = data.rfind(b"\n", 0, found.start()) + 1, data.find(b"\n", found.start())
    try:
        first = json.loads(data[start : end if end >= 0 else len(data)])
    except ValueError as e:
        raise ColumnarUnavailable(f"the first line is not JSON: {e}") from e
    lines = data.count(b"\n") + 1 - sum(1 for _ in _BLANK_LINE.finditer(data))  # lines iterabledata parses
    read = pj.ReadOptions(use_threads=False, block_size=16 << 20)
    table = pj.read_json(pa.BufferReader(data), read_options=read)
    if table.num_rows != lines:
        raise ColumnarUnavailable("a line holds other than exactly one JSON object")
    if not isinstance(first, dict) or list(first) != table.column_names or any(k.startswith("$") for k in first):
        raise ColumnarUnavailable("the first record lacks a key of a later one, or has extended-JSON keys")
    rows = parquet_flush_rows(opts["batch_size"])
    head = table.slice(0, rows)
    for name in table.column_names:
        if not _json_column_ok(table.column(name), head.column(name)):
            raise ColumnarUnavailable(f"column {name!r} of type {table.column(name).type} may infer differently")
    with _parquet_writer(tmp, table.schema, opts["toiterableargs"]) as writer:
        writer.write_table(table, row_group_size=rows)
    return table.num_rows
