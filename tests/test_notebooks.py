"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel, with its own cluster, and cleans up.

Each run starts a fresh ``python3`` kernel (this virtual environment's interpreter) through nbclient, with the
environment the test gives it, working in ``tmp_path``. The kernel is shut down after the run, pass or fail, and
every process it started (marked by a variable in its environment that they inherit) must be gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

import nbformat
import psutil
import pytest
import s3fs
from distributed import Client
from iterable import open_iterable
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from iterable_dask.sample import sample_records

from .conftest import REPO, free_port
from .helpers import sequential
from .test_compose import (
    argv,
    compose_cluster,
    environment,
    local_environment,
    option,
    outside_environment,
    service,
)

NOTEBOOKS = os.path.join(REPO, "notebooks")
QUICKSTART = os.path.join(NOTEBOOKS, "01_local_quickstart.ipynb")
CLUSTER = os.path.join(NOTEBOOKS, "02_cluster_and_object_store.ipynb")
MARKER = "ITERABLE_DASK_NOTEBOOK_RUN"
ROWS = 150  # records per sample file (ITERABLE_DASK_NOTEBOOK_ROWS); the notebooks write 4 files
FILES = 4
WIDGET = "application/vnd.jupyter.widget-view+json"
BOKEH = "application/vnd.bokehjs_exec.v0+json"


def kernel_environment(**variables: str) -> dict[str, str]:
    """The kernel's environment: this one without Dask, S3 and iterable_dask variables, plus ``variables``."""
    return {**outside_environment(), "ITERABLE_DASK_NOTEBOOK_ROWS": str(ROWS), **variables}


def marked(marker: str) -> list[psutil.Process]:
    """Running processes whose environment holds ``marker`` (the kernel and all it started)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):  # gone, a zombie, or not ours to read
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(MARKER) == marker:
                found.append(proc)
    return found


def run_notebook(nb: Any, cwd: str, env: dict[str, str], marker: str | None = None) -> Any:
    """Execute ``nb`` (a path or a notebook) in a new kernel; the executed notebook. A failing cell raises.

    Afterwards, pass or fail, waits until no process of the run is left (killing and failing if one is).
    """
    if isinstance(nb, str):
        nb = nbformat.read(nb, as_version=4)
    marker = marker or uuid.uuid4().hex
    client = NotebookClient(nb, kernel_name="python3", timeout=150, resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env={**env, MARKER: marker})
    finally:
        deadline = time.monotonic() + 60
        while (left := marked(marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        assert not left, f"processes of the notebook run still alive: {[p.cmdline() for p in left]}"
    return nb


def outputs(nb: Any) -> list[Any]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def mime_types(nb: Any) -> set[str]:
    return {mime for out in outputs(nb) for mime in out.get("data", {})}


def html(nb: Any) -> str:
    return "\n".join(out["data"]["text/html"] for out in outputs(nb) if "text/html" in out.get("data", {}))


def stdout(nb: Any) -> str:
    return "".join(out.text for out in outputs(nb) if out.output_type == "stream" and out.name == "stdout")


def summary(nb: Any) -> dict[str, Any]:
    """The JSON line the last cell prints."""
    last = nb.cells[-1]
    assert last.cell_type == "code"
    (text,) = [out.text for out in last.outputs if out.output_type == "stream" and out.name == "stdout"]
    return json.loads(text.strip().splitlines()[-1])


def by_city(records: Iterable[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Records and total amount per city, as the notebooks report them."""
    totals: dict[str, list[Any]] = {}
    for record in records:
        entry = totals.setdefault(record["city"], [0, 0.0])
        entry[0] += 1
        entry[1] += float(record["amount"])
    return {city: {"records": n, "amount": pytest.approx(total, abs=0.01)} for city, (n, total) in totals.items()}


def progress_bars(nb: Any) -> list[dict[str, Any]]:
    """The state of every progress-bar widget the run left (nbclient stores the widgets' last state)."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [w["state"] for w in state.values() if w["model_name"] in ("FloatProgressModel", "IntProgressModel")]


def cell_with(nb: Any, text: str) -> Any:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    return cell


def test_committed_notebooks_have_no_outputs_and_are_all_tested():
    paths = sorted(os.path.join(NOTEBOOKS, name) for name in os.listdir(NOTEBOOKS) if name.endswith(".ipynb"))
    assert paths == [QUICKSTART, CLUSTER]  # a new notebook needs a test here
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path
        assert "widgets" not in nb.metadata, path
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (path, cell.source[:60])


@pytest.mark.slow
def test_quickstart(tmp_path):
    # As in the compose notebook service, the environment names a scheduler (here one that is not there):
    # the quickstart must run everything on its own local cluster.
    env = kernel_environment(
        ITERABLE_DASK_DATA=str(tmp_path), DASK_ITERABLE_DASK__SCHEDULER_ADDRESS=f"tcp://127.0.0.1:{free_port()}"
    )
    nb = run_notebook(QUICKSTART, str(tmp_path), env)
    result = summary(nb)
    work = tmp_path / "quickstart"
    assert result["work"] == str(work)
    assert (result["files"], result["rows"], result["workers"]) == (FILES, ROWS, 2)
    assert result["dashboard"].startswith("http://127.0.0.1:")
    assert f'href="{result["dashboard"]}"' in html(nb)

    # The CPU-bound pipeline: the parallel output equals iterabledata's sequential one.
    assert result["pipeline"]["records"] == ROWS and result["pipeline"]["mode"] == "process"
    scored = sequential(str(work / "scored-parallel.jsonl"))
    assert scored == sequential(str(work / "scored-sequential.jsonl"))
    assert [r["id"] for r in scored] == [r["id"] for r in sequential(str(work / "csv" / "part-0.csv"))]
    assert all(0 <= int(r["score"]) < 1000 for r in scored)
    assert "iterabledata, sequential" in html(nb)

    # The bulk conversion: every Parquet file holds its CSV file's records; the bar was a widget and finished.
    assert result["converted"] == {"files": FILES, "records": FILES * ROWS}
    for i in range(FILES):
        assert sequential(str(work / "parquet" / f"part-{i}.parquet")) == sequential(
            str(work / "csv" / f"part-{i}.csv")
        )
    convert_cell = cell_with(nb, "bulk_convert(")
    assert any(WIDGET in out.get("data", {}) for out in convert_cell.outputs)
    assert [(bar["value"], bar["max"]) for bar in progress_bars(nb)] == [(FILES, FILES)]

    # read_bag's analysis, and its plot.
    assert result["by_city"] == by_city(r for i in range(FILES) for r in sample_records(ROWS, seed=i, start=i * ROWS))
    assert BOKEH in mime_types(nb)
    assert not [out for out in outputs(nb) if out.output_type == "error"]


def read_objects(fs: s3fs.S3FileSystem, keys: list[str], scratch: str) -> list[list[dict[str, Any]]]:
    """The records of each object as iterabledata reads a downloaded copy."""
    out = []
    for i, key in enumerate(keys):
        copy = os.path.join(scratch, f"{i}-{os.path.basename(key)}")
        fs.get(key, copy)
        with open_iterable(copy) as records:
            out.append(list(records))
    return out


def check_cluster_run(result: dict[str, Any], raw: list[list[dict]], parquet: list[list[dict]]) -> None:
    """The files the cluster notebook wrote: the sample records in CSV, and the same records in Parquet."""
    assert len(raw) == len(parquet) == FILES
    assert [r for part in raw for r in part] == list(sample_records(FILES * ROWS))
    assert [len(part) for part in raw] == [ROWS] * FILES
    assert parquet == raw
    assert result["records"] == FILES * ROWS
    assert result["by_city"] == by_city(sample_records(FILES * ROWS))


@pytest.fixture
def compose_bucket(s3_server):
    """The compose file's bucket on the moto server (what the createbucket service does): ``(fs, bucket)``."""
    _, options = s3_server
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    bucket = environment("worker")["ITERABLE_DASK_BUCKET"].removeprefix("s3://")
    fs.mkdir(bucket)
    try:
        yield fs, bucket
    finally:
        fs.rm(bucket, recursive=True)


@pytest.mark.slow
def test_cluster_notebook_on_the_compose_services(tmp_path, s3_server, compose_bucket):
    """The compose scheduler and workers, from the compose file's command lines and environments, and its bucket."""
    endpoint, _ = s3_server
    fs, bucket = compose_bucket
    with compose_cluster(str(tmp_path), s3_endpoint=endpoint, data=str(tmp_path)) as address:
        env = kernel_environment(
            **local_environment("notebook", scheduler=address, s3_endpoint=endpoint, data=str(tmp_path))
        )
        nb = run_notebook(CLUSTER, str(tmp_path), env)
        with Client(address, timeout=30, set_as_default=False) as own:
            workers = own.scheduler_info()["workers"]
            dashboard = own.scheduler_info()["services"]["dashboard"]
    result = summary(nb)
    assert (result["cluster"], result["scheduler"]) == ("remote", address)
    assert result["workers"] == sorted(workers)
    # The compose workers as their command line says: a nanny each, its threads and memory limit.
    replicas = service("worker")["deploy"]["replicas"] * int(option(argv("worker"), "--nworkers"))
    assert len(workers) == replicas and all(w["nanny"] for w in workers.values())
    assert {w["nthreads"] for w in workers.values()} == {int(option(argv("worker"), "--nthreads"))}
    assert {w["memory_limit"] for w in workers.values()} == {4 * 2**30}  # --memory-limit 4GiB
    # The compose link template makes the dashboard link the one published on 127.0.0.1.
    assert f'href="http://127.0.0.1:{dashboard}/status"' in html(nb)
    assert WIDGET in mime_types(nb)

    # From outside the kernel: the objects it wrote, read by iterabledata.
    fs.invalidate_cache()
    raw_keys = sorted(fs.glob(f"{bucket}/cluster-notebook/raw/*.csv"))
    parquet_keys = sorted(fs.glob(f"{bucket}/cluster-notebook/parquet/*.parquet"))
    assert [k.removeprefix("s3://") for k in result["raw"]] == raw_keys
    assert result["parquet"] == parquet_keys
    scratch = tmp_path / "check"
    scratch.mkdir()
    check_cluster_run(result, read_objects(fs, raw_keys, str(scratch)), read_objects(fs, parquet_keys, str(scratch)))
    assert not (tmp_path / "cluster-notebook").exists()  # with a bucket, nothing in the data folder


@pytest.mark.slow
def test_cluster_notebook_falls_back_to_a_local_cluster_and_a_temporary_folder(tmp_path):
    """A laptop without compose: the scheduler does not answer, no bucket, no data folder."""
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    (tmp_path / "tmp").mkdir()
    env = kernel_environment(
        DASK_ITERABLE_DASK__SCHEDULER_ADDRESS=unreachable,
        DASK_ITERABLE_DASK__CONNECT_TIMEOUT="1s",
        TMPDIR=str(tmp_path / "tmp"),  # the notebook's temporary folder lands in tmp_path whatever happens
    )
    nb = run_notebook(CLUSTER, str(tmp_path), env)
    result = summary(nb)
    assert result["cluster"] == "local" and result["scheduler"] != unreachable
    assert f"no scheduler answers at {unreachable}" in stdout(nb)
    assert "working in the temporary folder" in stdout(nb)
    assert len(result["workers"]) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in result["workers"])
    # It worked in a temporary folder (its files checked against iterabledata in the kernel), then removed it.
    root = result["root"]
    assert os.path.dirname(root) == str(tmp_path / "tmp")
    assert [os.path.relpath(p, root) for p in result["raw"]] == [f"raw/part-{i:05d}.csv" for i in range(FILES)]
    assert [os.path.relpath(p, root) for p in result["parquet"]] == [
        f"parquet/part-{i:05d}.parquet" for i in range(FILES)
    ]
    assert result["records"] == FILES * ROWS
    assert result["by_city"] == by_city(sample_records(FILES * ROWS))
    assert not os.path.exists(root)


