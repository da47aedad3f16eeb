"""Expanding ``sources`` arguments (globs, directories, paths, iterables) into a list."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iterable.base import BaseIterable

from .fs import expand_url, is_url

__all__ = ["Source", "expand_sources", "source_name"]

Source = str | BaseIterable

_GLOB_CHARS = frozenset("*?[")


def _expand_one(source: str | os.PathLike[str], storage_options: dict[str, Any] | None) -> list[str]:
    text = os.fspath(source)
    if is_url(text):
        return expand_url(text, storage_options)
    if text.startswith("file://"):
        text = text[len("file://") :]
    path = Path(text)
    if path.is_file():
        return [text]
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"Directory {text!r} contains no files")
        return files
    if _GLOB_CHARS & set(text):
        matches = sorted(m for m in glob.glob(text) if Path(m).is_file())
        if not matches:
            raise FileNotFoundError(f"No files match the pattern {text!r}")
        return matches
    raise FileNotFoundError(f"File not found: {text!r}")


def expand_sources(sources: Any, storage_options: dict[str, Any] | None = None) -> list[Source]:
    """Expand globs, directories and paths into files, keeping iterables as they are.

    Parameters
    ----------
    sources : str, PathLike, BaseIterable, or a list of these
        A glob (``"data/*.csv"``), a directory (its files, sorted, hidden files
        skipped), a path, an iterabledata iterable, or a list mixing them.
        Each may be an fsspec URL (``"s3://bucket/logs/*.jsonl.gz"``), which
        expands through fsspec to full URLs.
    storage_options : dict, optional
        Passed to fsspec for URLs (credentials, ``client_kwargs`` ...).

    Returns
    -------
    list
        File paths (str) and iterables, in the order given; globs and
        directories expand in sorted order.

    Raises
    ------
    FileNotFoundError
        A path or object does not exist, a glob matches nothing, a directory or prefix is empty.
    TypeError
        An element is neither a path nor an iterable.

    Examples
    --------
    >>> expand_sources([])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: sources is empty
    """
    if isinstance(sources, (str, os.PathLike, BaseIterable)):
        sources = [sources]
    if not isinstance(sources, Iterable):
        raise TypeError(
            f"sources must be a path, a glob, a directory, an iterable or a list of them; got {type(sources).__name__}"
        )
    out: list[Source] = []
    for item in sources:
        if isinstance(item, BaseIterable):
            out.append(item)
        elif isinstance(item, (str, os.PathLike)):
            out.extend(_expand_one(item, storage_options))
        else:
            raise TypeError(
                f"each source must be a path, a glob or an iterabledata iterable; got {type(item).__name__}: {item!r}"
            )
    if not out:
        raise ValueError("sources is empty: give at least one path, glob, directory or iterable")
    return out


def source_name(source: Source) -> str:
    """A human-readable name of a source for messages."""
    if isinstance(source, str):
        return source
    filename = getattr(source, "filename", None)
    return f"{type(source).__name__}({filename!r})" if filename else type(source).__name__
