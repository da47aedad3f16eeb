"""Parquet to CSV or JSON Lines by pyarrow.compute, byte for byte what iterabledata's writers write."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iterable.helpers.detect import is_flat, open_iterable

from .kinds import ColumnarUnavailable, check_args

__all__ = ["parquet_to_text"]

_TEXT_WRITE_ARGS = frozenset({"encoding", "delimiter", "quotechar"})
_TEXT_BATCH = 65536


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


def parquet_to_text(source: str, target: str, tmp: str, kind: str, opts: dict[str, Any]) -> int:
    import pyarrow.parquet as pq

    check_args(opts["iterableargs"], frozenset(), "Parquet reader arguments")
    toargs = opts["toiterableargs"]
    check_args(toargs, _TEXT_WRITE_ARGS, "text writer arguments")
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
