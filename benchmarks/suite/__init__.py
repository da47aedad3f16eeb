"""One benchmark suite: iterable_dask against the tools a user would pick instead, side by side.

Run from the repository's root::

    python -m benchmarks.suite --quick            # tiny data, a smoke run (under a minute)
    python -m benchmarks.suite --full             # the report's sizes (make bench)
    python -m benchmarks.suite --full --only csv-parquet --rounds 5 --out /tmp/r

Modules: ``data`` (deterministic inputs), ``peers`` (dask.bag, dask.dataframe,
pyarrow and DuckDB doing each job), ``workloads`` and ``remote`` (each job, its
contenders and its equality check), ``checks``, ``runner`` (checked run, then
interleaved rounds and medians), ``report`` (Markdown, JSON, PNG charts).
"""

from __future__ import annotations

__all__: list[str] = []
