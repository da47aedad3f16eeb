"""conversion: ``convert`` and ``bulk_convert`` with the work on Dask workers.

Holds the public functions (:mod:`.api`) and their results (:mod:`.results`),
the caller's side of a run: planning, submitting, progress (:mod:`.run`),
where sources and targets are, local or URLs (:mod:`.locations`), the
per-file worker task (:mod:`.tasks`), the split-file part tasks and their
join (:mod:`.parts`), and the up-front checks of targets and options
(:mod:`.checks`). (Named ``conversion`` so that ``iterable_dask.convert``
stays the function.)

May import: core, io.
"""

from __future__ import annotations

from .api import ParallelBulkConversionResult, ParallelConversionResult, bulk_convert, convert

__all__ = ["ParallelBulkConversionResult", "ParallelConversionResult", "bulk_convert", "convert"]
