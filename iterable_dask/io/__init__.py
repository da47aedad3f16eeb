"""io: records in and out of files, as bag partitions or parallel streams.

Holds source expansion (:mod:`.sources`), the picklable partition readers
the workers run (:mod:`.readers`), iterabledata's records read with less
work per record (:mod:`.records`), partition planning with
:func:`read_bag` (:mod:`.read`), :func:`write_bag` (:mod:`.write`), the
pyarrow columnar fast path (:mod:`.columnar`), atomic outputs
(:mod:`.atomic`), and :func:`parallel_read` / :func:`parallel_write` with
their engines and worker tasks (:mod:`.read_feeder`, :mod:`.read_packed`,
:mod:`.file_writers`); local paths and fsspec URLs (:mod:`.fs`); Dask DataFrames
(:mod:`.frame`).

May import: core.
"""

from __future__ import annotations

from .frame import read_dataframe, to_dask
from .parallel_read import ParallelReader, parallel_read
from .parallel_write import WrittenFile, parallel_write
from .read import plan_partitions, read_bag, records_to_bag
from .sources import expand_sources
from .write import write_bag

__all__ = [
    "ParallelReader",
    "WrittenFile",
    "expand_sources",
    "parallel_read",
    "parallel_write",
    "plan_partitions",
    "read_bag",
    "read_dataframe",
    "records_to_bag",
    "to_dask",
    "write_bag",
]
