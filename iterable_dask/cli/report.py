"""Result objects as JSON summaries (their fields) and as a few lines of text."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

__all__ = ["bulk_summary", "conversion_summary", "emit", "pipeline_summary"]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def conversion_summary(result: Any) -> dict[str, Any]:
    """A ``ConversionResult``'s fields (``skipped`` too, for a parallel one)."""
    summary = {f.name: _plain(getattr(result, f.name)) for f in dataclasses.fields(result)}
    summary.setdefault("skipped", getattr(result, "skipped", False))
    return summary


def bulk_summary(result: Any) -> dict[str, Any]:
    """A ``BulkConversionResult``'s totals, and one entry per file (``success``, ``error`` and its result's fields)."""
    summary = {f.name: _plain(getattr(result, f.name)) for f in dataclasses.fields(result) if f.name != "file_results"}
    summary.setdefault("skipped_files", list(getattr(result, "skipped_files", [])))
    files = []
    for item in result.file_results:
        entry: dict[str, Any] = {
            "source_file": item.source_file,
            "dest_file": item.dest_file,
            "success": item.success,
            "error": _plain(item.error),
        }
        if item.result is not None:
            entry.update(conversion_summary(item.result))
        files.append(entry)
    summary["file_results"] = files
    return summary


def pipeline_summary(result: Any) -> dict[str, Any]:
    """A ``PipelineResult``'s fields, with the parallel mode and the failed records' positions."""
    fields = ("rows_processed", "elapsed_seconds", "exceptions", "nulls", "rec_count", "time_start", "time_end")
    summary = {name: _plain(getattr(result, name, None)) for name in (*fields, "duration")}
    summary.update({
        "parallel_mode": getattr(result, "parallel_mode", "sequential"),
        "mode_reason": getattr(result, "mode_reason", ""),
        "errors": [_plain(dataclasses.asdict(e)) for e in getattr(result, "errors", [])],
    })  # fmt: skip
    return summary


def emit(summary: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    """The JSON summary on stdout, or the text lines."""
    if as_json:
        click.echo(json.dumps(summary, default=str))
    else:
        for line in lines:
            click.echo(line)
