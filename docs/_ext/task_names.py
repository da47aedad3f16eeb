"""The ``iterable-dask-task-names`` directive: the dashboard's task names, from ``TASK_NAMES``.

Renders :data:`iterable_dask.core.names.TASK_NAMES` (every task prefix the
package submits, what one task does, which function submits it) as a
table, so the page lists exactly the names the code uses.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from iterable_dask.core.names import TASK_NAMES

__all__ = ["setup", "table_lines"]


def table_lines() -> list[str]:
    """A reStructuredText list-table of the task names."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 50 25", ""]
    lines += ["   * - name", "     - what one task does", "     - submitted by"]
    for name, (does, submitters) in TASK_NAMES.items():
        by = ", ".join(f"``{s.strip()}``" for s in submitters.split(", "))
        lines += [f"   * - ``{name}``", f"     - {does}", f"     - {by}"]
    return lines


class TaskNames(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(
            StringList(table_lines(), source="iterable_dask/core/names.py"), self.content_offset, container
        )
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("iterable-dask-task-names", TaskNames)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
