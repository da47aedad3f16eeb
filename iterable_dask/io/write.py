"""Writing a :class:`dask.bag.Bag` of records as files, one per partition, on the workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.bag as db
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from distributed.security import Security
from iterable.helpers.detect import is_flat, open_iterable

from ..core import config
from ..core.cluster import get_client
from ..core.lost import cancel_quietly, raise_if_lost
from ..core.names import WRITE, task_key
from ..core.retry import Retrying
from ..core.window import wait_until_stopped
from .atomic import atomic_target, ensure_output_folder, new_job_token, sweep_temporaries
from .fs import absolute, join, pop_storage_options

__all__ = ["PartitionWriter", "flat_keys", "write_bag", "write_partitions", "write_records"]


def flat_keys(records: Iterable[dict[str, Any]]) -> list[str]:
    """Union of the records' keys, in order of first appearance."""
    seen: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            for key in record:
                if key not in seen:
                    seen[key] = None
    return list(seen)


def write_records(
    records: Iterable[Any], path: str, toiterableargs: dict[str, Any], batch_size: int, target: str | None = None
) -> int:
    """Write records to ``path`` through iterabledata (not atomic); return the count.

    Flat targets (CSV, Parquet ...) get the union of the records' keys as
    columns, in order of first appearance, unless ``keys`` is given. ``target``
    is the final name when ``path`` is a temporary one: the format is judged on it.
    """
    args = dict(toiterableargs)
    if is_flat(os.path.basename(target or path)):
        records = list(records)
        args.setdefault("keys", flat_keys(records))
    out = open_iterable(path, mode="w", iterableargs=args)
    count = 0
    try:
        batch: list[Any] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                out.write_bulk(batch)
                count += len(batch)
                batch = []
        if batch:
            out.write_bulk(batch)
            count += len(batch)
    finally:
        out.close()
    return count


@dataclass(frozen=True)
class PartitionWriter:
    """Write one partition's records to ``path`` atomically; return ``[(path, rows)]``.

    An empty partition writes nothing and returns ``[]``.
    """

    path: str
    job: str
    toiterableargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 10000
    storage_options: dict[str, Any] | None = None

    def __call__(self, records: Iterable[Any]) -> list[tuple[str, int]]:
        iterator = iter(records)
        try:
            first = next(iterator)
        except StopIteration:
            return []

        def all_records() -> Iterable[Any]:
            yield first
            yield from iterator

        with atomic_target(self.path, self.job, self.storage_options) as tmp:
            count = write_records(all_records(), tmp, self.toiterableargs, self.batch_size, target=self.path)
        return [(self.path, count)]

    def __hash__(self) -> int:
        return hash((self.path, self.job))


def _as_bag(data: Any) -> db.Bag:
    """A bag of records: the bag itself, or a Dask DataFrame's rows as dicts (one partition per partition)."""
    if isinstance(data, db.Bag):
        return data
    to_bag = getattr(data, "to_bag", None)
    if callable(to_bag) and hasattr(data, "columns") and hasattr(data, "npartitions"):
        return to_bag(index=False, format="dict")
    raise TypeError(f"bag must be a dask.bag.Bag or a dask.dataframe.DataFrame; got {type(data).__name__}")


def _default_name(i: int) -> str:
    return f"{i:05d}"


def _targets(
    dest: str, to_ext: str | None, n: int, name_function: Callable[[int], str], storage_options: dict[str, Any]
) -> list[str]:
    if "*" in dest:
        if dest.count("*") != 1:
            raise ValueError(f"dest may hold one '*' (replaced by the partition name); got {dest!r}")
        if to_ext is not None:
            raise ValueError("give either to_ext or an extension in the dest pattern, not both")
        folder = os.path.dirname(dest)
        names = [dest.replace("*", name_function(i)) for i in range(n)]
    else:
        if not to_ext:
            raise ValueError("to_ext is required when dest is a directory (e.g. to_ext='jsonl')")
        folder = dest
        ext = to_ext.lstrip(".")
        names = [join(dest, f"part-{name_function(i)}.{ext}") for i in range(n)]
    if len(set(names)) != n:
        raise ValueError("name_function must give a distinct name for every partition")
    if folder:
        ensure_output_folder(folder, storage_options)
    _check_format(names[0])
    return names


def _check_format(path: str) -> None:
    from iterable.helpers.detect import detect_file_type

    if not detect_file_type(path).get("success"):
        raise ValueError(f"Unknown output format for {path!r}: iterabledata has no writer for its extension")


