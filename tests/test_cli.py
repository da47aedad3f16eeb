"""The command line: the demo and bulk conversion."""

from __future__ import annotations

import os

from iterable_dask.cli import main
from iterable_dask.sample import write_sample

from .helpers import sequential


def test_demo_converts_and_summarizes(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path), "--files", "2", "--rows", "500", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "files converted : 2/2 (failed: 0)" in out
    assert "rows in / out   : 1,000 / 1,000" in out
    assert "Dashboard: http://127.0.0.1:" in out
    for i in range(2):
        csv_path = os.path.join(tmp_path, "csv", f"part-{i:02d}.csv")
        assert sequential(os.path.join(tmp_path, "jsonl", f"part-{i:02d}.jsonl")) == sequential(csv_path)


def test_convert_command(tmp_path, capsys, cluster):
    src = write_sample(str(tmp_path / "in" / "a.csv"), 300)
    code = main(
        [
            "convert",
            str(tmp_path / "in" / "*.csv"),
            str(tmp_path / "out"),
            "--to-ext",
            "jsonl",
            "--scheduler",
            cluster.scheduler_address,
        ]
    )
    assert code == 0
    assert "1/1 files, 300 rows" in capsys.readouterr().out
    assert sequential(str(tmp_path / "out" / "a.jsonl")) == sequential(src)
