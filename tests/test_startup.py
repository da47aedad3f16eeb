"""Starting the embedded cluster: no silent hang in a script without a main guard, and a start deadline.

Every test runs a real script in a real Python process, whose embedded cluster
starts real (spawned) worker processes; every process a run started is looked
for afterwards by an environment tag its descendants inherit.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from .conftest import REPO
from .helpers import wait_for

#: Real scripts in subprocesses, each starting a cluster of its own: seconds each.
pytestmark = pytest.mark.slow

GUARD = 'if __name__ == "__main__":'
TAG = "ITERABLE_DASK_STARTUP_TEST_TAG"

# The work of the user script that hung: a module-level parallel bulk conversion.
CONVERT = """
import iterable_dask
result = iterable_dask.bulk_convert({src!r}, {out!r}, to_ext="jsonl", parallel=True)
print("converted", result.successful_files)
"""


def _tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``tag``: the run's script and everything it started."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(TAG) == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _run(script: Path, tag: str, timeout: float = 90, **settings: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``script`` with a 2-worker embedded cluster; the finished process and its seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    env.update(
        {
            TAG: tag,
            "DASK_ITERABLE_DASK__WORKERS": "2",
            "DASK_ITERABLE_DASK__EMBEDDED_CLUSTER__MODE": "process",
            "DASK_ITERABLE_DASK__EMBEDDED_CLUSTER__DASHBOARD_ADDRESS": "127.0.0.1:0",
            **settings,
        }
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - start


@pytest.fixture
def tag():
    """A tag for one run's processes; what still carries it after the test is killed (after its checks)."""
    value = uuid.uuid4().hex
    yield value
    for p in _tagged(value):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


def _csv_sources(tmp_path: Path) -> tuple[str, str]:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text("id,name\n1,x\n2,y\n", encoding="utf-8")
    (src / "b.csv").write_text("id,name\n3,z\n", encoding="utf-8")
    return str(src / "*.csv"), str(tmp_path / "out")


def _assert_nothing_survives(tag: str) -> None:
    wait_for(lambda: not _tagged(tag), timeout=10, what="every process the script started to be gone")


def test_script_without_main_guard_fails_at_once_and_names_the_script(tmp_path, tag):
    src, out = _csv_sources(tmp_path)
    script = tmp_path / "convert_all.py"
    script.write_text(CONVERT.format(src=src, out=out), encoding="utf-8")
    # A 25 s deadline: were the spawned import not recognized, the run would fail on it, not hang.
    done, seconds = _run(script, tag, DASK_ITERABLE_DASK__EMBEDDED_CLUSTER__START_TIMEOUT="25s")

    assert done.returncode != 0, done.stdout
    assert seconds < 20, f"took {seconds:.1f}s:\n{done.stderr[-3000:]}"
    # The caller's own error is the last thing the script printed, naming the script and the guard.
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("iterable_dask.core.exceptions.SpawnedScriptError: The Dask cluster's worker processes"), (
        done.stderr[-3000:]
    )
    assert str(script) in last
    assert f"`{GUARD}`" in last
    assert "Waited" not in done.stderr  # not the deadline
    assert "converted" not in done.stdout
    assert not os.path.exists(out) or not os.listdir(out)
    _assert_nothing_survives(tag)
    print(f"spawned-script run failed after {seconds:.2f}s")


def test_the_same_script_with_the_main_guard_converts(tmp_path, tag):
    src, out = _csv_sources(tmp_path)
    script = tmp_path / "convert_all.py"
    body = textwrap.indent(CONVERT.format(src=src, out=out).strip(), "    ")
    # A function of the script run on a worker process is no import of the script: no false alarm there.
    script.write_text(
        textwrap.dedent(
            """
            import iterable_dask
            from iterable_dask.core.startup import spawned_main


            def spawned_main_on_worker():
                return spawned_main()


            """
        )
        + f"{GUARD}\n{body}\n"
        + "    client = iterable_dask.get_client()\n"
        + "    print('on workers', client.submit(spawned_main_on_worker, pure=False).result())\n",
        encoding="utf-8",
    )
    done, _ = _run(script, tag)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "converted 2" in done.stdout
    assert "on workers None" in done.stdout
    lines = [json.loads(line) for name in ("a.jsonl", "b.jsonl") for line in Path(out, name).read_text().splitlines()]
    assert sorted(int(r["id"]) for r in lines) == [1, 2, 3]
    _assert_nothing_survives(tag)


def test_start_deadline_stops_every_process_it_started(tmp_path, tag):
    script = tmp_path / "start.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, multiprocessing, time
            import psutil
            import iterable_dask

            {GUARD}
                start = time.monotonic()
                try:
                    iterable_dask.get_client(workers=2, mode="process")
                    error = None
                except iterable_dask.ClusterConnectionError as e:
                    error = [type(e).__name__, str(e)]
                seconds = time.monotonic() - start
                workers = [
                    c.pid for c in psutil.Process().children(recursive=True)
                    if "spawn_main" in " ".join(c.cmdline())
                ]
                print(json.dumps({{"error": error, "seconds": seconds, "workers": workers,
                                  "mp_children": len(multiprocessing.active_children())}}))
            """
        ),
        encoding="utf-8",
    )
    done, _ = _run(script, tag, DASK_ITERABLE_DASK__EMBEDDED_CLUSTER__START_TIMEOUT="0.2s")

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    kind, message = report["error"]
    assert kind == "ClusterConnectionError"
    assert "Waited 0.2s for the embedded LocalCluster's 2 workers to start (mode 'process'" in message
    assert "every process it started is stopped" in message
    assert "iterable-dask.embedded-cluster.start-timeout" in message
    assert report["seconds"] < 20  # the deadline, then the kill and distributed's close
    assert report["workers"] == [] and report["mp_children"] == 0  # gone before the error was raised
    _assert_nothing_survives(tag)


def test_start_deadline_ends_worker_processes_that_hang(tmp_path, tag):
    # Each worker process hangs while it imports the script again: the start never completes on its own.
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            if __name__ == "__mp_main__":
                time.sleep(600)
            import iterable_dask

            {GUARD}
                start = time.monotonic()
                try:
                    iterable_dask.get_client(workers=2, mode="process")
                except iterable_dask.ClusterConnectionError as e:
                    print(type(e).__name__, round(time.monotonic() - start, 2), e)
            """
        ),
        encoding="utf-8",
    )

    done, seconds = _run(script, tag, DASK_ITERABLE_DASK__EMBEDDED_CLUSTER__START_TIMEOUT="3s")

    assert done.returncode == 0, done.stderr[-3000:]
    kind, waited, message = done.stdout.strip().splitlines()[-1].split(" ", 2)
    assert kind == "ClusterConnectionError"
    assert message.startswith("Waited 3s for the embedded LocalCluster's 2 workers to start (mode 'process'")
    assert 3 <= float(waited) < 10  # the deadline, not distributed's close grace
    assert seconds < 25
    _assert_nothing_survives(tag)
