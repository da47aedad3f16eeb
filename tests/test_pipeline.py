"""pipeline(parallel=True) against iterabledata's own sequential pipeline, record for record."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections import Counter

import pytest
from iterable import open_iterable
from iterable.pipeline import pipeline as upstream_pipeline
from iterable.types import PipelineResult

import iterable_dask
from iterable_dask import ParallelPipelineResult, UnpicklableFunctionError
from iterable_dask.pipelines.auto import Timing, decide_mode
from iterable_dask.pipelines.state import merge_state
from iterable_dask.sample import write_sample

from .conftest import own_cluster
from .helpers import sequential, temporaries

N = 3000


@pytest.fixture(scope="module")
def source_csv(tmp_path_factory):
    return write_sample(str(tmp_path_factory.mktemp("pipe") / "src.csv"), N, seed=3)


def enrich(record, state):
    """The classic iterabledata pipeline test: count records in state, transform each."""
    state["count"] = state.get("count", 0) + 1
    if record["id"].endswith("7"):
        return None
    return {**record, "amount_x2": float(record["amount"]) * 2}


def failing(record, state):
    if int(record["id"]) % 500 == 13:
        raise ValueError(f"bad id {record['id']}")
    return record


def run_upstream(src, dst, func, **kwargs):
    state = kwargs.pop("start_state", None)
    state = {} if state is None else state
    with open_iterable(src) as s, open_iterable(dst, mode="w") as d:
        result = upstream_pipeline(s, d, func, start_state=state, **kwargs)
    return result, state


def run_parallel(src, dst, func, **kwargs):
    state = kwargs.pop("start_state", None)
    state = {} if state is None else state
    with open_iterable(src) as s, open_iterable(dst, mode="w") as d:
        result = iterable_dask.pipeline(s, d, func, start_state=state, parallel=True, **kwargs)
    return result, state


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_parallel_false_is_exactly_upstream(tmp_path, source_csv):
    expected, expected_state = run_upstream(source_csv, str(tmp_path / "a.jsonl"), enrich)
    state: dict = {}
    with open_iterable(source_csv) as s, open_iterable(str(tmp_path / "b.jsonl"), mode="w") as d:
        got = iterable_dask.pipeline(s, d, enrich, start_state=state)
    assert type(got) is PipelineResult
    assert read_text(tmp_path / "a.jsonl") == read_text(tmp_path / "b.jsonl")
    assert state == expected_state
    assert (got.rec_count, got.exceptions, got.nulls) == (expected.rec_count, expected.exceptions, expected.nulls)


def _chunk_tasks_run(client) -> set[str]:
    """Keys of pipeline chunk tasks the scheduler ever sent to a worker (its transition log)."""
    return set(
        client.run_on_scheduler(
            lambda dask_scheduler: [
                str(e[0])
                for e in dask_scheduler.transition_log
                if "iterable-pipeline-chunk" in str(e[0]) and e[2] == "processing"
            ]
        )
    )


@pytest.mark.parametrize("mode", ["process", "thread", "auto"])
def test_every_mode_matches_upstream(tmp_path, source_csv, client, mode):
    expected, expected_state = run_upstream(source_csv, str(tmp_path / "seq.jsonl"), enrich)
    before = _chunk_tasks_run(client)
    got, state = run_parallel(
        source_csv, str(tmp_path / "par.jsonl"), enrich, parallel_mode=mode, chunk_size=250, client=client
    )
    assert isinstance(got, ParallelPipelineResult)
    assert read_text(tmp_path / "par.jsonl") == read_text(tmp_path / "seq.jsonl")
    assert state == expected_state == {"count": N}
    assert (got.rec_count, got.exceptions, got.nulls) == (expected.rec_count, expected.exceptions, expected.nulls)
    ran = _chunk_tasks_run(client) - before
    if mode == "auto":  # enrich costs microseconds: it stays in the caller, no task is sent anywhere
        assert got.parallel_mode == "sequential" and "speed-up" in got.mode_reason
        assert ran == set()
    else:  # the workers read the file's byte ranges themselves: several chunk tasks of about chunk_size
        assert got.parallel_mode == mode and mode in got.mode_reason
        assert N // 250 // 2 <= len(ran) <= N // 250 * 2


@pytest.mark.slow
def test_embedded_thread_and_process_clusters(tmp_path, source_csv):
    _expected, expected_state = run_upstream(source_csv, str(tmp_path / "seq.jsonl"), enrich)
    for mode in ("thread", "process"):
        got, state = run_parallel(source_csv, str(tmp_path / f"{mode}.jsonl"), enrich, parallel_mode=mode, workers=2)
        assert got.parallel_mode == mode
        assert read_text(tmp_path / f"{mode}.jsonl") == read_text(tmp_path / "seq.jsonl")
        assert state == expected_state


def test_caller_read_sources_ship_packed_chunks(tmp_path, client):
    """A gzip source cannot be split: the caller reads it and ships chunks; same result."""
    src = write_sample(str(tmp_path / "src.jsonl.gz"), 1200)
    _expected, expected_state = run_upstream(src, str(tmp_path / "seq.jsonl"), enrich)
    _got, state = run_parallel(
        src, str(tmp_path / "par.jsonl"), enrich, parallel_mode="process", chunk_size=100, client=client
    )
    assert read_text(tmp_path / "par.jsonl") == read_text(tmp_path / "seq.jsonl")
    assert state == expected_state


def test_lambdas_and_closures_ship_to_processes(tmp_path, source_csv, client):
    factor = 3

    def scaled(record, state):
        return {"id": record["id"], "v": float(record["amount"]) * factor}

    run_upstream(source_csv, str(tmp_path / "seq.jsonl"), scaled)
    run_parallel(source_csv, str(tmp_path / "par.jsonl"), scaled, parallel_mode="process", client=client)
    assert read_text(tmp_path / "par.jsonl") == read_text(tmp_path / "seq.jsonl")
    run_parallel(
        source_csv, str(tmp_path / "lam.jsonl"), lambda r, s: {"id": r["id"]}, parallel_mode="process", client=client
    )
    assert [r["id"] for r in sequential(str(tmp_path / "lam.jsonl"))] == [str(i) for i in range(N)]


def test_unpicklable_function_fails_before_any_work(tmp_path, source_csv, client):
    lock = threading.Lock()

    def guarded(record, state):
        with lock:
            return record

    dst = tmp_path / "out.jsonl"
    with pytest.raises(UnpicklableFunctionError, match=r"process_func '.*guarded' cannot be pickled"):
        run_parallel(source_csv, str(dst), guarded, parallel_mode="process", client=client)
    assert read_text(dst) == ""
    # In thread mode on the embedded in-process cluster it needs no pickling.
    got, _ = run_parallel(source_csv, str(dst), guarded, parallel_mode="thread", workers=2)
    assert got.rec_count == N
    assert len(sequential(str(dst))) == N


def test_state_merge_rules_and_triggers(tmp_path, source_csv, client):
    def stateful(record, state):
        state["n"] += 1
        state["total"] += float(record["amount"])
        state["cities"][record["city"]] += 1
        state["ids"].append(record["id"])
        state["seen"].add(record["city"])
        state["nested"]["n"] = state["nested"].get("n", 0) + 1
        state["last"] = record["id"]
        return record

    def fresh():
        return {"n": 0, "total": 0.0, "cities": Counter(), "ids": [], "seen": set(), "nested": {}, "last": None}

    calls_seq, calls_par = [], []
    _, expected = run_upstream(
        source_csv,
        str(tmp_path / "a.jsonl"),
        stateful,
        start_state=fresh(),
        trigger_on=500,
        trigger_func=lambda stats, st: calls_seq.append((stats["rec_count"], st["n"])),
    )
    _, state = run_parallel(
        source_csv,
        str(tmp_path / "b.jsonl"),
        stateful,
        start_state=fresh(),
        trigger_on=500,
        trigger_func=lambda stats, st: calls_par.append((stats["rec_count"], st["n"])),
        parallel_mode="process",
        chunk_size=250,
        client=client,
    )
    assert state["n"] == expected["n"] == N
    assert state["total"] == pytest.approx(expected["total"])
    assert state["cities"] == expected["cities"]
    assert state["ids"] == expected["ids"]  # lists extend in source order
    assert state["seen"] == expected["seen"]
    assert state["nested"] == expected["nested"]
    assert state["last"] == expected["last"] == str(N - 1)
    assert calls_seq == [(k, k) for k in range(500, N + 1, 500)]
    # In parallel, triggers run after whole chunks: once per multiple of trigger_on crossed,
    # with the stats and the merged state as of that chunk's end.
    assert len(calls_par) == len(calls_seq)
    assert all(count == n for count, n in calls_par)
    assert all(k <= count < k + 500 for (count, _), k in zip(calls_par, range(500, N + 1, 500), strict=True))


def test_custom_merge_state(tmp_path, source_csv, client):
    def maxed(record, state):
        state["max"] = max(state.get("max", 0), int(record["count"]))
        return record

    _, expected = run_upstream(source_csv, str(tmp_path / "a.jsonl"), maxed)
    _, state = run_parallel(
        source_csv,
        str(tmp_path / "b.jsonl"),
        maxed,
        parallel_mode="process",
        client=client,
        merge_state=lambda a, b: {"max": max(a.get("max", 0), b.get("max", 0))},
    )
    assert state == expected


def test_merge_rule_unit():
    start = {"a": 1, "l": [0], "s": "x"}
    merged = {"a": 1, "l": [0], "s": "x"}
    merge_state(merged, {"a": 4, "l": [0, 1], "s": "x", "new": 2}, start)
    merge_state(merged, {"a": 2, "l": [0, 2], "s": "y", "new": 3}, start)
    assert merged == {"a": 5, "l": [0, 1, 2], "s": "y", "new": 5}


def _set_env(key, value):
    os.environ[key] = value


class Model:
    """Loaded once per worker: the constructor logs its process id."""

    def __init__(self):
        with open(os.path.join(os.environ["IDK_TEST_LOG"], f"init-{os.getpid()}-{time.time_ns()}"), "w"):
            pass
        self.offset = 10

    def __call__(self, record, state):
        return {"id": record["id"], "x": int(record["count"]) + self.offset}


def test_class_process_func_is_built_once_per_worker(tmp_path, source_csv, client):
    log = tmp_path / "log"
    log.mkdir()
    client.run(_set_env, "IDK_TEST_LOG", str(log))
    _got, _ = run_parallel(
        source_csv, str(tmp_path / "out.jsonl"), Model, parallel_mode="process", chunk_size=100, client=client
    )
    inits = os.listdir(log)
    pids = {name.split("-")[1] for name in inits}
    worker_pids = {str(p) for p in client.run(os.getpid).values()}
    assert len(inits) == len(pids) <= 2  # once per worker, not once per chunk (30 chunks)
    assert pids <= worker_pids
    assert [r["x"] for r in sequential(str(tmp_path / "out.jsonl"))] == [
        int(r["count"]) + 10 for r in sequential(source_csv)
    ]


def test_setup_factory_runs_once_per_worker(tmp_path, source_csv, client):
    log = tmp_path / "log"
    log.mkdir()
    client.run(_set_env, "IDK_TEST_LOG", str(log))

    def setup():
        Model()  # logs once per call
        return lambda record, state: {"id": record["id"]}

    run_parallel(
        source_csv,
        str(tmp_path / "out.jsonl"),
        None,
        setup=setup,
        parallel_mode="process",
        chunk_size=100,
        client=client,
    )
    assert 1 <= len(os.listdir(log)) <= 2
    assert len(sequential(str(tmp_path / "out.jsonl"))) == N


def test_errors_are_counted_with_positions(tmp_path, source_csv, client):
    expected, _ = run_upstream(source_csv, str(tmp_path / "a.jsonl"), failing)
    got, _ = run_parallel(
        source_csv, str(tmp_path / "b.jsonl"), failing, parallel_mode="process", chunk_size=300, client=client
    )
    assert got.exceptions == expected.exceptions == 6
    assert [(e.position, e.type, e.message) for e in got.errors] == [
        (i, "ValueError", f"bad id {i}") for i in range(13, N, 500)
    ]
    assert read_text(tmp_path / "a.jsonl") == read_text(tmp_path / "b.jsonl")


def test_debug_reraises_the_first_failure_with_the_worker_traceback(tmp_path, source_csv, client):
    with pytest.raises(ValueError, match="bad id 13") as info:
        run_parallel(
            source_csv,
            str(tmp_path / "b.jsonl"),
            failing,
            parallel_mode="process",
            client=client,
            debug=True,
            retries=0,
        )
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "failing" in frames


def test_atomic_failure_leaves_the_original_destination_untouched(tmp_path, source_csv, client):
    dst = tmp_path / "out.jsonl"
    dst.write_text('{"original": true}\n')
    with pytest.raises(ValueError, match="bad id 13"):
        iterable_dask.pipeline(
            source_csv, str(dst), failing, parallel=True, parallel_mode="process", client=client, atomic=True, retries=0
        )
    assert dst.read_text() == '{"original": true}\n'
    assert os.listdir(tmp_path) == ["out.jsonl"]
    # A successful atomic run replaces it with exactly upstream's output.
    iterable_dask.pipeline(
        source_csv, str(dst), enrich, parallel=True, parallel_mode="process", client=client, atomic=True
    )
    run_upstream(source_csv, str(tmp_path / "seq.jsonl"), enrich)
    assert read_text(dst) == read_text(tmp_path / "seq.jsonl")
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl", "seq.jsonl"]


def test_atomic_with_an_open_destination_behaves_as_upstream(tmp_path, source_csv, client):
    for runner, name in ((run_upstream, "a.jsonl"), (run_parallel, "b.jsonl")):
        kwargs = {"parallel_mode": "process", "client": client, "retries": 0} if runner is run_parallel else {}
        with pytest.raises(ValueError, match="bad id 13"):
            runner(source_csv, str(tmp_path / name), failing, atomic=True, **kwargs)
    assert read_text(tmp_path / "a.jsonl") == read_text(tmp_path / "b.jsonl") == ""
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "b.jsonl"]  # no temporary file left


def test_skip_nulls_false_counts_and_writes_nulls_as_upstream(tmp_path, client):
    src = write_sample(str(tmp_path / "s.csv"), 200)
    drop_odd = lambda r, s: None if int(r["id"]) % 2 else r  # noqa: E731

    def run(runner, dst, **kw):
        with open_iterable(src) as s:
            return runner(s, None, drop_odd, skip_nulls=False, **kw)

    expected = run(upstream_pipeline, None)
    got = run(iterable_dask.pipeline, None, parallel=True, parallel_mode="process", client=client, chunk_size=30)
    assert (got.nulls, got.rec_count) == (expected.nulls, expected.rec_count) == (100, 200)


def test_unordered_gives_the_same_records_and_state(tmp_path, source_csv, client):
    _, expected_state = run_upstream(source_csv, str(tmp_path / "a.jsonl"), enrich)
    _, state = run_parallel(
        source_csv,
        str(tmp_path / "b.jsonl"),
        enrich,
        parallel_mode="process",
        ordered=False,
        chunk_size=200,
        client=client,
    )
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(sequential(str(tmp_path / "b.jsonl")), key=key) == sorted(
        sequential(str(tmp_path / "a.jsonl")), key=key
    )
    assert state == expected_state


def test_progress_callback_bar_and_dashboard_names(tmp_path, source_csv, client, capsys):
    seen_seq, seen_par = [], []
    run_upstream(source_csv, str(tmp_path / "a.jsonl"), enrich, progress=seen_seq.append, progress_interval=1000)
    run_parallel(
        source_csv,
        str(tmp_path / "b.jsonl"),
        enrich,
        progress=seen_par.append,
        progress_interval=1000,
        parallel_mode="process",
        client=client,
        chunk_size=500,
        show_progress=True,
    )
    assert set(seen_par[-1]) == set(seen_seq[-1])
    # Called in the caller after the chunk that crosses each progress_interval, and once at the end.
    rows = [p["rows_processed"] for p in seen_par]
    assert len(rows) == len(seen_seq) and rows == sorted(rows) and rows[-1] == N
    assert "iterable-pipeline" in capsys.readouterr().err
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "iterable-pipeline-chunk" in prefixes


@pytest.mark.slow
def test_remote_scheduler_runs_on_its_workers(tmp_path, source_csv, real_scheduler):
    _expected, expected_state = run_upstream(source_csv, str(tmp_path / "a.jsonl"), enrich)
    _got, state = run_parallel(
        source_csv, str(tmp_path / "b.jsonl"), enrich, parallel_mode="process", scheduler=real_scheduler
    )
    assert read_text(tmp_path / "a.jsonl") == read_text(tmp_path / "b.jsonl")
    assert state == expected_state
    remote = iterable_dask.get_client(scheduler=real_scheduler)
    assert "iterable-pipeline-chunk" in remote.run_on_scheduler(
        lambda dask_scheduler: list(dask_scheduler.task_prefixes)
    )


@pytest.mark.slow
def test_auto_picks_sequential_for_cheap_and_process_for_heavy_functions(tmp_path, source_csv, client):
    got, _ = run_parallel(source_csv, str(tmp_path / "a.jsonl"), enrich, client=client, parallel_mode="auto")
    assert got.parallel_mode == "sequential"
    assert "speed-up" in got.mode_reason

    def heavy(record, state):
        total = 0
        for i in range(30_000):
            total += i
        return {"id": record["id"], "t": total}

    got, _ = run_parallel(source_csv, str(tmp_path / "b.jsonl"), heavy, client=client, parallel_mode="auto")
    assert got.parallel_mode == "process", got.mode_reason
    assert [r["id"] for r in sequential(str(tmp_path / "b.jsonl"))] == [str(i) for i in range(N)]


def test_auto_decision_rule():
    cheap = Timing(records=2000, wall=0.004, cpu=0.004, ship=3e-6)
    heavy = Timing(records=100, wall=0.05, cpu=0.05, ship=3e-6)
    waiting = Timing(records=100, wall=0.2, cpu=0.002, ship=3e-6)
    assert decide_mode(cheap, 2, 1000, None, True).mode == "sequential"
    assert decide_mode(heavy, 2, 1000, None, True).mode == "process"
    assert decide_mode(heavy, 1, 1000, None, True).mode == "sequential"
    assert decide_mode(heavy, 2, 1000, 100, False).mode == "sequential"  # start-up would dominate
    assert decide_mode(waiting, 4, 1000, None, True).mode == "thread"
    # A cheap function on a busy machine: its wall time looks like waiting, but threads cannot gain.
    descheduled = Timing(records=2000, wall=2000 * 8e-6, cpu=2000 * 2.5e-6, ship=3e-6)
    assert decide_mode(descheduled, 2, 1000, None, True).mode == "sequential"


def _slow(record, state):
    time.sleep(0.0004)
    return record


@pytest.mark.slow
def test_a_killed_worker_loses_no_record(tmp_path):
    """SIGKILL a worker process mid-run: its chunks rerun elsewhere; every record lands once, in order."""
    src = write_sample(str(tmp_path / "src.csv"), 6000)
    with own_cluster(dashboard_address=None) as client:
        pids = list(client.run(os.getpid).values())
        progressed = threading.Event()

        def on_progress(stats):
            if stats["rows_processed"] >= 1000:
                progressed.set()

        def killer():
            if progressed.wait(60):
                os.kill(pids[0], signal.SIGKILL)

        thread = threading.Thread(target=killer)
        thread.start()
        got, _ = run_parallel(
            src,
            str(tmp_path / "out.jsonl"),
            _slow,
            parallel_mode="process",
            client=client,
            chunk_size=200,
            progress=on_progress,
            progress_interval=200,
        )
        thread.join()
        assert progressed.is_set()
        assert not psutil_alive(pids[0])
    assert got.rec_count == 6000
    assert sequential(str(tmp_path / "out.jsonl")) == sequential(src)
    assert temporaries(tmp_path) == []


def psutil_alive(pid):
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_arguments_are_checked(source_csv):
    with open_iterable(source_csv) as s:
        with pytest.raises(ValueError, match="parallel_mode must be one of auto, thread, process; got 'gpu'"):
            iterable_dask.pipeline(s, None, enrich, parallel=True, parallel_mode="gpu")
        with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
            iterable_dask.pipeline(s, None, enrich, parallel=True, chunk_size=0)
        with pytest.raises(ValueError, match="process_func is required"):
            iterable_dask.pipeline(s, None, None, parallel=True)


def test_a_large_closure_is_scattered_once(tmp_path, source_csv, client):
    model = bytes(range(256)) * 1000  # 256 kB captured by the function: shipped once, not per task

    def predict(record, state):
        return {"id": record["id"], "byte": model[int(record["id"]) % len(model)]}

    run_parallel(
        source_csv, str(tmp_path / "out.jsonl"), predict, parallel_mode="process", chunk_size=500, client=client
    )
    assert [r["byte"] for r in sequential(str(tmp_path / "out.jsonl"))] == [i % 256 for i in range(N)]


@pytest.mark.parametrize("parallel_mode", [None, "process"])
def test_a_glob_of_many_files_is_one_source_in_file_order(tmp_path, client, parallel_mode):
    """Many small files (and a big one) as one source: records in file order; in parallel, few tasks."""
    folder = tmp_path / "in"
    paths = [write_sample(str(folder / f"p{i:02d}.csv"), 30, seed=i, start=i * 30) for i in range(40)]
    paths.append(write_sample(str(folder / "p99-big.csv"), 4000, seed=99))
    records = [r for p in sorted(paths) for r in sequential(p)]
    with open_iterable(str(tmp_path / "ref.jsonl"), mode="w") as dst:
        upstream_pipeline(iter(records), dst, enrich_plain, reset_iterables=False)
    before = _chunk_tasks_run(client)
    options = {} if parallel_mode is None else {"parallel": True, "parallel_mode": parallel_mode, "client": client}
    result = iterable_dask.pipeline(str(folder / "*.csv"), str(tmp_path / "out.jsonl"), enrich_plain, **options)
    assert result.rec_count == len(records) == 40 * 30 + 4000
    assert read_text(tmp_path / "out.jsonl") == read_text(tmp_path / "ref.jsonl")
    ran = _chunk_tasks_run(client) - before
    if parallel_mode:
        assert 2 <= len(ran) <= 12  # 41 files, about chunk_size records a task: small files share tasks
    else:
        assert ran == set()


def enrich_plain(record, state):
    return {**record, "amount_x2": float(record["amount"]) * 2}
