"""Stand-ins for iterabledata's writers that write the very same bytes with less work per record.

iterabledata's JSON Lines writer builds a JSON encoder per record; the stand-in
the conversion tasks' write loop uses builds one C encoder per batch.
iterabledata's CSV writer (``csv.DictWriter``) looks every field up in a
Python generator; the stand-in takes a batch's rows with one C
``itemgetter`` when every record is a plain dict with exactly the header's
keys (half the time on 20 fields), and leaves any other batch to
``DictWriter`` itself, so missing keys, extra keys and errors behave as there.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
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
    """iterabledata's ``CSVIterable.write_bulk``: the same rows, written by ``DictWriter``'s own ``csv.writer``."""

    def __init__(self, out: CSVIterable) -> None:
        self._out = out

    def write_bulk(self, records: list[Any]) -> None:
        if records is None:
            raise TypeError("write_bulk() requires a list of records, got None")
        if not records:
            return
        out = self._out
        out._ensure_writer(records[0])
        writer = out.writer  # a csv.DictWriter, its header written
        rows = _exact_rows(records, list(writer.fieldnames))
        if rows is None:
            writer.writerows(records)
        else:
            writer.writer.writerows(rows)


def _exact_rows(records: list[Any], fieldnames: list[str]) -> list[tuple[Any, ...]] | None:
    """The field values of every record in header order, or None unless each is a dict with exactly those keys.

    Nothing here runs Python code per record: ``map`` over C callables. A
    record missing a key fails the ``itemgetter``; sizes summing to ``count *
    width`` then rule out extra keys (each record has at least the header's).
    """
    width = len(fieldnames)
    if width < 2 or len(set(fieldnames)) != width or set(map(type, records)) != {dict}:
        return None
    if sum(map(len, records)) != width * len(records):
        return None
    try:
        return list(map(itemgetter(*fieldnames), records))
    except KeyError:
        return None


def same_text_writer(out: Any) -> Any:
    """The writer to give iterabledata's write loop: ``out``, or a faster stand-in writing the same bytes."""
    if getattr(out, "_validation_hooks", None) or getattr(out, "fobj", None) is None:
        return out
    if type(out) is JSONLinesIterable:
        return _JSONLinesBulk(out.fobj)
    if type(out) is CSVIterable:
        return _CSVBulk(out)
    return out
