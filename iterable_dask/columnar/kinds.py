"""Which files the columnar engine takes: kinds by name, its refusal, and the argument checks every path shares."""

from __future__ import annotations

import codecs
import functools
import os
from typing import Any

from iterable.helpers.detect import detect_file_type

__all__ = ["ColumnarUnavailable", "check_args", "is_utf8", "parquet_flush_rows", "path_kind"]

_KINDS = {"CSVIterable": "csv", "JSONLinesIterable": "jsonl", "ParquetIterable": "parquet"}


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


def is_utf8(encoding: str | None) -> bool:
    try:
        return codecs.lookup(encoding or "utf8").name == "utf-8"
    except LookupError:
        return False


def check_args(args: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = set(args) - allowed
    if extra:
        raise ColumnarUnavailable(f"{what} {sorted(extra)} are not reproduced by the columnar path")
