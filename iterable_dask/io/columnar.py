"""Columnar fast paths: pyarrow reads and writes whole columns on the workers.

The conversion tasks try these before iterabledata's dict-per-row path for
CSV, TSV or JSON Lines to Parquet and for Parquet to CSV or JSON Lines. A fast
path runs only where its output is provably the one iterabledata's own
``convert`` gives, and raises :class:`ColumnarUnavailable` otherwise, so the
caller falls back to the row path:

* **CSV/TSV to Parquet.** Every column is a string, as iterabledata reads CSV
  fields; columns in header order; row groups as iterabledata's writer cuts
  them. pyarrow refuses ragged rows; a BOM, a non-UTF-8 encoding, duplicate or
  empty header names and fields beyond Python's csv field limit fall back.
* **JSON Lines to Parquet.** pyarrow.json's column types are kept only where
  ``pyarrow.Table.from_pylist`` on iterabledata's first written batch infers
  the same: flat string, int64, bool and double columns, each with a value in
  that batch, the first record holding every key, one object per line.
* **Parquet to JSON Lines or CSV.** The text is built column-wise with
  pyarrow.compute, byte for byte what ``json.dumps(ensure_ascii=False)`` and
  ``csv.DictWriter`` write, for string, integer and boolean columns.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import os
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iterable.helpers.detect import detect_file_type, is_flat, open_iterable

__all__ = ["ColumnarUnavailable", "convert_columnar", "parquet_flush_rows", "path_kind"]

_KINDS = {"CSVIterable": "csv", "JSONLinesIterable": "jsonl", "ParquetIterable": "parquet"}
#: iterableargs the fast readers reproduce (they take the dialect from iterabledata's own reader).
_CSV_READ_ARGS = frozenset({"encoding", "delimiter", "quotechar", "autodetect"})
_JSONL_READ_ARGS = frozenset({"encoding"})
#: toiterableargs of the Parquet writer the fast path honours; ``keys`` is ignored by it.
_PARQUET_WRITE_ARGS = frozenset({"compression", "keys"})
_TEXT_WRITE_ARGS = frozenset({"encoding", "delimiter", "quotechar"})
_JSONL_MAX_BYTES = 512 << 20
_BLANK_LINE = re.compile(rb"^[ \t\r\x0b\x0c]*$", re.MULTILINE)  # what bytes.strip() empties
_NON_BLANK = re.compile(rb"[^ \t\r\n\x0b\x0c]")
_EXACT_DOUBLE = 2**53
_TEXT_BATCH = 65536


class ColumnarUnavailable(Exception):
    """The columnar path cannot guarantee iterabledata's output for this file; use the row path."""


def path_kind(path: str) -> str | None:
    """``"csv"``, ``"jsonl"`` or ``"parquet"`` for an uncompressed file of that format, else None.

    Judged by the name's extensions, as iterabledata does for the formats named
    here (cached per extension: thousands of small files ask it many times).
    """
    name = os.path.basename(path.rstrip("/")).lower()
    return _kind_of_extension(name[name.find(".") :] if "." in name else name)


@functools.lru_cache(maxsize=256)
def _kind_of_extension(extension: str) -> str | None:
    try:
        info = detect_file_type("file" + extension)
    except ImportError:
        return None
    if not info.get("success") or info.get("codec") is not None:
        return None
    return _KINDS.get(getattr(info.get("datatype"), "__name__", ""))


