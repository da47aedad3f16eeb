"""The docstring examples run as tests (``pytest --doctest-modules`` over ``iterable_dask/``).

Each example runs in a folder of its own holding the files the examples name
(``big.csv``, ``in.csv``, ``data/*.csv``, ``logs/*.jsonl.gz``, ``a.csv``,
``b.jsonl``, ``b.jsonl.gz``, ``c.parquet``; the demo's sample records), and
every parallel call in them runs on a real LocalCluster of 2 worker
processes x 1 thread on 127.0.0.1, found through the
``iterable-dask.scheduler-address`` setting, as a deployed user's would be.
The suite's own fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator

import dask
import pytest

#: The files the examples name, and how many sample records each holds.
EXAMPLE_FILES = {
    "big.csv": 1000,
    "in.csv": 100,
    "a.csv": 10,
    "b.jsonl": 10,
    "b.jsonl.gz": 10,
    "c.parquet": 10,
    **{f"data/part-{i}.csv": 250 for i in range(4)},
    **{f"logs/day-{i}.jsonl.gz": 50 for i in range(3)},
}


@pytest.fixture(scope="session")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder with every file the docstring examples read (copied for each example)."""
    from iterable_dask.sample import write_sample

    folder = str(tmp_path_factory.mktemp("doctest-files"))
    for start, (name, rows) in enumerate(EXAMPLE_FILES.items()):
        write_sample(os.path.join(folder, name), rows, seed=start, start=start * 1000)
    return folder


@pytest.fixture(scope="session")
def example_cluster() -> Iterator[str]:
    """The address of a LocalCluster (2 worker processes x 1 thread, 127.0.0.1) for the examples."""
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address
        import iterable_dask

        iterable_dask.close_embedded_clusters()  # the client the examples connected by address


@pytest.fixture(autouse=True)
def _doctest_folder(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a docstring example: its own copy of the example files as the working folder, and the cluster.

    Other tests pass through untouched (no folder, no cluster).
    """
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    folder = request.getfixturevalue("tmp_path")
    shutil.copytree(request.getfixturevalue("example_files"), folder, dirs_exist_ok=True)
    request.getfixturevalue("monkeypatch").chdir(folder)
    address = request.getfixturevalue("example_cluster")
    with dask.config.set({"iterable-dask.scheduler-address": address}):
        yield
