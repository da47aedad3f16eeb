"""Dask DataFrames from any iterabledata format, each partition read on a worker.

:func:`read_dataframe` plans partitions exactly as :func:`~iterable_dask.read_bag`
does (byte ranges of big CSV/TSV/JSON Lines files, Parquet row groups, small
files grouped, one partition per file for formats that cannot split) and
builds the frame with :func:`dask.dataframe.from_map`: a worker reads its
partition into a pandas DataFrame. Values are iterabledata's (CSV fields stay
strings); simple Parquet row groups go straight through pyarrow.
:func:`to_dask` is a drop-in for ``iterable.helpers.bridges.to_dask``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import islice
from typing import Any

from iterable.helpers.detect import open_iterable

from ..core.exceptions import UnsplittableFileError
from ..core.names import READ_FRAME
from .fs import local_input, open_input, pop_storage_options
from .partitions import CSVRange, FileGroup, JSONLinesRange, PackedRecords, ParquetRowGroups, WholeFile
from .read import plan_partitions

__all__ = ["PartitionFrame", "read_dataframe", "to_dask"]

#: Records read in the caller to compute ``meta`` when it is not given.
SAMPLE_RECORDS = 200
_SAMPLE_BYTES = 1 << 16
_SAMPLE_PARTS = 8


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("Dask DataFrames need pandas: pip install 'iterable-dask[dataframe]'") from None
    return pd


def _where(reader: Any) -> str:
    if isinstance(reader, FileGroup):
        return ", ".join(repr(p) for p in reader.paths)
    path = getattr(reader, "path", None)
    return repr(path) if path else "records read in the caller"


def _simple_parquet(schema: Any) -> bool:
    import pyarrow as pa

    return all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t) or pa.types.is_boolean(t)
               for t in schema.types)  # fmt: skip


@dataclass(frozen=True)
class PartitionFrame:
    """Worker task: one planned partition as a pandas DataFrame with ``columns``, in that order.

    A column the partition lacks is all nulls; a column it has beyond them is
    an error naming the file (``meta`` came from a sample: pass ``meta=`` or
    ``columns=`` for data whose columns vary), unless ``select`` says to keep
    only the given columns.
    """

    columns: tuple[str, ...]
    select: bool = False
    dtype_backend: str | None = None
    #: The meta's numeric dtypes by column: a column of nulls only in this partition takes its column's
    #: dtype (NaN, as pandas makes of the whole file's records), not object None.
    null_dtypes: tuple[tuple[str, str], ...] = ()

    def __call__(self, reader: Any) -> Any:
        pd = _pandas()
        frame = self._read(reader, pd)
        extra = list(frame.columns.difference(pd.Index(self.columns, dtype=object)))  # None/NaN labels included
        if extra and not self.select:
            raise ValueError(
                f"{_where(reader)} has columns {extra} that the DataFrame's meta does not "
                f"({list(self.columns)}, from a sample of the first partition): pass meta= or columns="
            )
        frame = frame.reindex(columns=list(self.columns))
        for column, dtype in self.null_dtypes:
            if frame[column].dtype == object and frame[column].isna().all():
                frame[column] = frame[column].astype(dtype)
        if self.dtype_backend:
            frame = frame.convert_dtypes(dtype_backend=self.dtype_backend)
        return frame

    def _read(self, reader: Any, pd: Any) -> Any:
        if type(reader) is ParquetRowGroups:
            import pyarrow.parquet as pq

            with open_input(reader.path, reader.storage_options) as raw, pq.ParquetFile(raw) as f:
                if _simple_parquet(f.schema_arrow):  # pyarrow's values are iterabledata's here
                    return f.read_row_groups(list(reader.row_groups)).to_pandas()
        records = reader()
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _range_sample(reader: CSVRange | JSONLinesRange) -> list[Any]:
    """The first records of a byte range, from a prefix of it grown until it holds one.

    A prefix holds the records that start in it, read to their ends; one that
    holds none (a record longer than it) or cuts a multi-line CSV record is
    doubled, up to the whole range.
    """
    size = _SAMPLE_BYTES
    while reader.end - reader.start > size:
        prefix = type(reader)(**{**reader.__dict__, "end": reader.start + size})
        try:
            records = prefix()
        except UnsplittableFileError:
            records = []
        if records:
            return records[:SAMPLE_RECORDS]
        size *= 2
    return reader()[:SAMPLE_RECORDS]


def _sample(reader: Any) -> list[Any]:
    """The first records of a partition, read here in the caller (a little of it)."""
    if isinstance(reader, FileGroup):
        reader = reader.readers[0]
    if isinstance(reader, (CSVRange, JSONLinesRange)):
        return _range_sample(reader)
    if isinstance(reader, WholeFile):
        with local_input(reader.path, reader.storage_options) as local:
            it = open_iterable(local, iterableargs=dict(reader.iterableargs))
            try:
                return list(islice(it, SAMPLE_RECORDS))
            finally:
                it.close()
    if isinstance(reader, (ParquetRowGroups, PackedRecords)):
        return reader()[:SAMPLE_RECORDS]
    return list(islice(reader(), SAMPLE_RECORDS))


def read_dataframe(
    sources: Any,
    blocksize: int | str | None = "default",
    columns: list[str] | None = None,
    meta: Any = None,
    dtype_backend: str | None = None,
    storage_options: dict[str, Any] | None = None,
    **iterableargs: Any,
) -> Any:
    """Read files of any iterabledata format as a :class:`dask.dataframe.DataFrame`, on the workers.

    Parameters
    ----------
    sources : str, PathLike, or list of these
        Paths, globs, folders, fsspec URLs (as :func:`~iterable_dask.read_bag`).
    blocksize : int, str or None, default ``iterable-dask.blocksize``
        Bytes per partition of big plain CSV/TSV/JSON Lines files and Parquet
        row groups; small files share partitions; ``None``: one per file.
    columns : list of str, optional
        Keep these columns, in this order (a partition without one has nulls).
    meta : pandas.DataFrame, optional
        The frame's empty prototype; computed from the first
        ``SAMPLE_RECORDS`` records in the caller when not given.
    dtype_backend : {None, "numpy_nullable", "pyarrow"}
        As pandas' ``convert_dtypes``; None keeps what pandas makes of the records.
    storage_options : dict, optional
        fsspec options for URLs.
    **iterableargs
        Passed to iterabledata's reader of each file.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy: nothing but the sample is read until it is computed.

    Raises
    ------
    ValueError
        At compute time, a partition with columns ``meta`` lacks (it names the file).

    Examples
    --------
    >>> import iterable_dask
    >>> df = iterable_dask.read_dataframe("logs/*.jsonl.gz")
    >>> int(df.groupby("city").size().sum().compute())
    150
    """
    import dask
    import dask.dataframe as dd

    pd = _pandas()
    storage_options = pop_storage_options(storage_options, iterableargs)
    parts = plan_partitions(sources, blocksize, None, storage_options, **iterableargs)
    sample = None
    if meta is None:  # the first partition with records (an empty first file says nothing of the columns)
        records = next((r for r in map(_sample, parts[:_SAMPLE_PARTS]) if r), [])
        sample = pd.DataFrame.from_records(records) if records else pd.DataFrame()
        sample = sample.reindex(columns=list(columns)) if columns is not None else sample
        if dtype_backend:
            sample = sample.convert_dtypes(dtype_backend=dtype_backend)
        meta = sample.iloc[:0]
    names = tuple(meta.columns) if columns is None else tuple(columns)
    numeric = tuple((c, str(meta[c].dtype)) for c in names if c in meta.columns and meta[c].dtype.kind in "fc")
    task = PartitionFrame(names, select=columns is not None, dtype_backend=dtype_backend, null_dtypes=numeric)
    # Dask turns object columns into Arrow strings: right for text, but nested values (lists, dicts)
    # would become their repr. Such columns keep their Python objects.
    nested = sample is not None and any(
        sample[c].map(lambda v: v is not None and not isinstance(v, str) and v == v).any()
        for c in sample.columns
        if sample[c].dtype == object
    )
    with dask.config.set({"dataframe.convert-string": False} if nested else {}):
        return dd.from_map(task, parts, meta=meta, label=READ_FRAME, enforce_metadata=False)


def to_dask(files: str | list[str], chunksize: int = 1000000, **iterableargs: Any) -> Any:
    """A drop-in for ``iterable.helpers.bridges.to_dask``: the same data, read lazily on the workers.

    iterabledata's bridge reads every file into the caller's memory first;
    here each partition is read by a worker (``chunksize`` has no effect: the
    partitions follow the files' bytes). The keyword arguments are
    ``open_iterable``'s, as there: ``iterableargs=``, ``options=``, ``format=``.
    Columns are the union over the files, as ``pandas.concat`` makes them.

    Examples
    --------
    >>> import iterable_dask
    >>> df = iterable_dask.to_dask(["a.csv", "b.jsonl"])
    >>> len(df), list(df.columns)
    (20, ['id', 'city', 'amount', 'count', 'note'])
    """
    if isinstance(files, (str, os.PathLike)):
        file_list = [os.fspath(files)]
    elif isinstance(files, (list, tuple)):
        file_list = list(files)
    else:
        raise ValueError(f"files must be a string or list of strings, got {type(files).__name__}")
    if not file_list:
        raise ValueError("files list cannot be empty")
    args = dict(iterableargs.pop("iterableargs", None) or {})
    args.update(iterableargs.pop("options", None) or {})
    if "format" in iterableargs:
        args["format"] = iterableargs.pop("format")
    if iterableargs:
        raise TypeError(f"to_dask() arguments not supported on the workers: {sorted(iterableargs)}")
    pd = _pandas()
    parts = plan_partitions(file_list, "default", None, **args)
    samples = [pd.DataFrame.from_records(_sample(p)) for p in parts]
    union = pd.concat([s.iloc[:0] for s in samples if len(s.columns)] or [pd.DataFrame()])
    return read_dataframe(file_list, meta=union.iloc[:0], **args)
