"""``iterable-dask demo``: sample CSV files converted in parallel on a local cluster."""

from __future__ import annotations

import os
import time

import click

from .options import output_options, progress_option, show_progress
from .report import bulk_summary, emit

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--dir", "folder", default="demo-data", show_default=True, help="Working folder.")
@click.option("--files", type=click.IntRange(min=1), default=8, show_default=True, help="CSV files to generate.")
@click.option("--rows", type=click.IntRange(min=1), default=50_000, show_default=True, help="Rows per file.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPU count).")
@progress_option
@output_options
def demo_command(folder: str, files: int, rows: int, workers: int | None, progress: bool | None, as_json: bool) -> int:
    """Generate sample CSV files and convert them to JSON Lines in parallel on a local cluster.

    \b
    Example:
      iterable-dask demo --files 4 --rows 10000
    """
    from iterable import open_iterable

    import iterable_dask
    from iterable_dask.sample import write_sample

    src = os.path.join(folder, "csv")
    out = os.path.join(folder, "jsonl")
    say = (lambda *a, **k: None) if as_json else click.echo
    say(f"Generating {files} CSV files of {rows:,} rows in {src}/ ...")
    for i in range(files):
        path = os.path.join(src, f"part-{i:02d}.csv")
        if not os.path.exists(path):
            write_sample(path, rows, seed=i, start=i * rows)
    with iterable_dask.local_cluster(workers=workers, dashboard_address="127.0.0.1:0") as client:
        say(f"Embedded Dask cluster: {len(client.scheduler_info()['workers'])} worker processes on 127.0.0.1")
        say(f"Dashboard: {client.dashboard_link}")
        start = time.perf_counter()
        result = iterable_dask.bulk_convert(os.path.join(src, "*.csv"), out, to_ext="jsonl", parallel=True,
                                            client=client, show_progress=show_progress(progress))  # fmt: skip
        elapsed = time.perf_counter() - start
        (count,) = iterable_dask.compute(iterable_dask.read_bag(os.path.join(out, "*.jsonl")).count(), client=client)
    with open_iterable(os.path.join(out, "part-00.jsonl")) as it:
        first = next(iter(it))
    lines = [
        "",
        "Summary",
        f"  files converted : {result.successful_files}/{result.total_files} (failed: {result.failed_files})",
        f"  rows in / out   : {result.total_rows_in:,} / {result.total_rows_out:,}",
        f"  elapsed         : {elapsed:.2f} s ({result.total_rows_in / max(elapsed, 1e-9):,.0f} rows/s)",
        f"  rows re-read    : {count:,} (read_bag on the workers)",
        f"  first record    : {first}",
        f"  output folder   : {out}/",
    ]
    emit({**bulk_summary(result), "rows_reread": count, "first_record": first}, as_json, lines)
    return 0 if result.failed_files == 0 and count == result.total_rows_out else 1
