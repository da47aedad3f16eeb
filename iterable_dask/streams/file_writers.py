"""The worker tasks of :func:`~iterable_dask.parallel_write`: one file, or one bag partition split by key."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote

from iterable.helpers.detect import is_flat

from ..core.chunks import PackedChunk, unpack
from ..core.exceptions import FileWriteError
from ..io.fs import makedirs
from ..io.write import PartitionWriter, flat_keys

__all__ = ["FileWriter", "KeyedPartitionWriter", "WrittenFile", "key_function", "partition_folder"]

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_MAX_NAME_BYTES = 200


class WrittenFile(NamedTuple):
    """One file written by :func:`parallel_write`."""

    path: str
    rows: int


def _quote(text: str) -> str:
    return quote(text, safe=" -_.,@+~")  # "/", "=", "%" and the rest percent-encoded


def partition_folder(label: str, value: Any) -> str:
    """Hive-style folder name ``label=value`` for a partition key, safe as one path component.

    Both parts are percent-encoded (``/`` cannot make a subfolder), a leading
    dot is encoded (no hidden folder), and overlong names end in a hash.

    Examples
    --------
    >>> partition_folder("city", "Berlin")
    'city=Berlin'
    >>> partition_folder("path", "../etc/passwd")
    'path=..%2Fetc%2Fpasswd'
    >>> partition_folder("city", None)
    'city=__HIVE_DEFAULT_PARTITION__'
    """
    text = NULL_PARTITION if value is None else str(value)
    name = f"{_quote(label)}={_quote(text)}"
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name.encode()) > _MAX_NAME_BYTES:
        digest = hashlib.sha1(f"{label}={text}".encode()).hexdigest()[:16]
        name = f"{name[: _MAX_NAME_BYTES - 17]}~{digest}"
    return name


def key_function(partition_by: str | bytes | Callable[[Any], Any]) -> tuple[str, Callable[[Any], Any]]:
    """(folder label, record -> key) from a field name, a function, or a cloudpickled function."""
    if isinstance(partition_by, str):
        name = partition_by

        def by_field(record: Any) -> Any:
            try:
                return record.get(name)
            except AttributeError:
                raise TypeError(f"partition_by={name!r} needs dict records; got {type(record).__name__}") from None

        return name, by_field
    return "key", pickle.loads(partition_by) if isinstance(partition_by, bytes) else partition_by


@dataclass(frozen=True)
class FileWriter:
    """Worker task: write one file's records (a :class:`PackedChunk` or a list) atomically; return (path, rows)."""

    path: str
    job: str
    toiterableargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 10000
    storage_options: dict[str, Any] | None = None

    def __call__(self, records: PackedChunk | list[Any]) -> tuple[str, int]:
        records = unpack(records)
        args = dict(self.toiterableargs)
        if is_flat(self.path):  # columns from the target's name, not the temporary one's
            args.setdefault("keys", flat_keys(records))
        try:
            folder = os.path.dirname(self.path)
            if folder:
                makedirs(folder, self.storage_options)
            written = PartitionWriter(self.path, self.job, args, self.batch_size, self.storage_options)(records)
            return (self.path, written[0][1] if written else 0)
        except Exception as e:
            error = FileWriteError(f"Failed to write {self.path!r}: {type(e).__name__}: {e}", path=self.path)
            cause = e if _round_trips(e) else None
        raise error from cause  # outside the except block: no context, and a cause only if it unpickles

    def __hash__(self) -> int:
        return hash((self.path, self.job))


def _round_trips(error: BaseException) -> bool:
    """Whether an error survives pickling (a worker's error crosses to the caller with its cause)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class KeyedPartitionWriter:
    """Worker task: write one bag partition as one file per key, ``dest/label=value/part-<partition>.<ext>``."""

    dest: str
    ext: str
    partition: int
    job: str
    partition_by: str | bytes
    toiterableargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 10000
    storage_options: dict[str, Any] | None = None

    def __call__(self, records: Iterable[Any]) -> list[tuple[str, int]]:
        label, key_of = key_function(self.partition_by)
        groups: dict[str, list[Any]] = {}
        for record in records:
            groups.setdefault(partition_folder(label, key_of(record)), []).append(record)
        name = f"part-{self.partition:05d}.{self.ext}"
        return [
            FileWriter(
                os.path.join(self.dest, folder, name),
                self.job,
                self.toiterableargs,
                self.batch_size,
                self.storage_options,
            )(group)
            for folder, group in groups.items()
        ]

    def __hash__(self) -> int:
        return hash((self.dest, self.partition, self.job))
