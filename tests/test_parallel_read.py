"""parallel_read: same records as a sequential read, bounded memory, clean early exit, errors."""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import threading
import time
from collections import Counter
from typing import Any

import dask
import psutil
import pytest
from iterable.base import BaseIterable

from iterable_dask import FileWriteError, SourceReadError, parallel_read
from iterable_dask.core.chunks import pack_tree, unpack
from iterable_dask.io.partitions import JSONLinesRange, WholeFile
from iterable_dask.sample import write_sample
from iterable_dask.streams.packed import ReadPacked
from iterable_dask.streams.read import ParallelReader

from .helpers import sequential

FORMATS = ["csv", "jsonl", "jsonl.gz", "parquet", "csv.gz", "tsv"]
# Thread mode always; process mode on the session's real LocalCluster.
MODES = ["thread", "process"]


class Counting(BaseIterable):
    """An in-memory source counting the records taken from it; fails at ``fail_at`` when given."""

    def __init__(self, name: str, n: int, fail_at: int | None = None) -> None:
        super().__init__()
        self.filename = name
        self.n = n
        self.fail_at = fail_at
        self.taken = 0

    @staticmethod
    def id() -> str:
        return "counting"

    def reset(self) -> None:
        self.taken = 0

    def read(self, skip_empty: bool = True) -> dict[str, Any]:
        if self.taken == self.fail_at:
            raise RuntimeError(f"{self.filename} broke at record {self.taken}")
        if self.taken >= self.n:
            raise StopIteration
        self.taken += 1
        return {"src": self.filename, "i": self.taken - 1}


def _key(record: Any) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def _multiset(records: list[Any]) -> Counter:
    return Counter(map(_key, records))


@pytest.fixture
def mixed(tmp_path):
    """Files of several formats and sizes (one much longer, so the end is not the first source's)."""
    sizes = [700, 250, 1900, 400, 60, 1]
    return [
        write_sample(str(tmp_path / f"f{i}.{ext}"), n, seed=i, start=1000 * i)
        for i, (ext, n) in enumerate(zip(FORMATS, sizes, strict=True))
    ]


