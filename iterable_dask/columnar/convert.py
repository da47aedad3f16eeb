"""The columnar engine's one entry point: a file converted by pyarrow, or ColumnarUnavailable."""

from __future__ import annotations

from typing import Any

from .kinds import ColumnarUnavailable, path_kind
from .to_parquet import csv_dialect, csv_to_parquet, jsonl_to_parquet
from .to_text import parquet_to_text

__all__ = ["convert_columnar"]


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
            return csv_to_parquet(source, tmp, csv_dialect(source, opts["iterableargs"]), opts)
        return jsonl_to_parquet(source, tmp, opts["iterableargs"], opts)
    if src == "parquet" and dst in ("csv", "jsonl"):
        return parquet_to_text(source, target, tmp, dst, opts)
    raise ColumnarUnavailable(f"no columnar path from {src or 'this source'} to {dst or 'this target'}")
