"""``iterable-dask cluster``: a scheduler and workers in the foreground, until Ctrl-C."""

from __future__ import annotations

import json
import logging
import signal
import threading

import click
from distributed import LocalCluster

from .errors import UsageProblem
from .options import output_options

__all__ = ["cluster_command"]


@click.command("cluster")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Threads per worker.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8786, show_default=True,
              help="Scheduler port (0: any free port).")  # fmt: skip
@click.option("--dashboard-port", type=click.IntRange(min=0, max=65535), default=8787, show_default=True,
              help="Dashboard port (0: any free port).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; other machines can connect only if you choose one they reach.")  # fmt: skip
@click.option("--memory-limit", default="auto", show_default=True, help="Memory limit per worker, e.g. 4GiB.")
@output_options
def cluster_command(
    workers: int, threads: int, port: int, dashboard_port: int, host: str, memory_limit: str, as_json: bool
) -> int:
    """Start a Dask scheduler and workers in the foreground; Ctrl-C (or SIGTERM) stops them, exit code 0.

    Prints the scheduler address, for --scheduler in another terminal, and the
    dashboard link. Everything listens on 127.0.0.1 unless --host says otherwise.

    \b
    Examples:
      iterable-dask cluster --workers 4
      iterable-dask bulk-convert 'data/*.csv' out/ --to parquet --scheduler tcp://127.0.0.1:8786
    """
    try:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True, host=host, scheduler_port=port,
            dashboard_address=f"{host}:{dashboard_port}", worker_dashboard_address=f"{host}:0",
            memory_limit=memory_limit, silence_logs=logging.ERROR,
        )  # fmt: skip
    except OSError as e:
        raise UsageProblem(f"cannot start the cluster on {host}:{port} (dashboard :{dashboard_port}): {e}") from e
    try:
        info = {
            "scheduler_address": cluster.scheduler_address,
            "dashboard_link": cluster.dashboard_link,
            "workers": workers,
            "threads_per_worker": threads,
        }
        if as_json:
            click.echo(json.dumps(info))
        else:
            click.echo(f"Scheduler: {cluster.scheduler_address}")
            click.echo(f"Dashboard: {cluster.dashboard_link}")
            click.echo(f"Workers:   {workers} processes x {threads} threads; press Ctrl-C to stop.")
            use = f"iterable-dask bulk-convert SRC DEST --to EXT --scheduler {cluster.scheduler_address}"
            click.echo(f"Use it:    {use}")
        stop = threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            click.echo("Stopping the cluster ...", err=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.close(timeout=30)
    click.echo("Cluster stopped.", err=True)
    return 0
