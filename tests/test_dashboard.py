"""The dashboard during a real run, and the package's task names on it.

Every task the package submits has a key ``iterable-<capability>[-<step>]-<token>...``
whose Dask prefix (``dask.utils.key_split``) is one of
:data:`iterable_dask.core.names.TASK_NAMES`; the documentation's table is generated from it
(tests/test_docs.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import threading
import time
import urllib.request
from typing import Any

import pytest
from dask.utils import key_split

import iterable_dask
from iterable_dask.core.names import TASK_NAMES, task_key
from tests.conftest import own_cluster
from tests.helpers import sequential


def _prefixes(dask_scheduler: Any = None) -> list[str]:
    return list(dask_scheduler.task_prefixes)


def _processing(dask_scheduler: Any = None) -> list[str]:
    """The task prefixes of the tasks running now."""
    return [ts.prefix.name for ts in dask_scheduler.tasks.values() if ts.state == "processing"]


def wait_for_go(record: dict, state: dict) -> dict:
    """Hold the first chunk until the test has looked at the dashboard (a file says go)."""
    go = record["go"]
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {**record, "done": True}


def _until(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return value


def _write_jsonl(path: pathlib.Path, records: list[dict]) -> str:
    with open(path, "w", encoding="utf8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return str(path)


@pytest.fixture(scope="module")
def dashboard_client():
    with own_cluster() as client:
        yield client


@pytest.mark.slow
def test_status_page_answers_during_a_run(dashboard_client, tmp_path):
    client = dashboard_client
    link = client.dashboard_link
    assert link.startswith("http://127.0.0.1:"), link
    go = str(tmp_path / "go")
    src = _write_jsonl(tmp_path / "src.jsonl", [{"id": i, "go": go} for i in range(40)])
    outcome: list[Any] = []

    def run() -> None:
        outcome.append(
            iterable_dask.pipeline(
                src,
                str(tmp_path / "out.jsonl"),
                wait_for_go,
                parallel=True,
                parallel_mode="process",
                chunk_size=10,
                client=client,
            )
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        _until(lambda: "iterable-pipeline-chunk" in client.run_on_scheduler(_processing))
        with urllib.request.urlopen(link, timeout=60) as response:  # the status page, mid-run
            assert response.status == 200
            assert b"Dask" in response.read()
    finally:
        open(go, "w").close()
        thread.join(120)
    assert not thread.is_alive() and outcome[0].rec_count == 40
    assert [r["id"] for r in sequential(str(tmp_path / "out.jsonl"))] == list(range(40))
    assert "iterable-pipeline-chunk" in client.run_on_scheduler(_prefixes)


@pytest.mark.slow
def test_every_task_name_on_the_scheduler(dashboard_client, tmp_path):
    """Run every entry point; the scheduler's prefixes of this package are exactly the documented names."""
    client = dashboard_client
    records = [{"id": i, "k": f"k{i % 3}", "text": f"row {i}"} for i in range(300)]
    src = _write_jsonl(tmp_path / "src.jsonl", records)
    small = [_write_jsonl(tmp_path / f"small{i}.jsonl", records[i * 50 : (i + 1) * 50]) for i in range(3)]

    bag = iterable_dask.read_bag(small)
    assert iterable_dask.compute(bag, client=client) == (records[:150],)
    assert iterable_dask.compute(bag.count(), client=client) == (150,)  # fused: iterable-read-count-part
    frame = iterable_dask.read_dataframe(src)
    assert len(iterable_dask.compute(frame, client=client)[0]) == 300
    assert iterable_dask.compute(iterable_dask.records_to_bag(records, 100), client=client) == (records,)
    with iterable_dask.parallel_read(small, mode="process", client=client, ordered=True) as reader:
        assert list(reader) == records[:150]
    iterable_dask.write_bag(bag, str(tmp_path / "bag"), to_ext="jsonl", client=client)
    iterable_dask.parallel_write(bag, str(tmp_path / "keyed"), partition_by="k", client=client)
    iterable_dask.parallel_write(iter(records), str(tmp_path / "pw"), records_per_file=100, client=client)
    iterable_dask.pipeline(
        src, str(tmp_path / "p.jsonl"), lambda r, s: r, parallel=True, parallel_mode="process", client=client
    )
    bulk = iterable_dask.bulk_convert(
        str(tmp_path / "small*.jsonl"), str(tmp_path / "bulk"), to_ext="csv", parallel=True, client=client
    )
    assert bulk.successful_files == 3
    result = iterable_dask.convert(src, str(tmp_path / "big.csv"), parallel=True, client=client, blocksize=2000)
    assert result.rows_out == 300

    prefixes = set(client.run_on_scheduler(_prefixes))
    assert set(TASK_NAMES) <= prefixes, sorted(set(TASK_NAMES) - prefixes)
    assert not [p for p in prefixes if "parallel-" in p]  # the names before the scheme
    # Dask fuses a bag's read with the step after it into one task named by both (README: Task names).
    fusions = {f"{a}-{b}" for a in TASK_NAMES for b in [*TASK_NAMES, "count-part"]}
    ours = {p for p in prefixes if "iterable" in p}
    assert not [p for p in ours if p not in TASK_NAMES and p not in fusions], sorted(ours)
    assert {"iterable-read-count-part", "iterable-read-iterable-write", "iterable-read-iterable-write-keyed"} <= ours


def test_task_keys_split_to_their_names():
    for name in TASK_NAMES:
        for token in ("abcdefabcdef", "0123456789ab", "deadbeef" * 4):
            assert key_split(task_key(name, token)) == name
            assert key_split(task_key(name, token, 7)) == name
            assert key_split((task_key(name, token), 3)) == name
    with pytest.raises(ValueError):
        task_key("my-task", "0")
