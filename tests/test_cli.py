"""The ``iterable-dask`` command, run as the installed console script in a subprocess.

Outputs are compared with iterabledata's sequential reads record for record;
``--json`` summaries are checked against the files on disk.
"""

from __future__ import annotations

import gzip
import json
import os
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner
from iterable import open_iterable

from iterable_dask.cli.app import cli
from iterable_dask.cli.options import parse_storage_options
from iterable_dask.sample import write_sample

from .cli_helpers import run_cli, summary
from .conftest import free_port
from .helpers import sequential, temporaries


def test_version():
    completed = run_cli("--version")
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"iterable-dask {version('iterable-dask')}"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"iterable-dask {command}" in result.output


@pytest.mark.slow
def test_convert_one_file_sequential_and_parallel(tmp_path, cluster):
    src = write_sample(str(tmp_path / "in.csv"), 3000)
    plain = run_cli("convert", src, str(tmp_path / "plain.jsonl"), "--json")
    assert plain.returncode == 0, plain.stderr
    split = run_cli(
        "convert", src, str(tmp_path / "split.jsonl"), "--parallel", "--blocksize", "16KiB",
        "--scheduler", cluster.scheduler_address, "--json",
    )  # fmt: skip
    assert split.returncode == 0, split.stderr
    expected = sequential(src)
    for name, completed in (("plain", plain), ("split", split)):
        out = str(tmp_path / f"{name}.jsonl")
        assert sequential(out) == expected
        found = summary(completed)
        assert found["success"] is True and found["dest_file"] == out
        assert found["rows_in"] == found["rows_out"] == len(expected)
        assert found["bytes_written"] in (None, os.path.getsize(out))
    assert temporaries(str(tmp_path)) == []


