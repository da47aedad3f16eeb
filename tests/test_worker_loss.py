"""A worker SIGKILLed mid-run: parallel_read, parallel_write and a split convert lose and repeat nothing.

Each test has a cluster of its own (it kills one of the workers).
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from iterable.convert.core import convert as upstream_convert

import iterable_dask
from iterable_dask.sample import write_sample

from .conftest import own_cluster
from .helpers import sequential

pytestmark = pytest.mark.slow  # each test SIGKILLs a worker of its own cluster


@pytest.fixture
def own_client():
    with own_cluster() as client:
        yield client


def _kill_one(client, busy_with: str | None = None, timeout: float = 60.0) -> str:
    """SIGKILL a worker (one running a task whose key starts with ``busy_with``, polled for); return its address."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while True:
        processing = client.processing()
        busy = [
            w for w, keys in processing.items() if busy_with is None or any(str(k).startswith(busy_with) for k in keys)
        ]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return busy[0]
        assert time.monotonic() < deadline, f"no worker ran a {busy_with!r} task within {timeout}s"
        time.sleep(0.005)


def test_parallel_read_process_mode_survives_a_killed_worker(tmp_path, own_client):
    paths = [write_sample(str(tmp_path / f"s{i}.{ext}"), 3000, seed=i) for i, ext in enumerate(["csv", "jsonl"] * 3)]
    expected = [r for p in paths for r in sequential(p)]
    with iterable_dask.parallel_read(paths, client=own_client, ordered=True, buffer=200, blocksize=20_000) as reader:
        head = [next(reader)]  # partitions are in flight, the reader holds back on its small buffer
        _kill_one(own_client)
        got = head + list(reader)
    assert got == expected  # every record once, in order


def test_parallel_write_process_mode_survives_a_killed_worker(tmp_path, own_client):
    records = [{"n": i, "text": f"row {i}"} for i in range(6000)]

    def produce():
        for record in records:
            if record["n"] == 3000:  # half the files are submitted: lose a worker
                _kill_one(own_client)
            yield record

    written = iterable_dask.parallel_write(
        produce(), str(tmp_path / "out"), to_ext="jsonl", records_per_file=500, client=own_client
    )
    assert sum(w.rows for w in written) == 6000 and len(written) == 12
    back = [r for w in written for r in sequential(w.path)]
    assert sorted(back, key=lambda r: r["n"]) == records  # each once
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(w.path) for w in written)


def test_split_convert_survives_a_killed_worker(tmp_path, own_client):
    source = write_sample(str(tmp_path / "big.csv"), 150_000, seed=3)
    upstream_convert(source, str(tmp_path / "reference.jsonl"))
    target = tmp_path / "out" / "big.jsonl"
    target.parent.mkdir()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            iterable_dask.convert, source, str(target), parallel=True, client=own_client, blocksize=400_000
        )
        _kill_one(own_client, busy_with="iterable-convert-part")
        result = future.result(timeout=300)
    assert result.rows_out == 150_000
    assert target.read_bytes() == (tmp_path / "reference.jsonl").read_bytes()
    assert os.listdir(target.parent) == ["big.jsonl"]  # no part or temporary left
