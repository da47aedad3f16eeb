"""The names of iterable_dask's tasks, as the Dask dashboard shows them.

One scheme for every task key: ``iterable-<capability>[-<step>]-<token>[-<index>]``.
Dask's :func:`dask.utils.key_split` keeps the words before the first one that
is not purely alphabetic, so the scheduler's task prefix (the dashboard's
colour and the row in its progress bars) is ``iterable-<capability>[-<step>]``,
one of :data:`TASK_NAMES`. :func:`task_key` makes sure the token always ends
that prefix (a hex token made only of letters would otherwise join it).
"""

from __future__ import annotations

from typing import Any

from dask.base import tokenize

__all__ = [
    "CONVERT",
    "CONVERT_JOIN",
    "CONVERT_KEYS",
    "CONVERT_PART",
    "PIPELINE_CHUNK",
    "READ",
    "READ_FRAME",
    "READ_SOURCE",
    "RECORDS",
    "TASK_NAMES",
    "WRITE",
    "WRITE_FILE",
    "WRITE_KEYED",
    "task_key",
    "task_token",
]

READ = "iterable-read"
READ_FRAME = "iterable-read-frame"
READ_SOURCE = "iterable-read-source"
RECORDS = "iterable-records"
WRITE = "iterable-write"
WRITE_KEYED = "iterable-write-keyed"
WRITE_FILE = "iterable-write-file"
PIPELINE_CHUNK = "iterable-pipeline-chunk"
CONVERT = "iterable-convert"
CONVERT_KEYS = "iterable-convert-keys"
CONVERT_PART = "iterable-convert-part"
CONVERT_JOIN = "iterable-convert-join"

#: Every task prefix the package submits, with what its task does and which function submits it.
TASK_NAMES: dict[str, tuple[str, str]] = {
    READ: ("reads one partition: a file, a byte range, Parquet row groups or a group of small files", "read_bag"),
    READ_FRAME: ("reads one partition into a pandas DataFrame", "read_dataframe, to_dask"),
    READ_SOURCE: ("reads a part of a source (or several small sources) and packs its records", "parallel_read"),
    RECORDS: ("holds one packed chunk of in-memory records", "records_to_bag"),
    WRITE: ("writes one bag partition to its own file, atomically", "write_bag, parallel_write(bag)"),
    WRITE_KEYED: ("writes one bag partition into a file per key", "parallel_write(bag, partition_by=)"),
    WRITE_FILE: ("writes one file of records grouped in the caller", "parallel_write(records)"),
    PIPELINE_CHUNK: ("runs process_func over one chunk of records", "pipeline, Pipeline.run"),
    CONVERT: ("converts one file, or a batch of small files, each atomically", "convert, bulk_convert"),
    CONVERT_KEYS: ("scans a big file's columns before it is split (flat targets)", "convert"),
    CONVERT_PART: ("converts one byte range of a big file to a part file", "convert"),
    CONVERT_JOIN: ("joins the part files into the target", "convert"),
}


def task_token(*args: Any) -> str:
    """A deterministic token of ``args`` for a task key (Dask's ``tokenize``)."""
    return tokenize(*args)


def task_key(name: str, token: str, *indices: int | str) -> str:
    """``<name>-<token>[-<index>...]``: a task key whose dashboard prefix is ``name``.

    Examples
    --------
    >>> from dask.utils import key_split
    >>> key_split(task_key(CONVERT_PART, "abcdefabcdef", 3))
    'iterable-convert-part'
    """
    if name not in TASK_NAMES:
        raise ValueError(f"{name!r} is not one of iterable_dask's task names")
    if token.isalpha():  # a hex token of letters only would read as one more word of the prefix
        token = f"0{token}"
    return "-".join([name, token, *(str(i) for i in indices)])