@pytest.mark.slow
def test_bulk_convert_json_summary_matches_the_files(tmp_path, cluster):
    sources = [write_sample(str(tmp_path / "in" / f"p{i}.csv"), 200 * (i + 1), seed=i) for i in range(3)]
    completed = run_cli(
        "bulk-convert", str(tmp_path / "in"), str(tmp_path / "out"), "--to", "parquet",
        "--scheduler", cluster.scheduler_address, "--json", "--progress",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "3/3" in completed.stderr and "%|" in completed.stderr  # the bar, on stderr: stdout is the JSON
    found = summary(completed)
    assert (found["total_files"], found["successful_files"], found["failed_files"]) == (3, 3, 0)
    assert found["total_rows_out"] == sum(len(sequential(s)) for s in sources)
    for entry, src in zip(found["file_results"], sources, strict=True):
        assert entry["source_file"].endswith(os.path.basename(src)) and entry["success"] and entry["error"] is None
        assert sequential(entry["dest_file"]) == sequential(src)
        assert entry["rows_out"] == len(sequential(src))
    assert f"Scheduler: {cluster.scheduler_address}" in completed.stderr
    assert "Dashboard: http://127.0.0.1:" in completed.stderr
    # --resume skips what is complete, and says so.
    again = run_cli(
        "bulk-convert", str(tmp_path / "in" / "*.csv"), str(tmp_path / "out"), "--to", "parquet", "--resume",
        "--scheduler", cluster.scheduler_address, "--json",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(summary(again)["skipped_files"]) == 3


@pytest.mark.slow
def test_a_failing_file_exits_1_and_is_named(tmp_path, cluster):
    good = write_sample(str(tmp_path / "in" / "good.jsonl"), 50)
    bad = tmp_path / "in" / "bad.jsonl"
    bad.write_text('{"id": 1}\n{"id": 2, broken\n', encoding="utf-8")
    completed = run_cli(
        "bulk-convert", str(tmp_path / "in" / "*.jsonl"), str(tmp_path / "out"), "--to", "csv",
        "--scheduler", cluster.scheduler_address,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    failed = [line for line in completed.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "bad.jsonl" in failed[0]
    assert "1/2 files converted, 1 failed" in completed.stdout
    assert sequential(str(tmp_path / "out" / "good.csv")) == sequential(good)
    assert not (tmp_path / "out" / "bad.csv").exists() and temporaries(str(tmp_path / "out")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bulk-convert", "{in}", "{out}", "--to", "jsonl", "--no-such-flag"], "No such option"),
        # The quick subset runs two of these (each starts the command line: about a second).
        pytest.param(
            ["bulk-convert", "{tmp}/nothing/*.csv", "{out}", "--to", "jsonl"], "no file matched", marks=pytest.mark.slow
        ),
        pytest.param(["bulk-convert", "{in}", "{out}"], "--to EXT", marks=pytest.mark.slow),
        pytest.param(["convert", "{in}/a.csv", "{out}/a.nosuchformat"], "nosuchformat", marks=pytest.mark.slow),
        (["convert", "{tmp}/missing.csv", "{out}/a.jsonl", "--parallel"], "missing.csv"),
        pytest.param(
            ["bulk-convert", "{in}", "{out}", "--to", "jsonl", "--scheduler", "tcp://127.0.0.1:{port}"],
            "scheduler",
            marks=pytest.mark.slow,  # waits out the connect timeout as well
        ),
        pytest.param(
            ["pipeline", "{in}/a.csv", "{out}/a.jsonl", "--func", "no_such_module_xyz:f"],
            "no_such_module_xyz",
            marks=pytest.mark.slow,
        ),
    ],
    ids=["bad-flag", "no-match", "no-format", "unknown-format", "missing-file", "no-scheduler", "bad-func"],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    write_sample(str(tmp_path / "in" / "a.csv"), 10)
    names = {"in": str(tmp_path / "in"), "out": str(tmp_path / "out"), "tmp": str(tmp_path), "port": free_port()}
    completed = run_cli(*(a.format(**names) for a in args))
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len([line for line in lines if "error:" in line]) == 1, completed.stderr
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert not os.path.exists(names["out"]) or os.listdir(names["out"]) == []


@pytest.mark.slow
def test_verbose_shows_the_traceback(tmp_path):
    src = write_sample(str(tmp_path / "a.csv"), 10)
    completed = run_cli("convert", src, str(tmp_path / "a.nosuchformat"), "-v")
    assert completed.returncode == 2
    assert "Traceback" in completed.stderr and "nosuchformat" in completed.stderr.splitlines()[-1]


def test_storage_options_parse_json_values_and_dotted_keys():
    assert parse_storage_options(["anon=true", "a.b.c=3", "a.b.d=x y", 'key="0123"', 's={"k": [1]}']) == {
        "anon": True,
        "a": {"b": {"c": 3, "d": "x y"}},
        "key": "0123",
        "s": {"k": [1]},
    }
    for bad in (["novalue"], ["=x"], ["a=1", "a.b=2"]):
        with pytest.raises(click.BadParameter):
            parse_storage_options(bad)


@pytest.mark.slow
def test_head_prints_json_lines(tmp_path):
    src = write_sample(str(tmp_path / "a.csv"), 100)
    parquet = str(tmp_path / "a.parquet")
    with open_iterable(parquet, mode="w") as out:
        out.write_bulk(sequential(src))
    for path in (src, parquet):
        completed = run_cli("head", path, "-n", "3")
        assert completed.returncode == 0, completed.stderr
        assert [json.loads(line) for line in completed.stdout.splitlines()] == sequential(src)[:3]
    whole = run_cli("head", src, "-n", "1000", "--json")
    assert summary(whole) == {"source": src, "records": sequential(src)}


@pytest.mark.slow
def test_head_of_objects_on_s3(tmp_path, s3):
    fs, bucket, options = s3
    src = write_sample(str(tmp_path / "big.csv"), 6000)  # larger than the first range request
    gz = str(tmp_path / "small.jsonl.gz")
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in sequential(src)[:50])
    fs.put(src, f"{bucket}/big.csv")
    fs.put(gz, f"{bucket}/small.jsonl.gz")
    flags = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
             "--storage-option", f"client_kwargs.endpoint_url={options['client_kwargs']['endpoint_url']}"]  # fmt: skip
    for url, n, expected in ((f"{bucket}/big.csv", 4000, sequential(src)), (f"{bucket}/small.jsonl.gz", 5, None)):
        completed = run_cli("head", url, "-n", str(n), *flags)
        assert completed.returncode == 0, completed.stderr
        records = [json.loads(line) for line in completed.stdout.splitlines()]
        assert records == (expected[:n] if expected else sequential(gz)[:n])


@pytest.mark.slow
def test_convert_and_pipeline_between_objects(tmp_path, s3, cluster):
    fs, bucket, options = s3
    src = write_sample(str(tmp_path / "in.csv"), 2000)
    fs.put(src, f"{bucket}/in.csv")
    (tmp_path / "cleaning.py").write_text(
        "def upper(record, state):\n    return {**record, 'city': record['city'].upper()}\n", encoding="utf-8"
    )
    flags = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
             "--storage-option", f"client_kwargs.endpoint_url={options['client_kwargs']['endpoint_url']}",
             "--scheduler", cluster.scheduler_address, "--json"]  # fmt: skip
    converted = run_cli("convert", f"{bucket}/in.csv", f"{bucket}/out.parquet", "--parallel", *flags)
    assert converted.returncode == 0, converted.stderr
    assert summary(converted)["rows_out"] == 2000
    piped = run_cli("pipeline", f"{bucket}/in.csv", f"{bucket}/upper.jsonl", "--func", "cleaning:upper",
                    "--mode", "process", "--chunk-size", "500", *flags, cwd=str(tmp_path))  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert summary(piped)["rows_processed"] == 2000
    fs.get(f"{bucket}/out.parquet", str(tmp_path / "out.parquet"))
    fs.get(f"{bucket}/upper.jsonl", str(tmp_path / "upper.jsonl"))
    assert sequential(str(tmp_path / "out.parquet")) == sequential(src)
    assert sequential(str(tmp_path / "upper.jsonl")) == [{**r, "city": r["city"].upper()} for r in sequential(src)]


@pytest.mark.slow
def test_demo_converts_and_summarizes(tmp_path):
    completed = run_cli("demo", "--dir", str(tmp_path), "--files", "2", "--rows", "500", "--workers", "2")
    assert completed.returncode == 0, completed.stderr
    assert "files converted : 2/2 (failed: 0)" in completed.stdout
    assert "rows in / out   : 1,000 / 1,000" in completed.stdout
    assert "Dashboard: http://127.0.0.1:" in completed.stdout
    for i in range(2):
        csv_path = os.path.join(tmp_path, "csv", f"part-{i:02d}.csv")
        assert sequential(os.path.join(tmp_path, "jsonl", f"part-{i:02d}.jsonl")) == sequential(csv_path)