def parquet_flush_rows(batch_size: int, row_group_size: int | None = None) -> int:
    """Rows per row group iterabledata's Parquet writer gives when ``convert`` writes ``batch_size`` batches."""
    from iterable.datatypes.parquet import DEFAULT_BATCH_SIZE

    threshold = row_group_size or DEFAULT_BATCH_SIZE
    return batch_size if batch_size >= threshold else -(-threshold // batch_size) * batch_size


def _is_utf8(encoding: str | None) -> bool:
    try:
        return codecs.lookup(encoding or "utf8").name == "utf-8"
    except LookupError:
        return False


def _check_args(args: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = set(args) - allowed
    if extra:
        raise ColumnarUnavailable(f"{what} {sorted(extra)} are not reproduced by the columnar path")


def _parquet_writer(tmp: str, schema: pa.Schema, toiterableargs: dict[str, Any]) -> Any:
    import pyarrow.parquet as pq

    _check_args(toiterableargs, _PARQUET_WRITE_ARGS, "Parquet writer arguments")
    compression = toiterableargs.get("compression", "snappy")
    return pq.ParquetWriter(tmp, schema, compression=compression, use_dictionary=False)


def _write_row_groups(writer: Any, table: pa.Table, rows: int) -> pa.Table:
    """Write whole row groups of ``rows`` rows from ``table``; return what is left."""
    while table.num_rows >= rows:
        writer.write_table(table.slice(0, rows), row_group_size=rows)
        table = table.slice(rows)
    return table


# -- CSV / TSV to Parquet -------------------------------------------------------------------------


def _csv_dialect(source: str, iterableargs: dict[str, Any]) -> tuple[str, str, str]:
    _check_args(iterableargs, _CSV_READ_ARGS, "CSV reader arguments")
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


def _csv_to_parquet(source: str, tmp: str, dialect: tuple[str, str, str], opts: dict[str, Any]) -> int:
    import pyarrow.csv as pcsv

    encoding, delimiter, quotechar = dialect
    if not _is_utf8(encoding):
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


# -- JSON Lines to Parquet ------------------------------------------------------------------------


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


def _jsonl_to_parquet(source: str, tmp: str, iterableargs: dict[str, Any], opts: dict[str, Any]) -> int:
    import pyarrow.json as pj

    _check_args(iterableargs, _JSONL_READ_ARGS, "JSON Lines reader arguments")
    if not _is_utf8(iterableargs.get("encoding")) or os.path.getsize(source) > _JSONL_MAX_BYTES:
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


# -- Parquet to JSON Lines / CSV ------------------------------------------------------------------


def _text_safe(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)


def _regex_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


_JSON_ESCAPES = [
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
]
_JSON_SPECIAL = _regex_class('\\"' + "".join(map(chr, range(32))))
_JSON_UNHANDLED = _regex_class("".join(chr(c) for c in range(32) if chr(c) not in "\n\r\t\b\f"))


def _string(column: Any) -> Any:
    return column.cast(pa.string()) if pa.types.is_large_string(column.type) else column


def _json_values(column: Any) -> Any:
    if pa.types.is_boolean(column.type) or pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.string()), "null")
    column = _string(column)
    if pc.any(pc.match_substring_regex(column, _JSON_SPECIAL)).as_py():
        if pc.any(pc.match_substring_regex(column, _JSON_UNHANDLED)).as_py():
            raise ColumnarUnavailable("a control character json.dumps writes as \\u00XX")
        for raw, escaped in _JSON_ESCAPES:
            column = pc.replace_substring(column, raw, escaped)
    return pc.fill_null(pc.binary_join_element_wise('"', column, '"', ""), "null")


def _csv_values(column: Any, delimiter: str, quotechar: str) -> Any:
    if pa.types.is_boolean(column.type):
        return pc.fill_null(pc.if_else(column, "True", "False"), "")
    if pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.string()), "")
    column = _string(column)
    needs_quotes = pc.match_substring_regex(column, _regex_class(delimiter + quotechar + "\r\n"))
    if pc.any(needs_quotes).as_py():
        doubled = pc.replace_substring(column, quotechar, quotechar * 2)
        column = pc.if_else(needs_quotes, pc.binary_join_element_wise(quotechar, doubled, quotechar, ""), column)
    return pc.fill_null(column, "")


def _joined(lines: Any) -> str:
    offsets = pa.array([0, len(lines)], pa.int32())
    return pc.binary_join(pa.ListArray.from_arrays(offsets, lines), "")[0].as_py() or ""