def _bad_jsonl(path: str, good: int) -> str:
    """A JSON Lines file whose line ``good + 1`` is malformed (``good`` records come first)."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(good):
            f.write(json.dumps({"bad-file": i}) + "\n")
        f.write('{"broken": \n')
        for i in range(good, good + 10):
            f.write(json.dumps({"bad-file": i}) + "\n")
    return path


def _options(mode: str, client: Any) -> dict[str, Any]:
    return {"client": client} if mode == "process" else {"mode": "thread"}


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("parallel-read")]


def _open_files() -> set[str]:
    # /proc files come and go (distributed's system monitor reads them).
    return {f.path for f in psutil.Process().open_files() if not f.path.startswith("/proc/")}


@pytest.mark.parametrize("mode", MODES)
def test_unordered_gives_the_multiset_of_a_sequential_read(mixed, mode, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    expected = [r for p in mixed for r in sequential(p)]
    with parallel_read(mixed, workers=3, buffer=200, chunk_size=50, blocksize=4000, **_options(mode, client)) as r:
        got = list(r)
    assert _multiset(got) == _multiset(expected)


@pytest.mark.parametrize("mode", MODES)
def test_ordered_gives_the_sequence_of_a_sequential_read(mixed, mode, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    counting = Counting("mem", 333)
    sources = [*mixed[:3], counting, *mixed[3:]]
    expected = [r for p in mixed[:3] for r in sequential(p)]
    expected += [{"src": "mem", "i": i} for i in range(333)]
    expected += [r for p in mixed[3:] for r in sequential(p)]
    reader = parallel_read(sources, workers=2, ordered=True, buffer=120, chunk_size=40, **_options(mode, client))
    assert list(reader) == expected
    assert reader.closed


def test_with_source_pairs_name_each_record(mixed):
    pairs = list(parallel_read(mixed, with_source=True, ordered=True, chunk_size=64))
    assert pairs == [(p, r) for p in mixed for r in sequential(p)]


def test_iterableargs_reach_open_iterable(tmp_path):
    path = str(tmp_path / "semi.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("a;b\n1;2\n3;4\n")
    assert list(parallel_read([path], delimiter=";")) == sequential(path, delimiter=";")


def test_next_reads_piecewise_and_a_for_loop_continues(mixed):
    expected = [r for p in mixed for r in sequential(p)]
    with parallel_read(mixed, ordered=True, chunk_size=7) as reader:
        head = [next(reader) for _ in range(10)]
        assert head + list(reader) == expected
    with pytest.raises(StopIteration):
        next(reader)


def test_in_memory_iterables_are_read_but_not_closed():
    sources = [Counting(f"m{i}", 100 * i) for i in range(4)]
    assert len(list(parallel_read(sources, workers=2))) == 600
    assert all(not s._closed for s in sources)


# --- bounded memory -------------------------------------------------------------


def _settled(read: Any, timeout: float = 30.0) -> int:
    """Poll ``read()`` until it stops changing (five polls alike); return it."""
    deadline = time.monotonic() + timeout
    last, same = read(), 0
    while same < 5:
        assert time.monotonic() < deadline, "the readers never settled"
        time.sleep(0.05)
        now = read()
        same = same + 1 if now == last else 0
        last = now
    return last


@pytest.mark.parametrize("ordered", [False, True])
def test_a_stalled_consumer_stalls_the_readers(ordered):
    sources = [Counting(f"s{i}", 50_000) for i in range(3)]
    buffer, chunk, workers = 300, 50, 3
    with parallel_read(sources, workers=workers, ordered=ordered, buffer=buffer, chunk_size=chunk) as reader:
        for consumed in range(1, 4):
            next(reader)
            taken = _settled(lambda: sum(s.taken for s in sources))  # the readers block on the full buffer
            assert 0 < taken <= consumed + buffer + (workers + 1) * chunk
    assert sum(s.taken for s in sources) < 1000


def test_process_mode_keeps_a_bounded_number_of_tasks_in_flight(tmp_path, client):
    paths = [write_sample(str(tmp_path / f"p{i}.jsonl.gz"), 200, seed=i) for i in range(12)]
    in_flight = 2 * sum(client.nthreads().values())
    with parallel_read(paths, client=client, buffer=100) as reader:
        next(reader)
        seen = [len(client.run_on_scheduler(_read_tasks)) for _ in range(20)]  # sampled while stalled
        assert max(seen) > 0 and all(n <= in_flight for n in seen)
        _settled(lambda: len(client.run_on_scheduler(_read_tasks)))
        assert reader._state.buffers[0].held <= 200  # one partition (a whole small file) waits
    _eventually(lambda: not client.run_on_scheduler(_read_tasks))


def _read_tasks(dask_scheduler: Any) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks if str(k).startswith("iterable-read-source-")]


def _eventually(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# --- early exit and leaks ----------------------------------------------------------


def _big_files(tmp_path, n=6, records=5000) -> list[str]:
    exts = ["jsonl", "csv", "jsonl.gz"]
    return [write_sample(str(tmp_path / f"big{i}.{exts[i % 3]}"), records, seed=i) for i in range(n)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["break", "with", "exception", "dropped"])
def test_early_exit_stops_threads_and_closes_files(tmp_path, mode, how, request):
    client = request.getfixturevalue("client") if mode == "process" else None
    paths = _big_files(tmp_path)
    list(parallel_read(paths[:1], **_options(mode, client)))  # warm up (lazy threads of distributed)
    threads, files = threading.active_count(), _open_files()
    kwargs = dict(workers=3, buffer=100, chunk_size=20, blocksize=20_000, **_options(mode, client))
    if how == "break":
        for _ in parallel_read(paths, **kwargs):
            break
    elif how == "with":
        with parallel_read(paths, **kwargs) as reader:
            next(reader)
            _eventually(lambda: sum(b.held for b in reader._state.buffers) > 0)  # readers filled the buffer
    elif how == "exception":
        with pytest.raises(KeyError, match="stop here"), parallel_read(paths, **kwargs) as reader:
            for _ in reader:
                raise KeyError("stop here")
    else:
        reader = parallel_read(paths, **kwargs)
        next(reader)
        del reader
        gc.collect()
    assert _reader_threads() == []
    assert threading.active_count() == threads
    assert _open_files() == files
    if mode == "process":
        _eventually(lambda: not client.run_on_scheduler(_read_tasks))


def test_close_is_idempotent_and_prompt(tmp_path):
    reader = parallel_read(_big_files(tmp_path, n=3), buffer=50, chunk_size=10)
    next(reader)
    _eventually(lambda: sum(b.held for b in reader._state.buffers) > 0)  # readers blocked on the full buffer
    reader.close()
    reader.close()
    assert reader.closed and list(reader) == []
    assert _reader_threads() == []  # close joined them


# --- errors -----------------------------------------------------------------------------


def test_a_failing_file_raises_naming_it_and_stops_the_others(tmp_path, mixed):
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=300)
    reader = parallel_read([*mixed, bad], workers=2, buffer=100, chunk_size=20)
    with pytest.raises(SourceReadError, match=r"bad\.jsonl.*FormatParseError") as info:
        for _ in reader:
            pass
    assert info.value.source == bad
    assert type(info.value.__cause__).__name__ == "FormatParseError"
    assert reader.closed and _reader_threads() == []


def test_a_failing_iterable_raises_with_its_cause():
    sources = [Counting("ok", 1000), Counting("broken", 1000, fail_at=500)]
    message = r"Counting\('broken'\).*RuntimeError: broken broke at record 500"
    with pytest.raises(SourceReadError, match=message) as info:
        list(parallel_read(sources, ordered=True, chunk_size=64))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_skip_yields_what_a_sequential_read_gave_before_the_failure(tmp_path, mixed, caplog):
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=300)
    broken = Counting("broken", 1000, fail_at=123)
    reader = parallel_read([*mixed, bad, broken], on_error="skip", chunk_size=50)
    with caplog.at_level(logging.WARNING, logger="iterable_dask.streams.read"):
        got = list(reader)
    expected = [r for p in mixed for r in sequential(p)]
    expected += [{"bad-file": i} for i in range(300)] + [{"src": "broken", "i": i} for i in range(123)]
    assert _multiset(got) == _multiset(expected)
    assert sorted(name for name, _ in reader.failed_sources) == sorted([bad, "Counting('broken')"])
    assert "skipping source" in caplog.text


def test_skip_keeps_order_of_the_good_sources(tmp_path, mixed):
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=30)
    got = list(parallel_read([mixed[0], bad, mixed[1]], ordered=True, on_error="skip", chunk_size=8))
    assert got == sequential(mixed[0]) + [{"bad-file": i} for i in range(30)] + sequential(mixed[1])


@pytest.mark.parametrize(
    ("blocksize", "cause"), [(None, "after record 300: FormatParseError"), (2000, "Malformed JSON line")]
)
def test_process_mode_failure_names_the_source(tmp_path, mixed, client, blocksize, cause):
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=300)
    with pytest.raises(SourceReadError, match=rf"bad\.jsonl.*PartitionReadError: .*{cause}") as info:
        list(parallel_read([*mixed, bad], client=client, blocksize=blocksize))
    assert info.value.source == bad
    assert type(info.value.__cause__).__name__ == "PartitionReadError"


def _install_tblib_pickling() -> None:
    """What a worker does once it reports a failure: those errors' classes then pickle causes and contexts."""
    from iterable.exceptions import FormatParseError
    from tblib import pickling_support

    from iterable_dask import PartitionReadError

    pickling_support.install(PartitionReadError("x"), FormatParseError("jsonl", "x"))


