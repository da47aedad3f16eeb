"""io: records in and out of files, as bag partitions.

Holds source expansion (:mod:`.sources`), the picklable partition readers
the workers run (:mod:`.partitions`), iterabledata's records read with less
work per record (:mod:`.fast_records`), partition planning with
:func:`read_bag` (:mod:`.read`), :func:`write_bag` (:mod:`.write`), atomic
outputs (:mod:`.atomic`); local paths and fsspec URLs (:mod:`.fs`), a
file's head grown until it holds whole lines (:mod:`.head`); Dask DataFrames
(:mod:`.frame`). The parallel streams (:func:`parallel_read`,
:func:`parallel_write`) stand on these in :mod:`iterable_dask.streams`.

May import: core, columnar.
"""

from __future__ import annotations

from .frame import read_dataframe, to_dask
from .read import plan_partitions, read_bag, records_to_bag
from .sources import expand_sources
from .write import write_bag

__all__ = [
    "expand_sources",
    "plan_partitions",
    "read_bag",
    "read_dataframe",
    "records_to_bag",
    "to_dask",
    "write_bag",
]
