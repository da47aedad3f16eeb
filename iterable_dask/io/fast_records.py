"""Records as iterabledata reads them, with less work per record.

* :func:`line_decoder`: one JSON line to one record, as ``json.loads`` does
  it. ``json.loads(line)`` runs three Python frames and two regular
  expressions around the C scanner that does the parsing; on short records
  that wrapping is about 40% of the time. A line that starts with a value
  and ends where the value ends needs none of it; any other line (leading
  or trailing whitespace, a BOM, extra data, malformed JSON) goes to
  ``json.loads`` itself, so values and error messages stay the standard library's.
* :func:`rows_to_dicts`: :class:`csv.DictReader`'s dicts from ``csv.reader`` rows, a batch at once.
* :func:`fast_records`: the records of a JSON Lines or CSV file iterabledata
  has just opened, read from the very stream (and dialect) iterabledata
  opened, without its per-record bookkeeping.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from iterable.datatypes.csv import CSVIterable
from iterable.datatypes.jsonl import JSONLinesIterable

__all__ = ["fast_records", "line_decoder", "records_of", "rows_to_dicts"]

#: Characters of decoded text read per call (JSON Lines).
BLOCK = 1 << 20
#: Rows parsed per batch (CSV).
ROWS = 1000


def line_decoder() -> Callable[[str], Any]:
    """A ``json.loads`` for one line of text: the same value, or the same error.

    Each call returns a new decoder (a scanner of its own), so threads do not
    share one.

    Examples
    --------
    >>> decode = line_decoder()
    >>> decode('{"id": 1, "tags": ["a"]}')
    {'id': 1, 'tags': ['a']}
    >>> decode(' {"id": 2} ')  # whitespace: json.loads decides, as always
    {'id': 2}
    """
    scan = json.JSONDecoder().scan_once  # the C scanner; it clears its key memo after every call
    loads = json.loads

    def decode(line: str) -> Any:
        try:
            value, end = scan(line, 0)
        except (StopIteration, ValueError):  # no value at position 0, malformed: json.loads says what
            return loads(line)
        if end == len(line):
            return value
        return loads(line)  # trailing whitespace is fine, extra data raises, as json.loads says

    return decode


def rows_to_dicts(rows: list[list[str]], fieldnames: tuple[str, ...]) -> list[dict[str, Any]]:
    """Dicts as :class:`csv.DictReader` makes them: blank rows skipped, extras under ``None``, missing as None."""
    names = list(fieldnames)
    lf = len(names)
    if all(len(row) == lf for row in rows):  # the common case, with no blank or ragged row
        return [dict(zip(names, row, strict=True)) for row in rows] if lf else []
    out: list[dict[str, Any]] = []
    for row in rows:
        if not row:
            continue
        lr = len(row)
        d = dict(zip(names, row, strict=False))
        if lf < lr:
            d[None] = row[lf:]
        elif lf > lr:
            for key in names[lr:]:
                d[key] = None
        out.append(d)
    return out


def fast_records(it: Any) -> Iterator[Any] | None:
    """The records of ``it``, a JSON Lines or CSV iterable just opened by path, or None when this cannot read it.

    JSON Lines: iterabledata's reader takes one line per call from a text
    stream with universal newlines (``newline=None``: ``\\r\\n`` and ``\\r``
    read as ``\\n``), skips blank lines and gives each other line to
    ``json.loads``. Reading the same stream in blocks split at ``\\n`` gives
    the same lines, and :func:`line_decoder` the same records.

    CSV: iterabledata's reader is a :class:`csv.DictReader` over the stream
    it opened (its dialect detected); its ``csv.reader`` rows, a batch at a
    time through :func:`rows_to_dicts`, are the same dicts.

    Anything unusual (validation hooks, read-ahead, an ``on_error`` other
    than ``"raise"``, an iterable already read from or on a caller's stream)
    returns None: iterate ``it`` itself then. An exception from the iterator
    (a malformed line, undecodable bytes) means: open the file again and let
    iterabledata read it, which raises its own error naming the line (or,
    should this reader ever disagree, gives its records).
    """
    if getattr(it, "mode", None) != "r":
        return None
    if not getattr(it, "filename", None) and getattr(it, "codec", None) is None:  # a caller's stream
        return None
    unusual = getattr(it, "_validation_hooks", None) or getattr(it, "_read_ahead_enabled", False)
    if unusual or getattr(it, "_on_error", None) != "raise":
        return None
    # Nothing read yet (since opening, or since reset(): which leaves a JSON Lines iterable's pos as it was).
    if type(it) is JSONLinesIterable and hasattr(getattr(it, "fobj", None), "read"):
        return _json_lines(it.fobj) if getattr(it, "_current_line_number", None) == 0 else None
    reader = getattr(it, "reader", None)
    fresh = type(reader) is csv.DictReader and reader.line_num == 0
    if type(it) is CSVIterable and fresh and reader.restkey is None and reader.restval is None:
        return _csv(reader)
    return None


def records_of(it: Any, reopen: Callable[[], Any]) -> Iterator[Any]:
    """The records of ``it``, just opened by ``reopen()``: by :func:`fast_records` where it reads them.

    Should the fast reader raise after ``n`` records, the file is opened again
    and iterabledata's own reader skips ``n`` records and goes on from there,
    raising its own error at the bad line (or, should the fast reader ever
    disagree, giving the rest of the records). For a consumer that cannot
    start over (records already handed on); ``it`` stays the caller's to close.
    """
    fast = fast_records(it)
    if fast is None:
        yield from it
        return
    n = 0
    try:
        for n, record in enumerate(fast, 1):  # noqa: B007 (n counts what was handed on)
            yield record
        return
    except Exception:
        pass  # below, outside the handler: iterabledata's error carries no context of ours
    again = reopen()
    try:
        records = iter(again)
        for _ in islice(records, n):
            pass
        yield from records
    finally:
        with contextlib.suppress(Exception):
            again.close()


def _csv(reader: csv.DictReader) -> Iterator[dict[str, Any]]:
    names = reader.fieldnames  # reads the header, as DictReader's first __next__ does
    if names is None:  # an empty file
        return
    fieldnames, rows = tuple(names), reader.reader
    while batch := list(islice(rows, ROWS)):
        yield from rows_to_dicts(batch, fieldnames)


def _json_lines(fobj: Any) -> Iterator[Any]:
    decode = line_decoder()
    pending: list[str] = []  # the start of a line longer than a block
    while block := fobj.read(BLOCK):
        if "\n" not in block:
            pending.append(block)
            continue
        if pending:
            pending.append(block)
            block = "".join(pending)
            pending = []
        lines = block.split("\n")
        pending.append(lines.pop())
        for line in lines:
            if line.strip():
                yield decode(line)
    last = "".join(pending)
    if last.strip():
        yield decode(last)
