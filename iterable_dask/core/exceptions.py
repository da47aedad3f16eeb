"""Exceptions of iterable_dask; all subclass iterabledata's ``IterableDataError``."""

from __future__ import annotations

from iterable.exceptions import IterableDataError

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
]


class IterableDaskError(IterableDataError):
    """Base class of every error raised by iterable_dask."""

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message, error_code=error_code)

    def __reduce__(self):  # keep the message across pickling (worker -> caller)
        return (type(self), (self.message,))


class ClusterConnectionError(IterableDaskError, OSError):
    """The Dask scheduler at an address could not be reached in time, or a LocalCluster did not start in time."""

    def __init__(self, message: str) -> None:
        IterableDaskError.__init__(self, message, error_code="CLUSTER_UNREACHABLE")


class SchedulerLostError(ClusterConnectionError):
    """The connection to the Dask scheduler was lost while a call was running; ``address`` names it.

    Raised within ``iterable-dask.connect-timeout`` of the loss. Outputs a
    worker completed stay (each whole); the call's temporaries are removed.
    """

    def __init__(self, message: str, address: str | None = None) -> None:
        IterableDaskError.__init__(self, message, error_code="SCHEDULER_LOST")
        self.address = address

    def __reduce__(self):
        return (type(self), (self.message, self.address))


class SpawnedScriptError(ClusterConnectionError):
    """A cluster was to start while a spawned process imported the main script again; ``script`` names it.

    Worker processes started with ``spawn`` (or ``forkserver``) first import the
    main script again, as ``__mp_main__``: a script that starts its work at
    module level, not under ``if __name__ == "__main__":``, would start a
    cluster in every worker process. Raised there and, at once, in the process
    whose cluster could not start.
    """

    def __init__(self, message: str, script: str | None = None) -> None:
        IterableDaskError.__init__(self, message, error_code="SPAWNED_SCRIPT")
        self.script = script

    def __reduce__(self):
        return (type(self), (self.message, self.script))


class UnpicklableFunctionError(IterableDaskError, TypeError):
    """A function that must be shipped to worker processes cannot be pickled."""

    def __init__(self, message: str) -> None:
        IterableDaskError.__init__(self, message, error_code="UNPICKLABLE_FUNCTION")


class PartitionReadError(IterableDaskError):
    """Reading one partition (a file or a byte range of it) failed.

    Carries the file, the byte offset of the failing line where known, and
    the underlying error as ``__cause__``.
    """

    def __init__(self, message: str, filename: str | None = None, offset: int | None = None) -> None:
        IterableDaskError.__init__(self, message, error_code="PARTITION_READ_FAILED")
        self.filename = filename
        self.offset = offset

    def __reduce__(self):
        return (type(self), (self.message, self.filename, self.offset))


class UnsplittableFileError(PartitionReadError):
    """A file cannot be split into byte ranges without risking a lost record.

    Raised for a CSV record that spans several lines (a quoted newline);
    pass ``blocksize=None`` to read such files one partition per file.
    """


class SourceReadError(IterableDaskError):
    """Reading one source of :func:`iterable_dask.parallel_read` failed.

    ``source`` names the source; the original error is ``__cause__`` (its type
    and message are in the message too, as a worker's cause may not survive
    pickling).
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        IterableDaskError.__init__(self, message, error_code="SOURCE_READ_FAILED")
        self.source = source

    def __reduce__(self):
        return (type(self), (self.message, self.source))


class FileWriteError(IterableDaskError):
    """Writing one output file of :func:`iterable_dask.parallel_write` failed; ``path`` names it."""

    def __init__(self, message: str, path: str | None = None) -> None:
        IterableDaskError.__init__(self, message, error_code="FILE_WRITE_FAILED")
        self.path = path

    def __reduce__(self):
        return (type(self), (self.message, self.path))


class FileConversionError(IterableDaskError):
    """Converting one file in parallel failed; ``source`` and ``target`` name it.

    ``error_type`` is the name of the original exception's class: the original
    is ``__cause__`` where it survives pickling from the worker, and its type
    and message are in the message either way.
    """

    def __init__(
        self, message: str, source: str | None = None, target: str | None = None, error_type: str | None = None
    ) -> None:
        IterableDaskError.__init__(self, message, error_code="FILE_CONVERSION_FAILED")
        self.source = source
        self.target = target
        self.error_type = error_type

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.target, self.error_type))


class EmptySourceError(FileConversionError):
    """A source file holds no records (an empty file, or a CSV header alone); nothing was written."""
