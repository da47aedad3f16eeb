"""Configuration of iterable_dask, in the ``iterable-dask`` dask.config namespace.

Defaults ship in ``iterable-dask.yaml`` beside this module and are registered
with :func:`dask.config.update_defaults` at import; nothing is written to disk.
Values are read at call time, so ``dask.config.set({"iterable-dask.chunk-size":
5000})`` and environment variables such as ``DASK_ITERABLE_DASK__CHUNK_SIZE=5000``
take effect without re-importing anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.config
import yaml
from dask.utils import parse_bytes, parse_timedelta

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PARALLEL_MODE",
    "DEFAULT_PARALLEL_WORKERS",
    "PARALLEL_MODES",
    "get",
    "resolve_blocksize",
    "resolve_chunk_size",
    "resolve_parallel_mode",
    "resolve_retries",
    "resolve_workers",
]

NAMESPACE = "iterable-dask"
_HERE = Path(__file__).parent
DEFAULTS_FILE = _HERE / "iterable-dask.yaml"
SCHEMA_FILE = _HERE / "iterable-dask-schema.yaml"

with DEFAULTS_FILE.open(encoding="utf-8") as _f:
    _DEFAULTS: dict[str, Any] = yaml.safe_load(_f)

dask.config.update_defaults(_DEFAULTS)

#: Default worker count of the design's Global Configuration (None: CPU count).
DEFAULT_PARALLEL_WORKERS: int | None = _DEFAULTS[NAMESPACE]["workers"]
#: Default parallel mode: ``"auto"`` times the work and picks thread or process.
DEFAULT_PARALLEL_MODE: str = _DEFAULTS[NAMESPACE]["parallel-mode"]
#: Default number of records per chunk.
DEFAULT_CHUNK_SIZE: int = _DEFAULTS[NAMESPACE]["chunk-size"]

PARALLEL_MODES = ("auto", "thread", "process")


def get(key: str, default: Any = None) -> Any:
    """Read ``iterable-dask.<key>`` from dask.config at call time.

    Parameters
    ----------
    key : str
        Key inside the namespace, hyphenated (``"chunk-size"``).
    default : Any
        Returned when the key is unset.

    Examples
    --------
    >>> import dask
    >>> from iterable_dask import config
    >>> with dask.config.set({"iterable-dask.chunk-size": 50}):
    ...     config.get("chunk-size")
    50
    """
    return dask.config.get(f"{NAMESPACE}.{key}", default=default)


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def resolve_workers(workers: int | None = None) -> int:
    """Worker count: the argument, else ``iterable-dask.workers``, else the CPU count."""
    if workers is None:
        workers = get("workers")
    if workers is None:
        return os.cpu_count() or 1
    return _positive_int(workers, "workers")


def resolve_chunk_size(chunk_size: int | None = None) -> int:
    """Records per chunk: the argument, else ``iterable-dask.chunk-size``."""
    return _positive_int(get("chunk-size") if chunk_size is None else chunk_size, "chunk_size")


def resolve_retries(retries: int | None = None) -> int:
    """Task retries: the argument, else ``iterable-dask.retries``."""
    return _positive_int(get("retries") if retries is None else retries, "retries", minimum=0)


def resolve_parallel_mode(mode: str | None = None) -> str:
    """Parallel mode: the argument, else ``iterable-dask.parallel-mode``."""
    mode = get("parallel-mode") if mode is None else mode
    if mode not in PARALLEL_MODES:
        raise ValueError(f"parallel_mode must be one of {', '.join(PARALLEL_MODES)}; got {mode!r}")
    return str(mode)


def resolve_blocksize(blocksize: int | str | object | None) -> int | None:
    """Partition size in bytes: ``None`` means one partition per file.

    The sentinel ``"default"`` reads ``iterable-dask.blocksize``.
    """
    if blocksize == "default":
        blocksize = get("blocksize")
    if blocksize is None:
        return None
    if isinstance(blocksize, str):
        blocksize = parse_bytes(blocksize)
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize <= 0:
        raise ValueError(
            f"blocksize must be a positive number of bytes, a size such as '64MiB', or None; got {blocksize!r}"
        )
    return blocksize


def file_grouping(blocksize: int | None = None) -> tuple[int, int]:
    """``(target bytes per task, open cost per file)`` for grouping small files into tasks.

    The one place of the "default target" rule: ``files.target-bytes:
    default`` means the call's ``blocksize`` (a resolved number of bytes)
    when it has one, else the ``blocksize`` setting.
    """
    target = get("files.target-bytes")
    if target == "default":
        size = blocksize if blocksize is not None else resolve_blocksize("default")
    else:
        size = resolve_blocksize(target)
    cost = get("files.open-cost")
    open_cost = parse_bytes(cost) if isinstance(cost, str) else cost
    if isinstance(open_cost, bool) or not isinstance(open_cost, int) or open_cost < 0:
        raise ValueError(f"iterable-dask.files.open-cost must be a number of bytes >= 0; got {cost!r}")
    return (size or 32 * 2**20), open_cost


def connect_timeout() -> float:
    """Seconds to wait for a scheduler (``iterable-dask.connect-timeout``)."""
    return float(parse_timedelta(get("connect-timeout"), default="s"))


def start_timeout() -> float:
    """Seconds a LocalCluster of this package gets to start (``iterable-dask.embedded-cluster.start-timeout``)."""
    value = get("embedded-cluster.start-timeout")
    seconds = parse_timedelta(value, default="s") if value is not None else None
    if seconds is None or seconds <= 0:
        raise ValueError(
            f"iterable-dask.embedded-cluster.start-timeout must be a positive duration such as '60s'; got {value!r}"
        )
    return float(seconds)
