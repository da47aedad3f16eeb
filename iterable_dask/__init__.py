"""iterable_dask: iterabledata's streams of records, processed in parallel on Dask.

Read files as dask.bag partitions on the workers (:func:`read_bag`), write
them back atomically (:func:`write_bag`), on an embedded local cluster, a
notebook's active Client, or a remote scheduler (:func:`get_client`).

Layout (each room's ``__init__`` says what it holds and may import)::

    core/         cluster, config, chunk serialization, in-flight window, task grouping, errors
    columnar/     the pyarrow engine: CSV/TSV/JSON Lines to Parquet and back
    io/           sources, heads, partition readers, read_bag/write_bag, atomic outputs
    streams/      parallel_read/parallel_write: their engines, buffers and worker tasks
    pipelines/    pipeline() and its runner, tasks, state merging, auto mode
    conversion/   convert() and bulk_convert(), their tasks and checks
    cli/          the iterable-dask command; sample.py the demo data
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .conversion import ParallelBulkConversionResult, ParallelConversionResult, bulk_convert, convert
from .core import config as config  # `from iterable_dask import config` (the settings module) keeps working
from .core.cluster import close_embedded_clusters, compute, get_client, local_cluster
from .core.config import DEFAULT_CHUNK_SIZE, DEFAULT_PARALLEL_MODE, DEFAULT_PARALLEL_WORKERS
from .core.exceptions import (
    ClusterConnectionError,
    EmptySourceError,
    FileConversionError,
    FileWriteError,
    IterableDaskError,
    PartitionReadError,
    SchedulerLostError,
    SourceReadError,
    SpawnedScriptError,
    UnpicklableFunctionError,
    UnsplittableFileError,
)
from .io import expand_sources, plan_partitions, read_bag, read_dataframe, records_to_bag, to_dask, write_bag
from .pipelines import ParallelPipelineResult, Pipeline, RecordError, pipeline
from .streams import ParallelReader, WrittenFile, parallel_read, parallel_write

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
    "SchedulerLostError",
    "SourceReadError",
    "SpawnedScriptError",
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
    "read_dataframe",
    "records_to_bag",
    "to_dask",
    "write_bag",
]
