"""One benchmark suite: iterable_dask against the tools a user would pick instead, side by side.

Run from the repository's root::

    python -m benchmarks.suite --quick            # tiny data, a smoke run (about a minute)
    python -m benchmarks.suite --full             # the report's sizes (make bench)
    python -m benchmarks.suite --full --only csv-parquet --rounds 5 --out /tmp/r
    python -m benchmarks.suite --targets          # the per-issue targets; exit 1 if one is missed (make bench-targets)

Modules: ``data`` (deterministic inputs), ``peers`` (dask.bag, dask.dataframe,
pyarrow and DuckDB doing each job), ``workloads``, ``records``, ``memory`` and
``remote`` (each job, its contenders and its equality check), ``checks``,
``runner`` (checked run, then interleaved rounds, medians and the caller's
peak memory), ``report`` (Markdown, JSON, PNG charts), ``targets`` (the
per-issue thresholds, checked on a run's rows).
"""

from __future__ import annotations

__all__: list[str] = []