def test_process_mode_errors_cross_the_wire_without_causes(tmp_path, client):
    client.run(_install_tblib_pickling)
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=3)
    with pytest.raises(SourceReadError, match=r"bad\.jsonl.*FormatParseError") as info:
        list(parallel_read([bad], client=client, blocksize=None))
    cause = info.value.__cause__
    assert type(cause).__name__ == "PartitionReadError" and cause.__cause__ is None and cause.__context__ is None


def test_process_mode_skip_drops_the_failing_partition(tmp_path, mixed, client):
    bad = _bad_jsonl(str(tmp_path / "bad.jsonl"), good=300)
    reader = parallel_read([*mixed, bad], client=client, on_error="skip", blocksize=None, ordered=True)
    assert list(reader) == [r for p in mixed for r in sequential(p)]
    assert [name for name, _ in reader.failed_sources] == [bad]


# --- arguments, configuration, pickling -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"on_error": "ignore"}, ValueError, "on_error must be 'raise' or 'skip'"),
        ({"mode": "fork"}, ValueError, "mode must be 'thread' or 'process'"),
        ({"mode": "thread", "scheduler": "tcp://127.0.0.1:1"}, ValueError, "mode='thread' reads in this process"),
        ({"buffer": 0}, ValueError, "buffer must be >= 1"),
    ],
)
def test_bad_arguments_fail_up_front(mixed, kwargs, error, message):
    with pytest.raises(error, match=message):
        parallel_read(mixed, **kwargs)


