"""The cluster a command runs on, its dashboard link, and what Ctrl-C leaves behind.

A command either connects to ``--scheduler`` or uses the package's embedded
local cluster (on 127.0.0.1), and prints the dashboard link to stderr when the
run starts. On Ctrl-C the tasks are cancelled (the API functions do that as
the interrupt unwinds them), the embedded cluster is shut down, which stops
any task still writing, and then the temporary files the run created in its
output folders are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click
import psutil

from ..core.cluster import close_embedded_clusters, dashboard_link, get_client
from ..core.window import wait_until_stopped
from ..io.atomic import TEMP_PREFIX
from ..io.fs import is_url

__all__ = ["Session", "session"]

logger = logging.getLogger(__name__)

#: How long the cleanup after Ctrl-C waits for tasks a remote cluster still runs,
#: and for the embedded cluster's worker processes to end before they are killed.
STOP_TIMEOUT = 30.0


def _temporaries(folders: Iterable[str], since: float) -> list[str]:
    """The package's temporary files in ``folders`` modified at or after ``since`` (this run's)."""
    found: list[str] = []
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime >= since:
                        found.append(entry.path)
    return sorted(found)


def _worker_processes() -> list[psutil.Process]:
    """This process's descendants that may run tasks (the embedded cluster's workers), not multiprocessing's tracker."""
    found = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "resource_tracker" not in " ".join(process.cmdline()):
                found.append(process)
    return found


class _DashboardEcho(logging.Handler):
    """Print the dashboard link when the package starts its embedded cluster (auto-mode pipelines).

    Installed on the cluster module's logger, which then passes on to the
    root handlers only the records the command's verbosity lets through.
    """

    def __init__(self, level: int) -> None:
        super().__init__(logging.DEBUG)
        self.passed_level = level

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Started an embedded Dask cluster"):
            link = record.args[-1] if isinstance(record.args, tuple) and record.args else ""
            click.echo(f"Dashboard: {link}", err=True)
        if record.levelno >= self.passed_level:
            for handler in logging.getLogger().handlers:
                handler.handle(record)


class Session:
    """What a command runs on: a client (or none yet) and the folders it writes to."""

    def __init__(self, client: Any, folders: list[str]) -> None:
        self.client = client
        self.folders = folders
        # Temporaries older than the run are another run's; only this run's are swept after Ctrl-C.
        # (A second of slack for file systems with coarse timestamps.)
        self.started = time.time() - 1.0

    def clean_up_interrupted(self) -> list[str]:
        """Stop what still runs and remove the temporaries this run created; return them."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        try:
            click.echo("Interrupted: cancelling tasks and removing temporary files ...", err=True)
            if self.client is not None and getattr(self.client, "cluster", None) is None:  # a remote cluster
                with contextlib.suppress(Exception):
                    wait_until_stopped(self.client, "iterable-", timeout=STOP_TIMEOUT)
            workers = _worker_processes()
            close_embedded_clusters()
            # Closing returns once the workers were told to stop; one may still be finishing a
            # write. Only when none is left can no new temporary appear behind the sweep.
            _, alive = psutil.wait_procs(workers, timeout=STOP_TIMEOUT)
            for process in alive:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(alive, timeout=5)
            removed = []
            for path in _temporaries(self.folders, self.started):
                with contextlib.suppress(OSError):
                    os.remove(path)
                    removed.append(path)
            return removed
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def session(
    scheduler: str | None,
    workers: int | None,
    outputs: Iterable[str] = (),
    *,
    mode: str | None = "process",
    start: bool = True,
    security: Any = None,
) -> Iterator[Session]:
    """Resolve the cluster (``start=False``: let the call start it when it needs one) and guard the run.

    Parameters
    ----------
    scheduler, workers
        The command's ``--scheduler`` and ``--workers``.
    outputs
        Output paths or folders; their local folders are swept of this run's
        temporaries after Ctrl-C.
    mode : {"process", "thread"}
        The embedded cluster's kind.
    start : bool
        Start (or connect to) the cluster now and print its dashboard link.
    security : distributed.security.Security, optional
        TLS for ``scheduler``.
    """
    folders = sorted({_folder(p) for p in outputs if not is_url(p)})
    client = None
    cluster_logger = logging.getLogger("iterable_dask.core.cluster")
    level, propagate = cluster_logger.level, cluster_logger.propagate
    echo = _DashboardEcho(cluster_logger.getEffectiveLevel())
    if start or scheduler:
        client = get_client(None, scheduler, workers=workers, mode=mode, security=security)
        if scheduler:
            click.echo(f"Scheduler: {scheduler}", err=True)
        click.echo(f"Dashboard: {dashboard_link(client)}", err=True)
    else:
        cluster_logger.addHandler(echo)
        cluster_logger.setLevel(min(logging.INFO, echo.passed_level))
        cluster_logger.propagate = False
    guard = Session(client, folders)
    try:
        yield guard
    except (KeyboardInterrupt, click.Abort):
        removed = guard.clean_up_interrupted()
        logger.info("removed %d temporary files: %s", len(removed), removed)
        raise
    finally:
        cluster_logger.removeHandler(echo)
        cluster_logger.setLevel(level)
        cluster_logger.propagate = propagate
        close_embedded_clusters()


def _folder(path: str) -> str:
    return path if os.path.isdir(path) or path.endswith(os.sep) else os.path.dirname(os.path.abspath(path))
