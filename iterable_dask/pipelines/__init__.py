"""pipelines: iterabledata's ``pipeline()`` with ``process_func`` on Dask workers.

Holds the public function (:mod:`.api`), the :class:`Pipeline` runner and
its sequential and sampling loop (:mod:`.runner`), the cluster half
(:mod:`.cluster_run`), the worker task (:mod:`.tasks`), state merging
(:mod:`.state`), auto mode's decision (:mod:`.auto`), the result
(:mod:`.result`) and many files as one source (:mod:`.sources`). (Named in the plural so that ``iterable_dask.pipeline``
stays the function.)

May import: core, io.
"""

from __future__ import annotations

from .api import pipeline
from .result import ParallelPipelineResult, RecordError
from .runner import Pipeline

__all__ = ["ParallelPipelineResult", "Pipeline", "RecordError", "pipeline"]
