"""Cluster resolution: client, scheduler, config, active client, embedded cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import dask
import dask.bag as db
import psutil
import pytest
from distributed import Client

import iterable_dask
from iterable_dask import ClusterConnectionError, get_client
from iterable_dask.core.cluster import _embedded

from .conftest import free_port as _free_port
from .conftest import own_cluster


def test_explicit_client_wins(client):
    assert get_client(client) is client
    with dask.config.set({"iterable-dask.scheduler-address": "tcp://127.0.0.1:1"}):
        assert get_client(client, scheduler="tcp://127.0.0.1:1") is client


def test_cluster_objects_are_accepted(cluster):
    resolved = get_client(cluster)
    assert resolved.scheduler.address == cluster.scheduler_address


@pytest.mark.slow
def test_explicit_scheduler_address_with_real_processes(real_scheduler):
    c = get_client(scheduler=real_scheduler)
    assert c.scheduler.address == real_scheduler
    assert get_client(scheduler=real_scheduler) is c  # reused
    bag = db.from_sequence(range(10), npartitions=2).map(lambda x: x * 2)
    assert iterable_dask.compute(bag.sum(), scheduler=real_scheduler) == (90,)


@pytest.mark.slow
def test_config_and_environment_address(real_scheduler):
    with dask.config.set({"iterable-dask.scheduler-address": real_scheduler}):
        assert get_client().scheduler.address == real_scheduler
    with dask.config.set({"scheduler-address": real_scheduler}):
        assert get_client().scheduler.address == real_scheduler


@pytest.mark.slow
def test_config_comes_before_the_active_client(real_scheduler, cluster):
    with Client(cluster) as active:
        assert get_client() is active
        with dask.config.set({"iterable-dask.scheduler-address": real_scheduler}):
            assert get_client().scheduler.address == real_scheduler


@pytest.mark.slow
def test_explicit_scheduler_comes_before_config(real_scheduler, cluster):
    with dask.config.set({"iterable-dask.scheduler-address": "tcp://127.0.0.1:1"}):
        assert get_client(scheduler=real_scheduler).scheduler.address == real_scheduler


def test_active_client_is_picked_up(cluster):
    with Client(cluster) as active:  # what a notebook's Client() does
        assert get_client() is active
    assert not _embedded


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast_with_a_clear_message():
    port = _free_port()  # nothing listens here
    start = time.monotonic()
    with (
        dask.config.set({"iterable-dask.connect-timeout": "2s"}),
        pytest.raises(
            ClusterConnectionError,
            match=rf"Could not connect to the Dask scheduler at 'tcp://127.0.0.1:{port}' within 2s",
        ),
    ):
        get_client(scheduler=f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 20  # 2 s asked; distributed's own default would be 30 s


@pytest.mark.slow
def test_default_timeout_is_shorter_than_distributeds():
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(ClusterConnectionError):
        get_client(scheduler=f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 25  # iterable-dask.connect-timeout is 5 s; distributed's default is 30 s


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="client must be a distributed.Client or a cluster object"):
        get_client(client=42)
    with pytest.raises(TypeError, match="scheduler must be an address string"):
        get_client(scheduler=8786)


def _listening_ips(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _worker_page(worker: dict, page: str) -> int:
    """The HTTP status of a page of a worker's HTTP server on 127.0.0.1."""
    url = f"http://127.0.0.1:{worker['services']['dashboard']}/{page}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _profiling(dask_worker: Any) -> bool:
    return "profile" in dask_worker.periodic_callbacks


@pytest.mark.slow
def test_embedded_workers_profile_when_asked():
    with dask.config.set({"iterable-dask.embedded-cluster.worker-profile": True}):
        client = get_client(workers=2)
        assert list(client.run(_profiling).values()) == [True, True]
    iterable_dask.close_embedded_clusters()
    assert dask.config.get("distributed.worker.profile.enabled")  # the caller's own setting is untouched


@pytest.mark.slow
def test_embedded_cluster_is_lazy_reused_and_bound_to_localhost():
    settings = {"iterable-dask.embedded-cluster.dashboard-address": "127.0.0.1:0"}
    with dask.config.set({**settings, "iterable-dask.embedded-cluster.worker-dashboards": True}):
        assert not _embedded
        c1 = get_client(workers=2)
        c2 = get_client(workers=2)
        assert c1 is c2
        assert (2, "process") in _embedded
        info = c1.scheduler_info()
        assert len(info["workers"]) == 2
        assert all(w["nthreads"] == 1 for w in info["workers"].values())
        assert [_worker_page(w, "status") for w in info["workers"].values()] == [200, 200]
        assert list(c1.run(_profiling).values()) == [False, False]  # no statistical profiler by default
        assert c1.scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
        # Every socket the scheduler, the workers and their dashboards listen on is loopback.
        pids = list(c1.run(os.getpid).values())
        assert len(pids) == 2
        for pid in [*pids, os.getpid()]:
            ips = _listening_ips(pid)
            assert ips, f"process {pid} listens nowhere"
            assert ips <= {"127.0.0.1"}, f"process {pid} listens on {ips}"
        assert "127.0.0.1" in c1.dashboard_link
    iterable_dask.close_embedded_clusters()
    assert not _embedded


def test_thread_mode_embedded_cluster():
    with dask.config.set({"iterable-dask.embedded-cluster.dashboard-address": None}):
        c = get_client(workers=2, mode="thread")
        info = c.scheduler_info()
        assert [w["nthreads"] for w in info["workers"].values()] == [2]
        with pytest.raises(ValueError, match="mode must be one of process, thread"):
            get_client(workers=2, mode="gpu")


def test_local_cluster_context_manager_becomes_the_active_client():
    with iterable_dask.local_cluster(workers=2, mode="process", dashboard_address="127.0.0.1:0") as c:
        assert get_client() is c
        workers = c.scheduler_info()["workers"].values()
        assert len(workers) == 2
        # By default the workers serve no dashboard pages (their HTTP server still answers health checks).
        assert [(_worker_page(w, "status"), _worker_page(w, "health")) for w in workers] == [(404, 200)] * 2
        assert c.scheduler.address.startswith("tcp://127.0.0.1:")
    assert c.status == "closed"


@pytest.mark.slow
def test_embedded_cluster_closes_at_interpreter_exit(tmp_path):
    code = (
        "import iterable_dask, dask.bag as db, dask\n"
        "dask.config.set({'iterable-dask.embedded-cluster.dashboard-address': None})\n"
        "if __name__ == '__main__':\n"
        "    print(iterable_dask.compute(db.from_sequence([1, 2, 3]).sum())[0])\n"
    )
    script = tmp_path / "s.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"
    assert "Traceback" not in out.stderr


def test_local_cluster_rejects_a_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of process, thread"), iterable_dask.local_cluster(mode="x"):
        pass


def test_compute_with_explicit_cluster(cluster):
    assert iterable_dask.compute(db.from_sequence([1, 2]).sum(), client=cluster) == (3,)


def test_cluster_without_get_client_is_connected_by_address():
    class Handle:  # e.g. a cluster manager object known only by its address
        def __init__(self, address):
            self.scheduler_address = address

    with own_cluster(1, processes=False, protocol="tcp://", dashboard_address=None) as own:
        address = own.cluster.scheduler_address
        assert get_client(Handle(address)).scheduler.address == address
