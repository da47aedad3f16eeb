"""``iterable-dask head``: the first records of any file iterabledata reads, as JSON lines."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import click
from iterable import open_iterable
from iterable.helpers.detect import detect_file_type

from ..io.fs import is_url, local_input
from ..io.head import ByteWindow
from .options import output_options, parse_storage_options, storage_option

__all__ = ["head_command", "head_records"]

_LINE_FORMATS = ("CSVIterable", "JSONLinesIterable")


def _line_format(name: str) -> bool:
    info = detect_file_type(name)
    datatype = info.get("datatype")
    kind = datatype if isinstance(datatype, str) else getattr(datatype, "__name__", None)
    return info.get("codec") is None and kind in _LINE_FORMATS


def _take(path: str, n: int) -> list[dict[str, Any]]:
    it = open_iterable(path)
    try:
        return list(itertools.islice(it, n))
    finally:
        it.close()


@contextlib.contextmanager
def _scratch(name: str) -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="iterable-dask-head-")
    try:
        yield os.path.join(folder, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def head_records(source: str, n: int, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The first ``n`` records of ``source`` as iterabledata reads them.

    A plain CSV, TSV or JSON Lines object is read from its first bytes only
    (range requests, doubling until ``n`` whole records are in); any other
    remote object is fetched whole to a temporary folder first.
    """
    if not is_url(source) or not _line_format(os.path.basename(source)):
        with local_input(source, storage_options) as local:
            return _take(local, n)
    window = ByteWindow(source, 0, storage_options)
    with _scratch(os.path.basename(source.rstrip("/"))) as local:
        while True:
            window.grow()
            data = window.data
            if not window.eof:
                data = data[: data.rfind(b"\n") + 1]  # whole lines only
            with open(local, "wb") as f:
                f.write(data)
            records = _take(local, n + 1)  # one more: the last record of a cut may be incomplete
            if window.eof or len(records) > n:
                return records[:n]


@click.command("head")
@click.argument("source", metavar="SRC")
@click.option("-n", "--records", "n", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many records.")  # fmt: skip
@storage_option
@output_options
def head_command(source: str, n: int, storage_options: tuple[str, ...], as_json: bool) -> int:
    """Print the first records of SRC as JSON lines: a quick look at any format, local or remote.

    \b
    Examples:
      iterable-dask head data.parquet -n 3
      iterable-dask head s3://bucket/logs/2026-11-29.jsonl.gz --storage-option anon=true
    """
    records = head_records(source, n, parse_storage_options(storage_options) or None)
    if as_json:
        click.echo(json.dumps({"source": source, "records": records}, default=str, ensure_ascii=False))
    else:
        for record in records:
            click.echo(json.dumps(record, default=str, ensure_ascii=False))
    return 0
