"""JSON Lines records as iterabledata reads them, with less work per line.

:func:`line_decoder` is one JSON line to one record, as ``json.loads`` does it.

``json.loads(line)`` runs three Python frames (``loads``, ``decode``,
``raw_decode``) and two regular-expression matches around the C scanner
that does the parsing: on short records that wrapping is about 40% of the
time. A line that starts with a value and ends where the value ends needs
none of it; any other line (leading or trailing whitespace, a BOM, extra
data, malformed JSON) goes to ``json.loads`` itself, so results and error
messages stay exactly the standard library's.

:func:`fast_records` reads a JSON Lines file iterabledata has just opened
(plain or compressed, any encoding) from the very text stream iterabledata
opened, a block at a time instead of a line per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from iterable.datatypes.jsonl import JSONLinesIterable

__all__ = ["fast_records", "line_decoder"]

#: Characters of decoded text read per call.
BLOCK = 1 << 20


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


def fast_records(it: Any) -> Iterator[Any] | None:
    """The records of ``it``, a JSON Lines iterable just opened by path, or None when this cannot read it.

    iterabledata's reader takes one line per call from a text stream with
    universal newlines (``newline=None``: ``\\r\\n`` and ``\\r`` read as ``\\n``),
    skips blank lines and gives each other line to ``json.loads``. Reading
    the same stream in blocks split at ``\\n`` gives the same lines, and
    :func:`line_decoder` the same records. Anything unusual (validation hooks,
    read-ahead, an ``on_error`` other than ``"raise"``, an iterable on a
    caller's stream) returns None: iterate ``it`` itself then.

    A ``ValueError`` from the iterator (a malformed line, undecodable bytes)
    means: open the file again and let iterabledata read it, which raises
    its own error naming the line (or, should this reader ever disagree,
    gives its records).
    """
    if type(it) is not JSONLinesIterable or getattr(it, "mode", "r") != "r":
        return None
    if not getattr(it, "filename", None) and getattr(it, "codec", None) is None:  # a caller's stream
        return None
    if it._validation_hooks or getattr(it, "_read_ahead_enabled", False) or getattr(it, "_on_error", None) != "raise":
        return None
    fobj = getattr(it, "fobj", None)
    if fobj is None or it.pos or not hasattr(fobj, "read"):
        return None
    return _records(fobj)


def _records(fobj: Any) -> Iterator[Any]:
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
