"""The benchmark suite: a quick run writes its whole report, no contender is timed unchecked, and a target
that falls short fails the targets check.

No test here asserts a timing of the package: the suite's numbers belong to the report.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import psutil
import pytest

from benchmarks.suite.checks import same_rows, same_value
from benchmarks.suite.main import KEYS, run
from benchmarks.suite.runner import Contender, Workload, run_workload
from benchmarks.suite.targets import TARGETS, Target, evaluate, exit_code, print_outcomes, select

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_writes_a_checked_report(tmp_path, client, s3_server):
    """Every workload at the quick size, on the session's cluster and S3 server, one round."""
    out, data = tmp_path / "results", tmp_path / "data"
    with warnings.catch_warnings():  # the peers' own deprecation notices are not this package's to fix
        warnings.simplefilter("ignore")
        run("quick", 1, str(out), str(data), client=client, s3_options=s3_server[1], log=lambda line: None)

    payload = json.loads((out / "suite.json").read_text())
    rows = payload["rows"]
    assert {r["key"] for r in rows} == set(KEYS)  # every workload produced rows
    for key in ("csv-jsonl", "small-files"):  # how cost grows: three sizes each
        assert len({r["size"] for r in rows if r["key"] == key}) == 3
    for row in rows:
        assert "failed" not in row["status"], row
        if row["kind"] == "baseline":
            assert row["checked"] == "reference" and row["status"] == "ok"
        else:
            assert row["checked"] is True, row
        if row["kind"] in ("baseline", "iterable_dask"):
            assert row["status"] == "ok" and row["median"] is not None and row["times"], row
        if row["status"] != "ok":
            assert row["median"] is None and row["times"] == []
        if row["status"] == "ok":
            assert row["peak_rss_mib"] > 10, row  # the caller's (or the fresh process's) resident memory
    kinds = {r["kind"] for r in rows}
    assert kinds == {"baseline", "iterabledata", "iterable_dask", "peer"}
    # every per-issue target finds its workload, sizes and contenders in a whole run's rows
    missing = [(o.target.what, o.detail) for o in evaluate(rows) if o.measured is None]
    assert not missing
    assert payload["machine"]["cores"] == os.cpu_count() and len(payload["load"]) == 2

    table = (out / "suite.md").read_text()
    assert "| workload | size | contender | median (s) | speed-up |" in table
    for row in rows:
        assert f"| {row['workload']} | {row['size']} |" in table
    for chart in ("suite.png", "scaling.png"):
        image = (out / chart).read_bytes()
        assert image.startswith(PNG) and len(image) > 10_000


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("warm_up", [True, False])
def test_a_contender_whose_output_differs_gets_no_time(tmp_path, warm_up):
    """The runner checks before it keeps a time: a wrong output and a failing contender are reported, not timed.

    With ``warm_up`` the check runs on an untimed run; without (the quick size), on the first round.
    """

    def good(out):
        _write(tmp_path / out / "a.jsonl", '{"id": "1", "v": "x"}\n{"id": "2", "v": "y"}\n')

    def spaced(out):  # other bytes, same rows and values
        _write(tmp_path / out / "part-0.jsonl", '{"id":"1","v":"x"}\n')
        _write(tmp_path / out / "part-1.jsonl", '{"v":"y","id":"2"}\n')

    def wrong(out):
        _write(tmp_path / out / "a.jsonl", '{"id": "1", "v": "x"}\n{"id": "2", "v": "z"}\n')

    def broken(out):
        raise OSError("disk full")

    def check(ref_out, ref, out, got):
        return same_rows(str(tmp_path / ref_out), str(tmp_path / out))

    contenders = [
        Contender("iterabledata sequential", "baseline", good),
        Contender("same values", "peer", spaced),
        Contender("wrong value", "peer", wrong),
        Contender("failing", "iterable_dask", broken),
    ]
    work = Workload("t", "test job", "2 rows", 2, contenders, check, reset=lambda out: None)
    rows = {r["contender"]: r for r in run_workload(work, 2, str(tmp_path / "x"), lambda line: None, warm_up)}
    assert rows["same values"]["status"] == "ok" and len(rows["same values"]["times"]) == 2
    assert rows["wrong value"]["status"] == "output differs: column 'v' differs"
    assert rows["wrong value"]["median"] is None and rows["wrong value"]["times"] == []
    assert rows["failing"]["status"].startswith("failed: OSError: disk full") and rows["failing"]["median"] is None
    assert rows["iterabledata sequential"]["ratio"] == 1.0


def _sleeper(seconds, hold_mib=0):
    def run(out):
        held = b"x" * (hold_mib * 2**20)  # written, so resident while it sleeps
        time.sleep(seconds)
        del held
        return "done"  # every contender's output agrees

    return run