def test_missing_source_fails_up_front(tmp_path):
    with pytest.raises(FileNotFoundError, match="No files match"):
        parallel_read(str(tmp_path / "*.csv"))


def test_buffer_default_comes_from_config(mixed):
    with dask.config.set({"iterable-dask.read-buffer": 64, "iterable-dask.chunk-size": 1000}):
        reader = parallel_read(mixed)
    assert (reader.buffer, reader.chunk_size) == (64, 64)
    assert isinstance(reader, ParallelReader) and reader.mode == "thread"
    reader.close()


def test_parallel_mode_comes_from_config(mixed, cluster):
    settings = {"iterable-dask.parallel-mode": "process", "iterable-dask.scheduler-address": cluster.scheduler_address}
    with dask.config.set(settings), parallel_read(mixed, ordered=True) as reader:
        assert reader.mode == "process"
        assert list(reader) == [r for p in mixed for r in sequential(p)]


def test_worker_callables_and_errors_pickle(tmp_path):
    path = write_sample(str(tmp_path / "a.jsonl"), 10)
    for task in [ReadPacked(WholeFile(path, {}), 4), ReadPacked(JSONLinesRange(path, 0, os.path.getsize(path)), 4)]:
        clone = pickle.loads(pickle.dumps(task))
        assert clone == task
        chunks = pickle.loads(pickle.dumps(clone()))
        assert [len(c) for c in chunks] == [4, 4, 2]
        assert [r for c in chunks for r in unpack(c)] == sequential(path)
    error = pickle.loads(pickle.dumps(SourceReadError("Failed to read source 'x'", source="x")))
    assert (error.source, str(error)) == ("x", "Failed to read source 'x'")
    error = pickle.loads(pickle.dumps(FileWriteError("Failed to write 'y'", path="y")))
    assert (error.path, str(error)) == ("y", "Failed to write 'y'")


def test_pack_tree_round_trips_and_falls_back_on_cycles():
    records = [{"a": [1, 2.5, None], "b": {"c": "d"}}, {"e": b"bytes", "f": (1, 2)}]
    assert unpack(pack_tree(records)) == records
    shared = {"k": "v"}
    assert unpack(pack_tree([shared, shared])) == [shared, shared]
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    clone = unpack(pack_tree([cyclic]))[0]
    assert clone[0] is clone


def test_process_mode_reads_many_small_files_in_few_tasks(tmp_path, client):
    """Small files share tasks (by bytes); every source's records still arrive once, in order, each error its own."""
    paths = [write_sample(str(tmp_path / f"s{i:03d}.{'csv' if i % 2 else 'jsonl'}"), 12, seed=i) for i in range(80)]
    broken = tmp_path / "s040.jsonl"
    broken.write_text('{"a": 1}\n{"a": \n')
    expected = [r for p in paths if p != str(broken) for r in sequential(p)]
    before = set(client.run_on_scheduler(_read_task_log))
    with parallel_read(paths, client=client, ordered=True, on_error="skip") as reader:
        got = list(reader)
        failed = reader.failed_sources
    assert got == expected
    assert [name for name, _ in failed] == [str(broken)] and "s040.jsonl" in str(failed[0][1])
    tasks = set(client.run_on_scheduler(_read_task_log)) - before
    assert 1 <= len(tasks) <= 2 * 4 + 1  # 80 files of about 1 KB: about 4 tasks per worker thread, not 80


def _read_task_log(dask_scheduler: Any) -> list[str]:
    return [str(e[0]) for e in dask_scheduler.transition_log if str(e[0]).startswith("iterable-read-source-")]
