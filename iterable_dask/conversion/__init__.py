"""conversion: ``convert`` and ``bulk_convert`` with the work on Dask workers.

Holds the public functions and their results (:mod:`.api`), the caller's
side of a run: planning, submitting, progress (:mod:`.run`), the per-file
worker task (:mod:`.tasks`), the split-file part tasks and their join
(:mod:`.parts`), and the up-front checks of targets and options
(:mod:`.checks`). (Named ``conversion`` so that ``iterable_dask.convert``
stays the function.)

May import: core, io.
"""

from __future__ import annotations

from .api import ParallelBulkConversionResult, ParallelConversionResult, bulk_convert, convert

__all__ = ["ParallelBulkConversionResult", "ParallelConversionResult", "bulk_convert", "convert"]
