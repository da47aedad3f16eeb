"""write_bag writes one file per partition, atomically, on the workers."""

from __future__ import annotations

import os
import signal
import threading
import time

import dask.bag as db
import pytest

import iterable_dask
from iterable_dask import read_bag, records_to_bag, write_bag
from iterable_dask.sample import sample_records, write_sample

from .conftest import own_cluster
from .helpers import sequential, temporaries


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet", "jsonl.gz"])
def test_write_then_read_round_trips(tmp_path, client, ext):
    src = write_sample(str(tmp_path / "src.csv"), 2000)
    files = write_bag(read_bag(src, blocksize=20_000), str(tmp_path / "out"), to_ext=ext, client=client)
    assert len(files) >= 3
    assert files == sorted(files)
    assert all(f.endswith("." + ext) for f in files)
    back = iterable_dask.compute(read_bag(files), client=client)[0]
    assert back == sequential(src)
    assert temporaries(tmp_path / "out") == []


def test_pattern_destination_and_empty_partitions(tmp_path, client):
    bag = records_to_bag(list(sample_records(10)), chunk_size=4).filter(lambda r: int(r["id"]) < 6)
    files = write_bag(bag, str(tmp_path / "o" / "data-*.jsonl"), client=client)
    assert [os.path.basename(f) for f in files] == ["data-00000.jsonl", "data-00001.jsonl"]
    assert [r for f in files for r in sequential(f)] == list(sample_records(6))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dest": "out"}, ValueError, "to_ext is required"),
        ({"dest": "out/a-*-*.jsonl"}, ValueError, "one '\\*'"),
        ({"dest": "out", "to_ext": "nosuchformat"}, ValueError, "Unknown output format"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, client, kwargs, error, message):
    kwargs = {**kwargs, "dest": str(tmp_path / kwargs["dest"])}
    with pytest.raises(error, match=message):
        write_bag(db.from_sequence([{"a": 1}]), client=client, **kwargs)


def test_unwritable_destination_is_a_clear_error(tmp_path, client):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="Cannot create the destination folder"):
        write_bag(db.from_sequence([{"a": 1}]), str(blocker / "sub"), to_ext="jsonl", client=client)


def _slow_partition(records):
    for r in records:
        time.sleep(0.0005)
        yield r


@pytest.mark.slow
def test_a_worker_killed_during_the_write_leaves_no_partial_file(tmp_path):
    """SIGKILL a worker process while it writes; the task reruns elsewhere and every file is whole."""
    out = tmp_path / "out"
    records = list(sample_records(8000))
    with own_cluster(dashboard_address=None) as client:
        pids = set(client.run(os.getpid).values())
        bag = records_to_bag(records, chunk_size=2000).map_partitions(_slow_partition)
        result: dict[str, list[str]] = {}
        thread = threading.Thread(
            target=lambda: result.setdefault("files", write_bag(bag, str(out), to_ext="jsonl", client=client))
        )
        thread.start()
        deadline = time.time() + 60
        victim = None
        while time.time() < deadline and victim is None:
            if temporaries(out):  # a partition is being written right now
                processing = client.run_on_scheduler(
                    lambda dask_scheduler: [ws.pid for ws in dask_scheduler.workers.values() if ws.processing]
                )
                if processing:
                    victim = processing[0]
                    os.kill(victim, signal.SIGKILL)
            time.sleep(0.005)
        thread.join(120)
        assert victim in pids, "no write was caught in progress"
    files = result["files"]
    assert len(files) == 4
    assert [r for f in files for r in sequential(f)] == records
    assert sorted(os.listdir(out)) == [os.path.basename(f) for f in files]


def test_csv_partitions_with_different_keys(tmp_path, client):
    """The format is judged on the target's name, not the temporary one (which has more dots)."""
    records = [{"a": "1"}, {"a": "2", "b": "x"}, {"c": "3"}]
    files = write_bag(records_to_bag(records, chunk_size=3), str(tmp_path / "out"), to_ext="csv", client=client)
    assert sequential(files[0]) == [
        {"a": "1", "b": "", "c": ""},
        {"a": "2", "b": "x", "c": ""},
        {"a": "", "b": "", "c": "3"},
    ]
