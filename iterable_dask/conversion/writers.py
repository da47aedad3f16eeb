"""Stand-ins for iterabledata's writers that write the very same bytes with less work per record.

iterabledata's JSON Lines writer builds a JSON encoder per record, and its CSV
writer (``csv.DictWriter``) checks every row's keys against a list. In the
conversion tasks' write loop these stand-ins write the same text: one C
encoder per batch for JSON Lines, and for CSV the rows as lists, with the keys
checked against a set (a row with a key outside the columns goes through
DictWriter itself, which writes the rows before it and raises as it would).
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from iterable.datatypes.csv import CSVIterable
from iterable.datatypes.jsonl import JSONLinesIterable, date_handler

__all__ = ["same_text_writer"]


class _JSONLinesBulk:
    """iterabledata's ``JSONLinesIterable.write_bulk``, the same text with less work per record.

    iterabledata calls ``json.dumps(r, ensure_ascii=False, default=date_handler)``
    for each record, which builds a ``JSONEncoder`` and then the C encoder
    for every record; here one C encoder serves a whole batch (a new one per
    batch, so a failing record leaves no state behind, as in iterabledata).
    """

    def __init__(self, fobj: Any) -> None:
        self._fobj = fobj

    def _encoder(self) -> Any:
        if c_make_encoder is None:  # no C accelerator: exactly what json.dumps does
            return json.JSONEncoder(ensure_ascii=False, default=date_handler).encode
        chunks = c_make_encoder({}, date_handler, encode_basestring, None, ": ", ", ", False, False, True)
        return lambda record: "".join(chunks(record, 0))

    def write_bulk(self, records: list[Any]) -> None:
        if records:
            self._fobj.write("\n".join(map(self._encoder(), records)) + "\n")


class _CSVBulk:
    """iterabledata's ``CSVIterable.write_bulk``: the same bytes, rows written as lists."""

    def __init__(self, out: CSVIterable) -> None:
        self._out = out

    def write_bulk(self, records: list[Any]) -> None:
        if not records:
            return
        out = self._out
        out._ensure_writer(records[0])
        writer = out.writer
        keys = writer.fieldnames
        known = set(keys)
        restval = writer.restval
        rows = []
        for record in records:
            if not isinstance(record, dict) or record.keys() - known:
                writer.writerows(records)  # iterabledata's own path: its rows, then its error
                return
            rows.append([record.get(key, restval) for key in keys])
        writer.writer.writerows(rows)


def same_text_writer(out: Any) -> Any:
    """The writer to give iterabledata's write loop: ``out``, or a faster stand-in writing the same bytes."""
    if getattr(out, "_validation_hooks", None) or getattr(out, "fobj", None) is None:
        return out
    if type(out) is JSONLinesIterable:
        return _JSONLinesBulk(out.fobj)
    if type(out) is CSVIterable and getattr(out.writer, "extrasaction", "raise") == "raise":
        return _CSVBulk(out)
    return out
