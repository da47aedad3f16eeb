"""The tour notebook runs top to bottom against a real LocalCluster."""

from __future__ import annotations

import json
import os

import pytest

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(__file__)), "notebooks", "iterable_dask_tour.ipynb")


def test_notebook_code_cells_run(capsys):
    iterable_dask = pytest.importorskip("iterable_dask")
    if not hasattr(iterable_dask, "bulk_convert") or not hasattr(iterable_dask, "parallel_read"):
        pytest.fail("the notebook uses bulk_convert and parallel_read")
    with open(NOTEBOOK, encoding="utf-8") as f:
        notebook = json.load(f)
    namespace: dict = {"__name__": "__notebook__"}
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 6
    for cell in cells:
        exec(compile("".join(cell["source"]), NOTEBOOK, "exec"), namespace)
    assert namespace["state"]["count"] == 5000
    assert namespace["converted"].total_rows_out == 20000
    assert namespace["first_ids"] == ["0", "1", "2"]
