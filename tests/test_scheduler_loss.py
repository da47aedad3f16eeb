"""The scheduler SIGKILLed mid-run: the call fails soon with SchedulerLostError and leaves no partial output.

Each test starts a cluster of its own (a real `dask scheduler` and two `dask
worker` processes on 127.0.0.1), waits until the run is under way (the
caller's progress callback fires: work has come back), kills the scheduler
with SIGKILL and watches the call. Workers stop when their scheduler
connection breaks (``--death-timeout`` bounds it otherwise), finishing the
file they are on through its atomic rename; so once they have exited, the
destination holds only complete outputs and no temporary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from distributed import Client
from distributed.comm.core import CommClosedError

import iterable_dask
from iterable_dask import ClusterConnectionError, SchedulerLostError
from iterable_dask.core.lost import scheduler_lost
from tests.conftest import real_cluster
from tests.helpers import in_thread, sequential, temporaries

#: Bound on the failing call, from the kill: the client notices a closed connection at once.
CALL_BOUND = 90


@pytest.fixture
def doomed_cluster(tmp_path):
    """``(address, [scheduler, worker, worker])``: real processes whose scheduler a test kills."""
    with real_cluster(str(tmp_path), 2, worker_args=["--death-timeout", "10"]) as real:
        yield real.address, real.procs


def _kill_scheduler_when(started: threading.Event, thread: threading.Thread, procs: list[subprocess.Popen]) -> None:
    assert started.wait(180), "the run never got under way"
    assert thread.is_alive(), "the run ended before the scheduler could be killed: give it more work"
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(30)


def _assert_lost(thread: threading.Thread, errors: list[BaseException], address: str) -> SchedulerLostError:
    thread.join(CALL_BOUND)
    assert not thread.is_alive(), f"the call did not fail within {CALL_BOUND} s of losing its scheduler"
    assert len(errors) == 1 and isinstance(errors[0], SchedulerLostError), errors
    error = errors[0]
    assert isinstance(error, ClusterConnectionError)  # callers catching connection errors see it too
    assert error.address == address and address in str(error) and "lost" in str(error)
    return error


def _workers_exit(procs: list[subprocess.Popen]) -> None:
    """Workers without a scheduler stop, letting the task they run finish: after this nothing writes any more."""
    for worker in procs[1:]:
        worker.wait(120)


@pytest.mark.slow
def test_bulk_convert_losing_its_scheduler(doomed_cluster, tmp_path):
    address, procs = doomed_cluster
    src, dest = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(60):
        with open(src / f"f{i:02d}.csv", "w", encoding="utf8") as f:
            f.write("id,name,text\n")
            f.writelines(f"{r},name {r},{'x' * (r % 50)}\n" for r in range(3000))
    started = threading.Event()

    def convert() -> None:
        iterable_dask.bulk_convert(
            str(src / "*.csv"), str(dest), to_ext="jsonl", parallel=True, scheduler=address,
            progress=lambda stats: started.set(),
        )  # fmt: skip

    thread, errors = in_thread(convert)
    _kill_scheduler_when(started, thread, procs)
    _assert_lost(thread, errors, address)
    _workers_exit(procs)
    assert temporaries(dest) == []
    outputs = sorted(os.listdir(dest))
    assert 0 < len(outputs) < 60  # the run was stopped mid-way
    for name in outputs:  # every output there is whole: iterabledata reads exactly its source's records
        assert name.endswith(".jsonl")
        assert sequential(str(dest / name)) == sequential(str(src / name.replace(".jsonl", ".csv")))


def slow_tag(record: dict, state: dict) -> dict:
    time.sleep(0.002)
    return {**record, "seen": True}


@pytest.mark.slow
def test_pipeline_losing_its_scheduler(doomed_cluster, tmp_path):
    address, procs = doomed_cluster
    source = tmp_path / "src.jsonl"
    with open(source, "w", encoding="utf8") as f:
        f.writelines(json.dumps({"id": i}) + "\n" for i in range(6000))
    dest = tmp_path / "out" / "result.jsonl"
    dest.parent.mkdir()
    started = threading.Event()

    def run() -> None:
        iterable_dask.pipeline(
            str(source), str(dest), slow_tag, parallel=True, parallel_mode="process", chunk_size=100,
            scheduler=address, progress=lambda stats: started.set(), progress_interval=100,
        )  # fmt: skip

    thread, errors = in_thread(run)
    _kill_scheduler_when(started, thread, procs)
    _assert_lost(thread, errors, address)
    # The next call does not reuse the client still trying to reconnect: it cannot connect, and says so.
    with pytest.raises(ClusterConnectionError) as again:
        iterable_dask.compute(iterable_dask.records_to_bag([{"id": 1}]).count(), scheduler=address)
    assert not isinstance(again.value, SchedulerLostError) and address in str(again.value)
    _workers_exit(procs)
    assert os.listdir(dest.parent) == []  # no partial result.jsonl, no temporary


@pytest.mark.slow
def test_a_closed_comm_before_the_client_notices_is_a_lost_scheduler(doomed_cluster):
    """A gather can fail on a reset connection a moment before the client's own stream reports the loss."""
    address, procs = doomed_cluster
    with Client(address, timeout=5, set_as_default=False) as client:
        reset = CommClosedError("in <TCP ConnectionPool.gather>: ConnectionResetError: [Errno 104]")
        assert client.status == "running"
        assert not scheduler_lost(client, FileNotFoundError("a task's own missing file"))  # judged at once
        assert not scheduler_lost(client, reset)  # the scheduler is alive: a closed comm alone is not a loss
        killer = threading.Thread(target=lambda: procs[0].send_signal(signal.SIGKILL))
        assert client.status == "running"
        killer.start()  # the kill races the check: the client has not noticed yet
        assert scheduler_lost(client, reset)
        killer.join()


