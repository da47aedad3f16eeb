"""streams: records of many sources read, and records written to many files, in parallel with bounded memory.

Holds :func:`parallel_read` and its :class:`ParallelReader` (:mod:`.read`),
the buffers and stop event its readers share with the consumer
(:mod:`.state`), the engines that fill them, reader threads and the
process-mode feeder (:mod:`.feeder`), the worker task that reads a partition
as packed chunks (:mod:`.packed`), :func:`parallel_write` (:mod:`.write`) and
its worker tasks (:mod:`.file_writers`), and the one check of thread or
process mode (:mod:`.mode`). They stand on io's sources, partition readers,
planner and bag writer, and on core's in-flight window and grouping of
files into tasks.

May import: core, io.
"""

from __future__ import annotations

from .file_writers import WrittenFile
from .read import ParallelReader, parallel_read
from .write import parallel_write

__all__ = ["ParallelReader", "WrittenFile", "parallel_read", "parallel_write"]
