"""The command line against clusters it starts itself: ``iterable-dask cluster``, embedded clusters, Ctrl-C.

Each test that starts or interrupts a cluster owns it. Signals go to the
command's own process (started in a session of its own), as ``kill -INT``
would send them; a terminal's Ctrl-C sends them to the whole process group,
which the command handles the same way.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap

import pytest

from iterable_dask.sample import write_sample

from .cli_helpers import all_gone, descendants, run_cli, start_cli, summary
from .helpers import sequential, temporaries, wait_for

pytestmark = pytest.mark.slow  # each test runs the command line with a cluster of its own

TRANSFORMS = textwrap.dedent(
    """
    import time

    def enrich(record, state):
        state["n"] = state.get("n", 0) + 1
        if record["id"] == "7":
            raise ValueError("record seven is bad")
        return {**record, "amount_cents": int(round(float(record["amount"]) * 100))}

    def slow(record, state):
        time.sleep(0.02)
        return record
    """
)


def enriched(records):
    return [{**r, "amount_cents": round(float(r["amount"]) * 100)} for r in records if r["id"] != "7"]


@pytest.fixture
def cli_cluster(tmp_path):
    """An ``iterable-dask cluster`` (2 workers x 1 thread) started in its own folder: its address and process."""
    home = tmp_path / "cluster-home"
    home.mkdir()
    process = start_cli("cluster", "--workers", "2", "--threads", "1", "--port", "0", "--dashboard-port", "0",
                        "--json", cwd=str(home))  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        info = json.loads(line)
        wait_for(lambda: len(descendants(process.pid)) >= 2, 60, "two worker processes")
        yield info, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_cluster_command_serves_another_terminal_and_stops_on_ctrl_c(tmp_path, cli_cluster, s3):
    info, process = cli_cluster
    assert info["scheduler_address"].startswith("tcp://127.0.0.1:")
    assert info["dashboard_link"].startswith("http://127.0.0.1:")
    # Another terminal: the pipeline's function comes from a module the cluster's folder does not have.
    work = tmp_path / "work"
    work.mkdir()
    (work / "transforms.py").write_text(TRANSFORMS, encoding="utf-8")
    src = write_sample(str(work / "in.csv"), 400)
    completed = run_cli(
        "pipeline", "in.csv", "out.jsonl", "--func", "transforms:enrich", "--mode", "process",
        "--chunk-size", "50", "--scheduler", info["scheduler_address"], "--json", cwd=str(work),
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr  # one record failed
    result = summary(completed)
    assert result["parallel_mode"] == "process" and result["exceptions"] == 1
    assert [(e["position"], e["type"]) for e in result["errors"]] == [(7, "ValueError")]
    assert "record #8: ValueError: record seven is bad" not in completed.stdout  # --json: no text lines
    assert sequential(str(work / "out.jsonl")) == enriched(sequential(src))
    # Object-store URLs and storage options, on the same cluster.
    fs, bucket, options = s3
    for i in range(2):
        fs.put(write_sample(str(tmp_path / f"s{i}.csv"), 100, seed=i), f"{bucket}/in/s{i}.csv")
    flags = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
             "--storage-option", f"client_kwargs.endpoint_url={options['client_kwargs']['endpoint_url']}"]  # fmt: skip
    converted = run_cli("bulk-convert", f"{bucket}/in/*.csv", f"{bucket}/out", "--to", "jsonl",
                        "--scheduler", info["scheduler_address"], "--json", *flags)  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    assert summary(converted)["total_rows_out"] == 200
    for i in range(2):
        fs.get(f"{bucket}/out/s{i}.jsonl", str(tmp_path / f"s{i}.jsonl"))
        assert sequential(str(tmp_path / f"s{i}.jsonl")) == sequential(str(tmp_path / f"s{i}.csv"))
    # Ctrl-C stops the scheduler and its workers cleanly.
    workers = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    assert "Cluster stopped." in process.stderr.read()
    all_gone(workers)


def test_pipeline_in_thread_mode_on_an_embedded_cluster(tmp_path):
    (tmp_path / "transforms.py").write_text(TRANSFORMS, encoding="utf-8")
    src = write_sample(str(tmp_path / "in.csv"), 300)
    completed = run_cli("pipeline", "in.csv", "out.csv", "--func", "transforms:enrich", "--mode", "thread",
                        "--workers", "2", "--chunk-size", "40", cwd=str(tmp_path))  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "record #8: ValueError: record seven is bad" in completed.stdout
    assert "300 records processed (thread), 1 failed" in completed.stdout  # iterabledata counts failed ones
    assert "Dashboard: http://127.0.0.1:" in completed.stderr
    assert sequential(str(tmp_path / "out.csv")) == [
        {k: str(v) for k, v in r.items()} for r in enriched(sequential(src))
    ]


def _interrupt(process, folder: str, started) -> tuple[int, str]:
    """SIGINT ``process`` once ``started()`` holds; its exit code and stderr, once it has cleaned up."""
    wait_for(started, 120, "the run to start writing")
    workers = descendants(process.pid)
    assert workers, "an embedded cluster runs under the command"
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    all_gone(workers)
    return process.returncode, err


def test_ctrl_c_during_bulk_convert_leaves_no_temporary_and_no_process(tmp_path):
    for i in range(8):
        write_sample(str(tmp_path / "in" / f"p{i:02d}.csv"), 20_000, seed=i)
    out = str(tmp_path / "out")
    process = start_cli("bulk-convert", str(tmp_path / "in"), out, "--to", "jsonl", "--workers", "2")
    code, err = _interrupt(process, out, lambda: temporaries(out))
    assert code == 130, err
    assert "interrupted" in err.splitlines()[-1] and "Traceback" not in err
    assert temporaries(out) == []
    for name in os.listdir(out):  # whatever finished before Ctrl-C is complete
        assert sequential(os.path.join(out, name)) == sequential(str(tmp_path / "in" / name.replace(".jsonl", ".csv")))


def test_ctrl_c_during_a_pipeline_leaves_no_output_and_no_process(tmp_path):
    (tmp_path / "transforms.py").write_text(TRANSFORMS, encoding="utf-8")
    write_sample(str(tmp_path / "in.csv"), 5_000)
    process = start_cli("pipeline", "in.csv", "out.jsonl", "--func", "transforms:slow", "--mode", "process",
                        "--workers", "2", "--chunk-size", "100", cwd=str(tmp_path))  # fmt: skip
    code, err = _interrupt(process, str(tmp_path), lambda: temporaries(str(tmp_path)))
    assert code == 130, err
    assert temporaries(str(tmp_path)) == [] and not (tmp_path / "out.jsonl").exists()