def _jsonl_text(batch: pa.RecordBatch) -> str:
    parts: list[Any] = []
    for i, name in enumerate(batch.schema.names):
        parts.append(("{" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": ")
        parts.append(_json_values(batch.column(i)))
    parts.append("}\n")
    return _joined(pc.binary_join_element_wise(*parts, ""))


def _csv_text(batch: pa.RecordBatch, keys: list[str], delimiter: str, quotechar: str) -> str:
    values = [_csv_values(batch.column(name), delimiter, quotechar) for name in keys]
    return _joined(pc.binary_join_element_wise(pc.binary_join_element_wise(*values, delimiter), "\r\n", ""))


def _csv_keys(target: str, names: list[str], opts: dict[str, Any]) -> list[str]:
    """The columns iterabledata's convert gives a CSV target: its schema scan, sorted."""
    if not is_flat(target):
        return list(names)  # iterabledata's writer takes the first record's keys
    scan_limit = opts["scan_limit"]
    if scan_limit is not None and scan_limit < 1:
        raise ColumnarUnavailable("scan_limit=0 gives no columns")
    if "_id" in names and not opts["is_flatten"]:
        raise ColumnarUnavailable("iterabledata's schema scan skips an '_id' column")
    return sorted(names)


def _parquet_to_text(source: str, target: str, tmp: str, kind: str, opts: dict[str, Any]) -> int:
    import pyarrow.parquet as pq

    _check_args(opts["iterableargs"], frozenset(), "Parquet reader arguments")
    toargs = opts["toiterableargs"]
    _check_args(toargs, _TEXT_WRITE_ARGS, "text writer arguments")
    with pq.ParquetFile(source) as pf:
        schema, total = pf.schema_arrow, pf.metadata.num_rows
        names = schema.names
        if not total or not names or len(set(names)) != len(names):
            raise ColumnarUnavailable("no rows, no columns or duplicate column names")
        if not all(_text_safe(t) for t in schema.types):
            raise ColumnarUnavailable(f"column types {schema.types} are not all strings, integers or booleans")
        keys = _csv_keys(target, names, opts) if kind == "csv" else []
        if kind == "csv" and len(keys) < 2:
            raise ColumnarUnavailable("a one-column CSV quotes empty strings")
        out = open_iterable(tmp, mode="w", iterableargs={"keys": keys, **toargs} if kind == "csv" else dict(toargs))
        try:
            if type(out).__name__ != ("CSVIterable" if kind == "csv" else "JSONLinesIterable") or out.fobj is None:
                raise ColumnarUnavailable("the target writer is not a plain text file")
            for batch in pf.iter_batches(batch_size=_TEXT_BATCH):
                if kind == "csv":
                    out.fobj.write(_csv_text(batch, keys, out.delimiter, out.quotechar))
                else:
                    out.fobj.write(_jsonl_text(batch))
        finally:
            out.close()
    return total


def convert_columnar(source: str, target: str, tmp: str, opts: dict[str, Any]) -> int:
    """Convert ``source`` into ``tmp`` (named like ``target``) with pyarrow; return the row count.

    ``opts`` holds ``iterableargs``, ``toiterableargs``, ``batch_size``,
    ``scan_limit``, ``is_flatten`` and ``infer_types`` as the conversion got them.

    Raises
    ------
    ColumnarUnavailable
        The pair of formats or the file's content needs the row path.
    """
    src, dst = path_kind(source), path_kind(target)
    if src in ("csv", "jsonl") and dst == "parquet":
        if src == "csv":
            return _csv_to_parquet(source, tmp, _csv_dialect(source, opts["iterableargs"]), opts)
        return _jsonl_to_parquet(source, tmp, opts["iterableargs"], opts)
    if src == "parquet" and dst in ("csv", "jsonl"):
        return _parquet_to_text(source, target, tmp, dst, opts)
    raise ColumnarUnavailable(f"no columnar path from {src or 'this source'} to {dst or 'this target'}")
