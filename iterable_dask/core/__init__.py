"""core: what every other room stands on.

Holds cluster resolution (:mod:`.cluster`) and the LocalCluster start's deadline
and spawned-import check (:mod:`.startup`), the ``iterable-dask`` config
namespace with its YAML defaults and schema (:mod:`.config`), chunk
serialization (:mod:`.chunks`), the bounded task window (:mod:`.window`),
progress reporting (:mod:`.progress`), the task names (:mod:`.names`), what a
call does when its scheduler is lost (:mod:`.lost`), balanced runs of files
for tasks (:mod:`.runs`) and the exceptions (:mod:`.exceptions`).

May import: nothing else in iterable_dask.
"""

from __future__ import annotations

from . import config
from .cluster import close_embedded_clusters, compute, get_client, local_cluster
from .exceptions import (
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

__all__ = [
    "ClusterConnectionError",
    "EmptySourceError",
    "FileConversionError",
    "FileWriteError",
    "IterableDaskError",
    "PartitionReadError",
    "SchedulerLostError",
    "SourceReadError",
    "SpawnedScriptError",
    "UnpicklableFunctionError",
    "UnsplittableFileError",
    "close_embedded_clusters",
    "compute",
    "config",
    "get_client",
    "local_cluster",
]
