"""The benchmark suite: a quick run writes its whole report, and no contender is timed unchecked.

No test here asserts a timing: the suite's numbers belong to the report.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

from benchmarks.suite.checks import same_rows
from benchmarks.suite.main import KEYS, run
from benchmarks.suite.runner import Contender, Workload, run_workload

PNG = b"\x89PNG\r\n\x1a\n"


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
    kinds = {r["kind"] for r in rows}
    assert kinds == {"baseline", "iterabledata", "iterable_dask", "peer"}
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
