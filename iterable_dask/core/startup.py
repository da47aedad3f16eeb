"""Starting a LocalCluster without a silent hang: a deadline, and no start in a spawned import of the script.

Worker processes of a LocalCluster are started by distributed's nanny with the
``spawn`` method: each first imports the parent's main script again, as
``__mp_main__``, before it becomes a worker. A script that does its work at
module level (no ``if __name__ == "__main__":``) would start a cluster in each
of them, which cannot start processes of its own there, and the caller's
cluster would wait for its workers forever. Here:

- :func:`refuse_in_spawned_import` raises :class:`SpawnedScriptError` in such a
  worker process at once, and writes the script's name to the report file the
  starting process named in ``ITERABLE_DASK_SPAWN_REPORT``;
- :func:`start_with_deadline` starts the cluster in a thread, within
  ``iterable-dask.embedded-cluster.start-timeout``: its worker processes die,
  the nannies' starts fail and distributed closes the cluster; the report
  turns that failure into :class:`SpawnedScriptError`, naming the script. Past
  the deadline it ends the worker processes itself and raises
  :class:`ClusterConnectionError`. Whenever a start fails, its worker
  processes are gone before the error is raised.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import config
from .exceptions import ClusterConnectionError, SpawnedScriptError

__all__ = ["refuse_in_spawned_import", "spawned_main", "start_with_deadline"]

logger = logging.getLogger(__name__)

#: The name distributed's nanny gives the worker processes it starts.
_WORKER_PROCESS_NAME = "Dask Worker process (from Nanny)"
#: Where a spawned process that imports the main script again reports it to the cluster starting it.
_SPAWN_REPORT_ENV = "ITERABLE_DASK_SPAWN_REPORT"
#: Seconds distributed gets to close a cluster whose start failed or passed its deadline.
_CLOSE_GRACE = 15.0

_start_lock = threading.Lock()  # one LocalCluster start at a time: its new worker processes are its own
_report: tuple[int, str] | None = None  # (pid, file) of this process's spawn report


def spawned_main() -> str | None:
    """The main script this process is importing again because it was spawned; None when it is not.

    ``spawn`` and ``forkserver`` (distributed's nanny uses ``spawn``) prepare a
    child by running the parent's main script (or ``-m`` module) again under the
    name ``__mp_main__`` (``multiprocessing.spawn.prepare``), before the child's
    own target runs; meanwhile ``current_process()._inheriting`` is set, the
    flag multiprocessing's own "bootstrapping phase" check reads. Either sign
    is enough: the script's module-level frame on this thread's stack, or the
    flag (any thread). ``parent_process()`` is no sign: it is still None then,
    set only by the child's bootstrap after the import. A worker running a
    function defined in the script afterwards is not an import of it: no
    ``<module>`` frame, flag cleared.
    """
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return str(frame.f_globals.get("__file__") or frame.f_code.co_filename)
        frame = frame.f_back
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        main = sys.modules.get("__mp_main__") or sys.modules.get("__main__")
        return str(getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "the main script"))
    return None


def refuse_in_spawned_import() -> None:
    """Raise :class:`SpawnedScriptError` in a process that imports the main script again because it was spawned.

    The process that spawned it is told which script, through its report file.
    """
    script = spawned_main()
    if script is not None:
        _report_spawned(script)
        raise _spawned_script_error(script, in_caller=False)


def _spawned_script_error(script: str, *, in_caller: bool) -> SpawnedScriptError:
    guard = 'if __name__ == "__main__":'
    if in_caller:
        what = (
            f"The Dask cluster's worker processes could not start: each one imports the main script {script} "
            "again first (as __mp_main__, as the spawn and forkserver start methods do), and its module-level "
            "code starts a cluster of its own there."
        )
    else:
        what = (
            f"A Dask cluster was to start while this process, spawned as a worker, imported the main script "
            f"{script} again (as __mp_main__): its module-level code would start a cluster in every worker."
        )
    return SpawnedScriptError(
        f"{what} Put the script's work under `{guard}` in {script} (see 'Safe importing of main module' in "
        "Python's multiprocessing documentation).",
        script=script,
    )


def _spawn_report_file() -> str:
    """This process's spawn report file, named to its children in the environment they inherit."""
    global _report
    if _report is None or _report[0] != os.getpid():  # a forked child names its own
        name = f"iterable-dask-spawn-{os.getpid()}-{uuid.uuid4().hex[:12]}.txt"
        _report = (os.getpid(), os.path.join(tempfile.gettempdir(), name))
    os.environ[_SPAWN_REPORT_ENV] = _report[1]
    return _report[1]


def _report_spawned(script: str) -> None:
    """Tell the process that spawned this one which script was imported again (best effort)."""
    path = os.environ.get(_SPAWN_REPORT_ENV)
    if path:
        with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as f:
            f.write(script)


def _take_report(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            script = f.read().strip()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.unlink(path)
    return script or None


def _new_worker_processes(before: set[int | None]) -> list[Any]:
    """The nanny worker processes of this process started since ``before`` (pids) was taken."""
    return [p for p in multiprocessing.active_children() if p.pid not in before and p.name == _WORKER_PROCESS_NAME]


def _end_processes(processes: list[Any], timeout: float = 5.0) -> None:
    """Kill processes and wait (up to ``timeout``) until they have exited."""
    for p in processes:
        with contextlib.suppress(Exception):  # already exited, or closed by distributed
            p.kill()
    deadline = time.monotonic() + timeout
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))


