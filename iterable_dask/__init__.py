"""iterable_dask: iterabledata's streams of records, processed in parallel on Dask.

Read files as dask.bag partitions on the workers (:func:`read_bag`), write
them back atomically (:func:`write_bag`), on an embedded local cluster, a
notebook's active Client, or a remote scheduler (:func:`get_client`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .cluster import close_embedded_clusters, compute, get_client, local_cluster
from .config import DEFAULT_CHUNK_SIZE, DEFAULT_PARALLEL_MODE, DEFAULT_PARALLEL_WORKERS
from .convert import ParallelBulkConversionResult, ParallelConversionResult, bulk_convert, convert
from .exceptions import (
    ClusterConnectionError,
    EmptySourceError,
    FileConversionError,
    FileWriteError,
    IterableDaskError,
    PartitionReadError,
    SourceReadError,
    UnpicklableFunctionError,
    UnsplittableFileError,
)
from .parallel_read import ParallelReader, parallel_read
from .parallel_write import WrittenFile, parallel_write
from .pipeline import ParallelPipelineResult, Pipeline, RecordError, pipeline
from .read import plan_partitions, read_bag, records_to_bag
from .sources import expand_sources
from .write import write_bag

try:
    __version__ = version("iterable-dask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PARALLEL_MODE",
    "DEFAULT_PARALLEL_WORKERS",
    "ClusterConnectionError",
    "EmptySourceError",
    "FileConversionError",
    "ParallelBulkConversionResult",
    "ParallelConversionResult",
    "FileWriteError",
    "IterableDaskError",
    "ParallelReader",
    "PartitionReadError",
    "SourceReadError",
    "UnpicklableFunctionError",
    "UnsplittableFileError",
    "WrittenFile",
    "ParallelPipelineResult",
    "Pipeline",
    "RecordError",
    "__version__",
    "bulk_convert",
    "close_embedded_clusters",
    "compute",
    "convert",
    "expand_sources",
    "get_client",
    "local_cluster",
    "pipeline",
    "parallel_read",
    "parallel_write",
    "plan_partitions",
    "read_bag",
    "records_to_bag",
    "write_bag",
]