def _measured(tmp_path, rows_at, hold_mib):
    """Real result rows of the runner: a baseline of 0.3 s, "fast" of 0.05 s, "hungry" holding memory."""
    contenders = [
        Contender("sequential", "baseline", _sleeper(0.3)),
        Contender("fast", "iterable_dask", _sleeper(0.05)),
        Contender("hungry", "iterable_dask", _sleeper(0.05, hold_mib)),
    ]

    def check(ref_out, ref, out, got):
        return same_value(ref, got)

    work = Workload("t", "test job", f"{rows_at} rows", rows_at, contenders, check, reset=lambda out: None)
    return run_workload(work, 1, str(tmp_path), lambda line: None, warm_up=False)


def test_the_targets_check_fails_on_a_shortfall_and_passes_when_met(tmp_path):
    """Targets checked on measured rows: met ones PASS (exit 0), short or unmeasured ones FAIL (exit 1)."""
    resident = int(psutil.Process().memory_info().rss / 2**20)  # held at 10,000 rows: the peak at least doubles
    rows = _measured(tmp_path, 100, 0) + _measured(tmp_path, 10_000, resident)
    met = [
        Target(None, "t.py", "fast enough", "t", "speed-up", 1.5, "fast"),
        Target(None, "t.py", "fastest of ours", "t", "speed-up", 1.5),
        Target(None, "t.py", "hungry vs fast", "t", "vs", 0.01, "hungry", against="fast"),
        Target(None, "t.py", "memory grows, but within 20x", "t", "memory growth", 20.0, "hungry"),
        Target(None, "t.py", "peak under 100 GiB", "t", "peak RSS", 100_000.0, "hungry"),
        Target(None, "t.py", "reported only", "t", "speed-up", None, "fast"),
    ]
    outcomes = evaluate(rows, met)
    assert [o.verdict for o in outcomes] == ["PASS"] * 5 + ["REPORTED"]
    assert outcomes[0].measured > 3 and outcomes[0].size == "10000 rows"
    assert outcomes[1].detail.startswith("fast:")
    assert outcomes[3].size == "100 rows → 10000 rows"
    assert exit_code(outcomes) == 0

    short = [
        Target(None, "t.py", "ten times faster", "t", "speed-up", 10.0, "fast"),
        Target(None, "t.py", "memory flat", "t", "memory growth", 1.2, "hungry"),  # twice the memory at 10,000 rows
        Target(None, "t.py", "peak under 1 MiB", "t", "peak RSS", 1.0, "hungry"),
        Target(None, "t.py", "a workload not run", "not-run", "speed-up", 1.0),
        Target(None, "t.py", "a contender not there", "t", "speed-up", 1.0, "absent"),
    ]
    outcomes = evaluate(rows, met + short)
    assert [o.verdict for o in outcomes[len(met) :]] == ["FAIL"] * 5
    assert outcomes[len(met) + 1].measured > 1.2
    assert [o.measured for o in outcomes[-2:]] == [None, None]
    assert exit_code(outcomes) == 1
    lines = []
    print_outcomes(outcomes, lines.append)
    assert lines[len(met)].startswith("FAIL") and "vs target >= 10x" in lines[len(met)]
    assert lines[-1] == "5 of 10 targets met; 1 figures reported without a target"


def test_targets_are_declared_and_select_what_they_measure():
    """Each target names its issue or script and a known workload; select keeps the baseline and what is measured."""
    assert {t.key for t in TARGETS} <= set(KEYS)
    assert all(t.issue or t.script.startswith("bench_") for t in TARGETS)
    assert [t.threshold for t in TARGETS if t.issue == 4] == [1.8, 8.0, 1.5]
    with pytest.raises(ValueError, match="'against' goes with the 'vs' measure"):
        Target(1, "x.py", "x", "t", "speed-up", 1.0, against="y")

    def work(scale):
        contenders = [
            Contender("base", "baseline", _sleeper(0)),
            Contender("ours", "iterable_dask", _sleeper(0)),
            Contender("ours, other way", "iterable_dask", _sleeper(0)),
            Contender("peer", "peer", _sleeper(0)),
        ]
        return Workload("t", "t", str(scale), scale, contenders, lambda *a: None)

    works = [work(1), work(2), work(3)]
    named = select(works, [Target(None, "t.py", "x", "t", "vs", 1.0, "ours", against="peer")])
    assert [(w.scale, [c.name for c in w.contenders]) for w in named] == [(3, ["base", "ours", "peer"])]
    fastest = select(works, [Target(None, "t.py", "x", "t", "memory growth", 1.2)])
    assert [w.scale for w in fastest] == [1, 3]
    assert [c.name for c in fastest[0].contenders] == ["base", "ours", "ours, other way"]
    assert select(works, [Target(None, "t.py", "x", "other", "speed-up", 1.0)]) == []
