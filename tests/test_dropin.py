"""Drop-in fidelity: what iterabledata's own behaviour is, parallel=True does too (edge cases included)."""

from __future__ import annotations

import logging
import os

import pytest
from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.convert.core import convert as upstream_convert
from iterable.pipeline import pipeline as upstream_pipeline

import iterable_dask
from iterable_dask.sample import write_sample


@pytest.fixture
def small_csv(tmp_path):
    return write_sample(str(tmp_path / "in.csv"), 60, seed=2)


def _run(source, destination, func, **parallel):
    with open_iterable(source) as src, open_iterable(destination, mode="w") as dst:
        return iterable_dask.pipeline(src, dst, func, **parallel)


@pytest.mark.parametrize("parallel", [{}, {"parallel": True, "parallel_mode": "thread", "chunk_size": 7}])
def test_thread_mode_runs_the_callers_own_function(parallel, small_csv, tmp_path):
    """A closure that appends to a list or counts sees every record, as with iterabledata (threads share memory)."""
    seen: list[str] = []
    calls = [0]

    def process(record, state):
        seen.append(record["id"])
        calls[0] += 1
        return record

    result = _run(small_csv, str(tmp_path / "out.jsonl"), process, **parallel)
    assert result.rec_count == calls[0] == 60
    assert sorted(seen, key=int) == [str(i) for i in range(60)]


def test_thread_mode_class_instance_state_is_the_callers(small_csv, tmp_path):
    class Counter:
        def __init__(self):
            self.n = 0

        def __call__(self, record, state):
            self.n += 1
            return record

    counter = Counter()
    _run(small_csv, str(tmp_path / "out.jsonl"), counter, parallel=True, parallel_mode="thread", chunk_size=9)
    assert counter.n == 60


def test_process_mode_works_on_copies(small_csv, tmp_path, client):
    """Worker processes get a copy of the function: the caller's closure stays untouched (the README says so)."""
    seen: list[str] = []

    def process(record, state):
        seen.append(record["id"])
        state["n"] = state.get("n", 0) + 1
        return record

    start_state: dict = {}
    with open_iterable(small_csv) as src, open_iterable(str(tmp_path / "o.jsonl"), mode="w") as dst:
        result = iterable_dask.pipeline(
            src, dst, process, start_state=start_state, parallel=True, parallel_mode="process", client=client
        )
    assert result.rec_count == 60 and seen == []
    assert start_state == {"n": 60}  # state is what crosses back, merged into the caller's dict


def test_start_state_is_updated_in_place_like_upstream(small_csv, tmp_path):
    def process(record, state):
        state["count"] += 1
        state["sum"] += int(record["id"])
        return record

    expected = {"count": 0, "sum": 0}
    with open_iterable(small_csv) as src, open_iterable(str(tmp_path / "a.jsonl"), mode="w") as dst:
        upstream_pipeline(src, dst, process, start_state=expected)
    state = {"count": 0, "sum": 0}
    _run(small_csv, str(tmp_path / "b.jsonl"), process, start_state=state, parallel=True, parallel_mode="thread")
    assert state == expected == {"count": 60, "sum": sum(range(60))}


@pytest.mark.parametrize("content", ["", "id,name\n"], ids=["empty", "header-only"])
@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_convert_a_source_without_records_writes_what_iterabledata_writes(content, ext, tmp_path, client, caplog):
    source = tmp_path / "in.csv"
    source.write_text(content)
    upstream_convert(str(source), str(tmp_path / f"ref.{ext}"))
    with caplog.at_level(logging.WARNING, logger="iterable_dask.conversion.api"):
        result = iterable_dask.convert(str(source), str(tmp_path / f"out.{ext}"), parallel=True, client=client)
    assert (result.rows_in, result.rows_out) == (0, 0)
    assert (tmp_path / f"out.{ext}").read_bytes() == (tmp_path / f"ref.{ext}").read_bytes()
    assert "has no records" in caplog.text
    with pytest.raises(iterable_dask.EmptySourceError, match=r"in\.csv"):
        iterable_dask.convert(str(source), str(tmp_path / f"strict.{ext}"), parallel=True, client=client, strict=True)
    assert not (tmp_path / f"strict.{ext}").exists()


def test_atomic_convert_removes_iterabledatas_stale_temporary(small_csv, tmp_path, client):
    target = tmp_path / "out.jsonl"
    stale = tmp_path / "out.jsonl.tmp"  # what an interrupted iterabledata run leaves
    stale.write_text("stale")
    iterable_dask.convert(small_csv, str(target), atomic=True, parallel=True, client=client)
    assert not stale.exists() and target.exists()
    (tmp_path / "in").mkdir()
    os.replace(small_csv, tmp_path / "in" / "a.csv")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.jsonl.tmp").write_text("stale")
    iterable_dask.bulk_convert(
        str(tmp_path / "in"), str(tmp_path / "out"), to_ext="jsonl", atomic=True, parallel=True, client=client
    )
    assert sorted(os.listdir(tmp_path / "out")) == ["a.jsonl"]


def test_bulk_convert_of_an_empty_glob_is_an_empty_result(tmp_path, caplog):
    pattern, dest = str(tmp_path / "nothing" / "*.csv"), str(tmp_path / "out")
    expected = upstream_bulk_convert(pattern, dest, to_ext="jsonl")
    with caplog.at_level(logging.WARNING):
        result = iterable_dask.bulk_convert(pattern, dest, to_ext="jsonl", parallel=True)
    assert "No files found matching source" in caplog.text
    fields = ("total_files", "successful_files", "failed_files", "total_rows_in", "total_rows_out", "file_results")
    assert [getattr(result, f) for f in fields] == [getattr(expected, f) for f in fields] == [0, 0, 0, 0, 0, []]
    assert result.errors == expected.errors == []
    assert not os.path.exists(dest)
    with pytest.raises(FileNotFoundError, match="No files match"):
        iterable_dask.bulk_convert(pattern, dest, to_ext="jsonl", parallel=True, strict=True)
