"""Byte ranges of a CSV file: the header sniffed from a head that grows, and records that span lines.

A CSV file splits into ranges after its header; the header is read from the
file's first whole lines (:class:`~iterable_dask.io.head.ByteWindow`, however
long the header is), and a file whose head shows a quoted line break is one
range. :func:`joined_if_records_span_lines` scans a whole file for them, for
callers that cannot offer ``blocksize=None``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from typing import Any

from .fs import is_url, open_input
from .head import ByteWindow, HeadTooLong
from .partitions import CSVRange

__all__ = ["joined_if_records_span_lines", "plan_csv", "ranges"]

#: Bytes scanned at a time for records that span lines.
_SCAN_BLOCK = 8 << 20


def ranges(begin: int, size: int, blocksize: int) -> list[tuple[int, int]]:
    """``[start, end)`` pairs of ``blocksize`` bytes from ``begin`` to ``size`` (one, possibly empty, at least)."""
    if size <= begin:
        return [(begin, size)]
    starts = list(range(begin, size, blocksize))
    return [(s, min(s + blocksize, size)) for s in starts]


def _csv_header(
    path: str,
    encoding: str,
    delimiter: str,
    quotechar: str,
    storage_options: dict[str, Any] | None = None,
    head: str | None = None,
    size: int | None = None,
) -> tuple[tuple[str, ...] | None, int, bool] | None:
    """Field names, the byte offset after the header, and whether the sniffed start has multi-line records.

    The sniffed bytes grow until the header record ends before them (however
    long it is) or they are the whole file; None when it does not end within
    :data:`~iterable_dask.io.head.HEAD_LIMIT` bytes, or Python's csv module
    cannot parse them (a field past its size limit): read the file whole, and
    let iterabledata's reader say what is wrong with it.
    ``head``, a local file holding the first whole lines of a remote ``path``
    of ``size`` bytes (what iterabledata's reader just opened), is sniffed
    before any range request.
    """
    window = ByteWindow(path, 0, storage_options)
    if head is not None and size is not None:
        with open(head, "rb") as f:
            data = f.read()
        window = ByteWindow(path, 0, storage_options, data, eof=len(data) >= size)
    wanted = 2  # the header's line and one more: the header record ended before the sample did
    while True:
        try:
            sample = window.whole_lines(wanted)
        except HeadTooLong:
            return None
        complete = window.eof
        text = sample.decode(encoding, errors="strict" if complete else "replace")
        lines = list(io.StringIO(text, newline=""))
        if not lines:
            return None, 0, False
        reader = csv.reader(iter(lines), delimiter=delimiter, quotechar=quotechar)
        try:
            header = next(reader, None)
        except csv.Error:  # a field past Python's limit, say: iterabledata's own read names the file
            return None
        if header is None:
            return None, 0, False
        if complete or reader.line_num < len(lines):
            break
        wanted = sample.count(b"\n") + 1  # the header may run on past the last whole line: sniff more
    header_lines = reader.line_num
    header_end = sum(len(line.encode(encoding)) for line in lines[:header_lines])
    try:
        multiline = _spans_lines(reader, header_lines)
    except csv.Error:
        return None
    return tuple(header), header_end, multiline


def _spans_lines(reader: Any, line_num: int) -> bool:
    """Whether a record after the header spans several lines (a quoted newline), in what ``reader`` has left."""
    if line_num > 1:
        return True
    prev = line_num
    for _ in reader:
        if reader.line_num - prev > 1:
            return True
        prev = reader.line_num
    return False


def plan_csv(
    it: Any, path: str, size: int, blocksize: int, storage_options: dict[str, Any] | None = None
) -> list[Any] | None:
    encoding = it.encoding or "utf8"
    if "\n".encode(encoding) != b"\n" or "\r".encode(encoding) != b"\r":
        return None  # UTF-16 and friends: no byte-level lines
    delimiter, quotechar = it.delimiter, it.quotechar
    local = getattr(it, "filename", None)
    head = local if is_url(path) and isinstance(local, str) and os.path.isfile(local) else None
    sniffed = _csv_header(path, encoding, delimiter, quotechar, storage_options, head, size)
    if sniffed is None:  # no header line within the sniff's limit: read the file whole, exactly
        return None
    fieldnames, header_end, multiline = sniffed
    if it.keys is not None:  # explicit field names: the first line is a record
        fieldnames, header_end = tuple(it.keys), 0
    if multiline:  # quoted newlines seen up front: do not split this file
        return [CSVRange(path, 0, size, fieldnames, header_end, encoding, delimiter, quotechar, storage_options)]
    return [
        CSVRange(path, s, e, fieldnames, header_end, encoding, delimiter, quotechar, storage_options)
        for s, e in ranges(header_end, size, blocksize)
    ]


def _odd_quotes(quote: bytes) -> re.Pattern[bytes]:
    """A line holding an odd number of ``quote`` bytes: one that opens (or closes) a quoted line break."""
    q, other = re.escape(quote), b"[^" + re.escape(quote) + b"\n]*"
    return re.compile(b"^" + other + b"(?:" + q + other + q + other + b")*" + q + other + b"$", re.MULTILINE)


def joined_if_records_span_lines(parts: list[Any], storage_options: dict[str, Any] | None = None) -> list[Any]:
    """``parts`` as they are, or the byte ranges of one CSV file joined into one when a record spans lines.

    For callers that have no ``blocksize=None`` to offer (the pipeline): a
    quoted line break anywhere in the file (not only in its head) would make
    a range raise :class:`UnsplittableFileError`, so the whole file is
    scanned for a line with an odd number of quote characters (in C, by a
    regular expression; a file without the quote character at all costs one
    ``find`` per block). Found: one range over the whole file, which reads
    it exactly.
    """
    if len(parts) < 2 or not all(type(p) is CSVRange and p.path == parts[0].path for p in parts):
        return parts
    first = parts[0]
    quote = first.quotechar.encode(first.encoding)
    pattern = _odd_quotes(quote)
    with open_input(first.path, storage_options) as f:
        f.seek(first.header_end)
        tail = b""
        while block := f.read(_SCAN_BLOCK):
            data = tail + block
            cut = data.rfind(b"\n") + 1
            data, tail = data[:cut], data[cut:]
            if quote in data and pattern.search(data):
                return [dataclasses.replace(first, end=parts[-1].end)]
        if quote in tail and pattern.search(tail):
            return [dataclasses.replace(first, end=parts[-1].end)]
    return parts
