"""The first bytes of a file, grown until they hold what is parsed from them.

Every place that parses lines or records out of a file's first bytes (the CSV
header sniff, the head iterabledata detects a remote file's dialect from, the
bytes-per-record estimate) reads them through :class:`ByteWindow`: a window
starts small, grows by doubling until it holds the whole lines asked for (or
the whole file), and gives up past a limit, so the caller can take a path
that is exact (read the file whole). A partial line is never handed on as if
it were whole.
"""

from __future__ import annotations

from typing import Any

from .fs import read_bytes

__all__ = ["FIRST_BYTES", "HEAD_LIMIT", "ByteWindow", "HeadTooLong", "bytes_per_record"]

#: Bytes of the first request for a file's head.
FIRST_BYTES = 1 << 16
#: A head that still lacks the lines asked for after this many bytes is not sniffed: the file is read whole.
HEAD_LIMIT = 64 << 20
#: Whole lines a bytes-per-record estimate waits for.
_ESTIMATE_LINES = 16


class HeadTooLong(ValueError):
    """The lines asked for are not within :data:`HEAD_LIMIT` bytes of the file's start."""


class ByteWindow:
    """Bytes of a file from ``base`` on, fetched as far as asked (range requests for a URL; no size lookup).

    Parameters
    ----------
    path : str
        A local path or an fsspec URL.
    base : int
        The offset of the window's first byte.
    storage_options : dict, optional
        fsspec options for a URL.
    data : bytes
        Bytes from ``base`` on already at hand (a head fetched before); ``eof``
        says whether they reach the end of the file.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.csv")
    >>> _ = open(path, "wb").write(b"a,b\\n1,2\\n3,4")
    >>> window = ByteWindow(path)
    >>> window.whole_lines(2, first=2)
    b'a,b\\n1,2\\n'
    >>> window.whole_lines(3), window.eof  # no third newline: the whole file
    (b'a,b\\n1,2\\n3,4', True)
    """

    def __init__(
        self,
        path: str,
        base: int = 0,
        storage_options: dict[str, Any] | None = None,
        data: bytes = b"",
        eof: bool = False,
    ) -> None:
        self.path, self.base, self.storage_options = path, base, storage_options
        self._parts = [data] if data else []
        self._size = len(data)
        self._data: bytes | None = data
        self.eof = eof

    @property
    def data(self) -> bytes:
        """The bytes fetched so far, from ``base`` on."""
        if self._data is None:
            self._data = b"".join(self._parts)
            self._parts = [self._data]
        return self._data

    @property
    def end(self) -> int:
        """The offset just past the bytes fetched so far."""
        return self.base + self._size

    def fetch(self, upto: int) -> None:
        """Hold the bytes up to offset ``upto`` (or to the end of the file)."""
        begin = self.end
        if self.eof or upto <= begin:
            return
        chunk = read_bytes(self.path, begin, upto, self.storage_options)
        if chunk:
            self._parts.append(chunk)
            self._size += len(chunk)
            self._data = None
        self.eof = len(chunk) < upto - begin

    def grow(self, first: int = FIRST_BYTES) -> None:
        """Double the bytes held (``first`` when none are)."""
        self.fetch(self.end + max(first, self._size))

    def line_start(self, pos: int, step: int = FIRST_BYTES) -> int:
        """The first line start at or after ``pos`` (> base), or the end of the file.

        As :func:`~iterable_dask.io.partitions.align_to_line`: the line holding
        byte ``pos - 1`` ends there.
        """
        i = pos - 1 - self.base
        self.fetch(self.base + i + 1)
        while True:
            j = self.data.find(b"\n", i)
            if j >= 0:
                return self.base + j + 1
            if self.eof:
                return self.end
            i = max(i, self._size)
            # Double the distance searched past ``pos`` (not the window: a range's end must not fetch the range again).
            self.fetch(self.end + max(4 * step, self.end - pos))

    def whole_lines(self, lines: int, first: int = FIRST_BYTES, limit: int | None = None) -> bytes:
        """The bytes held, cut after their last ``\\n``, once they hold at least ``lines`` lines.

        Grows by doubling from ``first`` bytes. At the end of the file the
        bytes are given whole (a last line without ``\\n`` included), and
        :attr:`eof` is true. ``limit`` defaults to :data:`HEAD_LIMIT`.

        Raises
        ------
        HeadTooLong
            ``lines`` lines are not within ``limit`` bytes.
        """
        limit = HEAD_LIMIT if limit is None else limit
        if not self._size:
            self.fetch(self.base + first)
        while not self.eof and self.data.count(b"\n") < lines:
            if self._size >= limit:
                raise HeadTooLong(
                    f"{self.path!r}: fewer than {lines} line(s) in its first {self._size} bytes (limit {limit})"
                )
            self.grow(first)
        if self.eof:
            return self.data
        return self.data[: self.data.rindex(b"\n") + 1]


def bytes_per_record(path: str, storage_options: dict[str, Any] | None = None, head: bytes | None = None) -> int:
    """Bytes per line at the start of ``path``: from at least a few whole lines, however long they are.

    ``head``, the file's first bytes when already at hand, is grown only when
    it holds too few whole lines. A file whose lines are longer than
    :data:`HEAD_LIMIT` counts as one line of that many bytes.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.jsonl")
    >>> _ = open(path, "wb").write(b'{"a": 1}\\n' * 100)
    >>> bytes_per_record(path)
    9
    """
    window = ByteWindow(path, 0, storage_options, head or b"")
    try:
        data = window.whole_lines(_ESTIMATE_LINES)
    except HeadTooLong:
        return max(1, len(window.data))
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return max(1, len(data) // max(1, lines))