def write_bag(
    bag: db.Bag,
    dest: str,
    to_ext: str | None = None,
    *,
    name_function: Callable[[int], str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    retries: int | None = None,
    batch_size: int = 10000,
    storage_options: dict[str, Any] | None = None,
    **toiterableargs: Any,
) -> list[str]:
    """Write each partition of a bag to its own file, on the workers, atomically.

    Each file is written under a hidden temporary name and renamed when
    complete, so a failed, killed or retried task never leaves a partial
    output; temporaries a killed worker left behind are removed when the job
    ends. Empty partitions write no file.

    Parameters
    ----------
    bag : dask.bag.Bag or dask.dataframe.DataFrame
        Records to write; a DataFrame's rows are written as records (one file
        per partition), so results go back to any iterabledata format.
    dest : str
        A directory (files ``part-00000.<to_ext>`` ...) or a pattern with one
        ``*``, replaced by the partition name (``"out/data-*.parquet"``); a
        local path or an fsspec URL (``"s3://bucket/out/"``).
    to_ext : str, optional
        Output extension when ``dest`` is a directory: any format (and codec)
        iterabledata writes, such as ``"jsonl"``, ``"csv"``, ``"parquet"``,
        ``"jsonl.gz"``.
    name_function : callable, optional
        Partition index to name (default: zero-padded index).
    client, scheduler : optional
        Where to run; see :func:`iterable_dask.get_client`.
    security : distributed.security.Security, optional
        TLS certificates for connecting to ``scheduler`` (a ``"tls://..."`` address).
    retries : int, optional
        Retries of a partition write failing transiently (an I/O error such as
        ENOSPC), in place (default ``iterable-dask.retries``); other errors fail
        at once. A worker lost mid-write is recovered by Dask.
    batch_size : int
        Records per ``write_bulk`` call.
    storage_options : dict, optional
        fsspec options for a URL ``dest`` (``toiterableargs["storage_options"]`` is honoured too).
        Each object is written locally on its worker and uploaded whole.
    **toiterableargs
        Passed to ``open_iterable(..., mode="w", iterableargs=...)``.

    Returns
    -------
    list of str
        The files written, in partition order.

    Raises
    ------
    SchedulerLostError
        The scheduler went away mid-run: files already renamed stay (each
        whole), no temporary does.

    Examples
    --------
    >>> import iterable_dask
    >>> bag = iterable_dask.read_bag("data/*.csv")
    >>> iterable_dask.write_bag(bag, "out/", to_ext="parquet")  # doctest: +ELLIPSIS
    ['out/part-00000.parquet', 'out/part-00001.parquet', ...]
    """
    bag = _as_bag(bag)
    written = write_bag_counts(
        bag,
        dest,
        to_ext,
        name_function=name_function,
        client=client,
        scheduler=scheduler,
        security=security,
        retries=retries,
        batch_size=batch_size,
        storage_options=storage_options,
        **toiterableargs,
    )
    return [path for path, _ in written]


def write_bag_counts(
    bag: db.Bag,
    dest: str,
    to_ext: str | None = None,
    *,
    name_function: Callable[[int], str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    retries: int | None = None,
    batch_size: int = 10000,
    storage_options: dict[str, Any] | None = None,
    **toiterableargs: Any,
) -> list[tuple[str, int]]:
    """:func:`write_bag`, returning ``(path, rows)`` pairs."""
    storage_options = pop_storage_options(storage_options, toiterableargs)
    targets = _targets(dest, to_ext, bag.npartitions, name_function or _default_name, storage_options)
    job = new_job_token()
    # Absolute paths in the tasks: workers started in another directory write where the caller means.
    writers = [
        PartitionWriter(absolute(t), job, dict(toiterableargs), batch_size, storage_options or None) for t in targets
    ]
    name = task_key(WRITE, tokenize(bag.name, targets, job))
    folders = {os.path.dirname(w.path) for w in writers}
    written = write_partitions(
        bag, writers, name, job, lambda: folders, client=client, scheduler=scheduler, security=security, retries=retries
    )
    given = {w.path: t for w, t in zip(writers, targets, strict=True)}
    return [(given[path], rows) for path, rows in written]


def write_partitions(
    bag: db.Bag,
    writers: Sequence[Callable[[Iterable[Any]], list[tuple[str, int]]]],
    name: str,
    job: str,
    folders: Callable[[], Iterable[str]],
    *,
    client: Any = None,
    scheduler: str | None = None,
    security: Security | None = None,
    retries: int | None = None,
) -> list[tuple[str, int]]:
    """Run ``writers[i]`` on partition ``i`` of ``bag`` on the cluster; the ``(path, rows)`` pairs returned, in order.

    The one place of a bag write's graph, compute, cancel and sweep (:func:`write_bag`,
    ``parallel_write(bag)``): the tasks are keyed ``(name, i)`` and retry
    transient failures in place; should the run fail, the tasks are cancelled
    and those already running waited for, and in any case the temporaries of
    ``job`` left in ``folders()`` (called at the end, when the folders written
    into are known) are swept.
    """
    retries = config.resolve_retries(retries)  # transient failures only, in place (core.retry)
    tasks = [Retrying(writer, retries) for writer in writers]
    dsk = {(name, i): (task, key) for i, (task, key) in enumerate(zip(tasks, bag.__dask_keys__(), strict=True))}
    out = db.Bag(HighLevelGraph.from_collections(name, dsk, dependencies=[bag]), name, len(dsk))
    dask_client = get_client(client, scheduler, security=security)
    future = None
    try:
        with raise_if_lost(dask_client):
            future = dask_client.compute(out)
            return list(future.result())  # the bag concatenates the partitions' lists
    except BaseException:
        cancel_quietly(dask_client, [future])
        wait_until_stopped(dask_client, name)  # writes already running end before the sweep (no scheduler: no wait)
        raise
    finally:
        sweep_temporaries(folders(), job)
