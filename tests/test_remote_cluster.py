"""Clusters whose workers do not share the caller's view: another working directory, killed writers, lost files.

Each test that starts or kills workers has its own cluster.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import dask.bag as db
import pytest
from distributed import Client, KilledWorker
from iterable.convert.core import bulk_convert as upstream_bulk_convert

import iterable_dask
from iterable_dask.sample import write_sample

from .conftest import own_cluster, real_cluster
from .helpers import sequential, wait_for

# slow: every test kills workers of its own cluster, or starts real processes elsewhere
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _slow_record(i: int) -> dict:
    time.sleep(0.01)  # keeps the partition's write streaming for a few seconds
    return {"i": i, "text": f"record {i}"}


def _keys(fs, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p.split("/", 1)[1] for p in fs.find(prefix.removeprefix("s3://")))


@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["retried", "failed"])
def test_worker_killed_while_writing_to_s3_leaves_no_partial_object(allowed_failures, s3):
    fs, bucket, so = s3
    target = f"{bucket}/killed/part-00000.jsonl"
    with own_cluster(allowed_failures=allowed_failures) as client, ThreadPoolExecutor(1) as pool:
        pids = client.run(os.getpid)
        folders = client.run(lambda dask_worker: dask_worker.local_directory)
        bag = db.from_sequence(range(300), npartitions=1).map(_slow_record)
        future = pool.submit(
            iterable_dask.write_bag, bag, f"{bucket}/killed", "jsonl", client=client, batch_size=10, storage_options=so
        )

        def writing_worker():
            for address, folder in folders.items():
                for path in glob.glob(os.path.join(folder, "iterable-dask-out-*", "part-00000.jsonl")):
                    if os.path.getsize(path) > 0:  # records are being written locally
                        return address
            return None

        address = wait_for(writing_worker, what="a worker writing the partition")
        assert not fs.exists(target)  # mid-write: nothing at the final key
        os.kill(pids[address], signal.SIGKILL)
        if allowed_failures:
            assert future.result(timeout=120) == [target]
        else:
            with pytest.raises(KilledWorker):
                future.result(timeout=120)
    if allowed_failures:
        assert _keys(fs, f"{bucket}/killed") == [target.removeprefix("s3://").split("/", 1)[1]]
        lines = fs.cat_file(target).decode().splitlines()
        assert [json.loads(line) for line in lines] == [{"i": i, "text": f"record {i}"} for i in range(300)]
    else:
        assert _keys(fs, bucket) == []  # no partial object, no temporary key


@pytest.fixture(scope="module")
def elsewhere_cluster(tmp_path_factory):
    """Real `dask scheduler` and two `dask worker` processes whose working directory is not the caller's."""
    folder = tmp_path_factory.mktemp("elsewhere")
    with real_cluster(str(folder), 2) as real, Client(real.address, timeout=30, set_as_default=False) as client:
        yield real.address, client, folder


def test_relative_paths_with_workers_started_elsewhere(elsewhere_cluster, tmp_path, monkeypatch):
    address, client, elsewhere = elsewhere_cluster
    caller = tmp_path / "caller"
    (caller / "data").mkdir(parents=True)
    for i in range(3):
        write_sample(str(caller / "data" / f"r{i}.csv"), 400, seed=i)
    upstream_bulk_convert(str(caller / "data"), str(tmp_path / "reference"), to_ext="jsonl")
    monkeypatch.chdir(caller)

    result = iterable_dask.bulk_convert("data/*.csv", "out/", to_ext="jsonl", parallel=True, scheduler=address)
    assert (result.successful_files, result.failed_files) == (3, 0), [str(r.error) for r in result.file_results]
    assert [r.source_file for r in result.file_results] == [f"data/r{i}.csv" for i in range(3)]  # as given
    for i in range(3):
        assert (caller / "out" / f"r{i}.jsonl").read_bytes() == (tmp_path / "reference" / f"r{i}.jsonl").read_bytes()

    bag = iterable_dask.read_bag("data/*.csv", blocksize=6_000)
    assert bag.npartitions > 3
    expected = [r for i in range(3) for r in sequential(str(caller / "data" / f"r{i}.csv"))]
    assert client.compute(bag).result() == expected
    written = iterable_dask.write_bag(bag, "bagout", to_ext="jsonl", client=client)
    assert written[0] == os.path.join("bagout", "part-00000.jsonl")  # as given, written where the caller means
    assert [r for path in written for r in sequential(str(caller / path))] == expected

    single = iterable_dask.convert("data/r0.csv", "one.jsonl", parallel=True, client=client, blocksize=1 << 20)
    assert single.rows_out == 400
    assert not os.path.exists(elsewhere / "data") and not os.path.exists(elsewhere / "out")


def test_s3_urls_with_workers_started_elsewhere(elsewhere_cluster, s3, tmp_path):
    address, client, _ = elsewhere_cluster
    fs, bucket, so = s3
    for i in range(2):
        fs.put_file(write_sample(str(tmp_path / f"r{i}.csv"), 300, seed=i), f"{bucket}/in/r{i}.csv")
    upstream_bulk_convert(str(tmp_path / "r*.csv"), str(tmp_path / "reference"), to_ext="jsonl")
    result = iterable_dask.bulk_convert(
        f"{bucket}/in/", f"{bucket}/out", to_ext="jsonl", parallel=True, scheduler=address, storage_options=so
    )
    assert result.successful_files == 2
    for i in range(2):
        assert fs.cat_file(f"{bucket}/out/r{i}.jsonl") == (tmp_path / "reference" / f"r{i}.jsonl").read_bytes()
    bag = iterable_dask.read_bag(f"{bucket}/in/*.csv", blocksize=5_000, storage_options=so)
    assert client.compute(bag.count()).result() == 600


def test_a_worker_that_cannot_see_a_local_path_names_it_and_itself(client, tmp_path):
    small = write_sample(str(tmp_path / "gone.jsonl"), 20)
    big = write_sample(str(tmp_path / "gone.csv"), 2000)
    bag = iterable_dask.read_bag([small, big], blocksize=20_000)  # a whole-file and several range partitions
    os.remove(small)
    os.remove(big)
    workers = "|".join(a.replace(".", r"\.") for a in client.scheduler_info()["workers"])
    with pytest.raises(iterable_dask.PartitionReadError, match=rf"gone\.jsonl.*on worker (?:{workers}).*shared folder"):
        client.compute(bag.to_delayed()[0]).result()
    with pytest.raises(FileNotFoundError, match=rf"on worker (?:{workers}).*object-store URL.*gone\.csv"):
        client.compute(bag.to_delayed()[-1]).result()