def _abandon_start(thread: threading.Thread, outcome: dict[str, Any], before: set[int | None]) -> None:
    """Stop a LocalCluster start that is still running: end its worker processes, let distributed close it.

    A nanny whose worker process dies fails its start, so the LocalCluster's own
    constructor closes the scheduler and the other nannies. Worker processes the
    nannies start meanwhile are ended too, until the start has returned.
    """
    deadline = time.monotonic() + _CLOSE_GRACE
    while True:
        _end_processes(_new_worker_processes(before))
        thread.join(0.1)
        if not thread.is_alive() or time.monotonic() > deadline:
            break
    cluster = outcome.get("cluster")
    if cluster is not None:  # it came up just as the deadline passed
        with contextlib.suppress(Exception):
            cluster.close(timeout=_CLOSE_GRACE)
    _end_processes(_new_worker_processes(before))
    if thread.is_alive():
        logger.warning("a LocalCluster start still runs %ss after it was abandoned", _CLOSE_GRACE)


def start_with_deadline(start: Callable[[], Any], workers: int, mode: str) -> Any:
    """``start()`` a LocalCluster within ``iterable-dask.embedded-cluster.start-timeout``.

    The start runs in a thread of its own, so that the caller returns at the
    deadline whatever the start waits for. Whenever it fails, its worker
    processes are gone before this returns; a failure whose worker processes
    reported a main script imported again raises :class:`SpawnedScriptError`.
    """
    timeout = config.start_timeout()
    with _start_lock:
        report = _spawn_report_file()
        with contextlib.suppress(OSError):
            os.unlink(report)
        before = {p.pid for p in multiprocessing.active_children()}
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["cluster"] = start()
            except BaseException as e:  # handed to the caller
                outcome["error"] = e

        thread = threading.Thread(target=run, name="iterable-dask LocalCluster start", daemon=True)
        thread.start()
        try:
            thread.join(timeout)
        except BaseException:  # Ctrl-C while waiting
            _abandon_start(thread, outcome, before)
            raise
        if thread.is_alive():
            _abandon_start(thread, outcome, before)
            script = _take_report(report)
            if script is not None:
                raise _spawned_script_error(script, in_caller=True)
            each = "processes, 1 thread each" if mode == "process" else "threads of this process"
            raise ClusterConnectionError(
                f"Waited {timeout:g}s for the embedded LocalCluster's {workers} workers to start "
                f"(mode {mode!r}: worker {each}); they had not, and every process it started is stopped. "
                "Set 'iterable-dask.embedded-cluster.start-timeout' to wait longer (a loaded machine, or a main "
                "script slow to import: every worker process imports it again)."
            )
        if "error" not in outcome:
            return outcome["cluster"]
        _end_processes(_new_worker_processes(before))
        script = _take_report(report)
        if script is not None:  # the nanny's "failed to start" adds nothing; the workers printed their tracebacks
            raise _spawned_script_error(script, in_caller=True) from None
        raise outcome["error"]