@pytest.mark.slow
def test_a_failing_cell_fails_the_run_and_its_cluster_stops(tmp_path):
    start = """
import json, os, sys
from distributed import Client, LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0")
client = Client(cluster)
workers = client.run(lambda: (os.getpid(), os.environ.get("ITERABLE_DASK_NOTEBOOK_RUN")))
print(json.dumps({"prefix": sys.prefix, "kernel": os.getpid(), "workers": list(workers.values())}))
"""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nb.cells = [
        nbformat.v4.new_code_cell(start),
        nbformat.v4.new_code_cell("raise RuntimeError('this cell fails on purpose')"),
        nbformat.v4.new_code_cell("print('not reached')"),
    ]
    marker = uuid.uuid4().hex
    with pytest.raises(CellExecutionError, match="this cell fails on purpose"):
        run_notebook(nb, str(tmp_path), kernel_environment(), marker=marker)
    assert nb.cells[2].outputs == []
    started = json.loads(nb.cells[0].outputs[0].text)
    assert started["prefix"] == sys.prefix  # the kernel is this environment's interpreter
    # The workers carried the run's marker, so run_notebook waited for them too; they are gone.
    assert [m for _, m in started["workers"]] == [marker]
    for pid in [started["kernel"], *(pid for pid, _ in started["workers"])]:
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).environ().get(MARKER) != marker