def test_a_cancellation_with_its_reason_is_judged_at_once(client):
    """A future cancelled for a reason of its own (here, the caller's) is no lost scheduler, and no wait."""
    from iterable_dask.core import lost

    # A resource no worker has: the task waits unscheduled instead of holding a session worker's one thread
    # for 60 s after the cancel (a running task is not interrupted).
    future = client.submit(time.sleep, 60, pure=False, resources={"no-such-resource": 1})
    future.cancel(reason="the caller changed its mind")
    with pytest.raises(Exception) as error:
        future.result(timeout=60)
    start = time.monotonic()
    assert not lost.scheduler_lost(client, error.value)
    assert time.monotonic() - start < lost.NOTICE_GRACE  # decided without the grace a closed comm gets


@pytest.mark.slow
@pytest.mark.parametrize("ordered", [True, False])
def test_parallel_read_losing_its_scheduler(doomed_cluster, tmp_path, ordered):
    """The reader's consumer gets SchedulerLostError, not a hang, when the scheduler dies mid-read."""
    address, procs = doomed_cluster
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        with open(src / f"f{i:02d}.jsonl", "w", encoding="utf8") as f:
            f.writelines(json.dumps({"file": i, "row": r, "text": "x" * (r % 40)}) + "\n" for r in range(5000))
    started = threading.Event()
    seen: list[int] = []

    def read() -> None:
        with iterable_dask.parallel_read(
            str(src / "*.jsonl"), ordered=ordered, mode="process", scheduler=address, blocksize=64 * 1024
        ) as reader:
            for record in reader:
                seen.append(record["file"])
                started.set()
                time.sleep(0.0001)  # a slow consumer: the read is still under way when the scheduler dies

    thread, errors = in_thread(read)
    _kill_scheduler_when(started, thread, procs)
    _assert_lost(thread, errors, address)
    assert 0 < len(seen) < 40 * 5000
