"""The click commands' help, plain text, read as such on the CLI page.

sphinx-click turns a paragraph that click keeps unwrapped (``\\b``) into a
reStructuredText line block, where a glob such as ``'data/*.csv'`` reads
as emphasis. Shown as code instead, the examples read as they do in
``iterable-dask --help``; a ``*`` in the prose is escaped likewise.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

__all__ = ["literal_examples", "setup"]


def literal_examples(lines: list[str]) -> list[str]:
    """``lines`` with each run of line-block lines (``| ...``) made a literal block after its heading line."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        if run[0].rstrip().endswith(":"):
            out.extend([run.pop(0), ""])
        out.extend([".. code-block:: shell", ""])
        out.extend("    " + line for line in run)
        out.append("")
        run.clear()

    for line in lines:
        if line.startswith("| "):
            run.append(line[2:])
        else:
            flush()
            out.append(line.replace("*", "\\*"))  # click's help is plain text: a glob's * is no emphasis
    flush()
    return out


def _description(app: Sphinx, ctx: Any, lines: list[str]) -> None:
    lines[:] = literal_examples(lines)


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_click")
    app.connect("sphinx-click-process-description", _description)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
