"""Keeps the API reference whole: every name in ``iterable_dask.__all__`` has an entry in ``api.rst``.

A public name missing from the reference, or an entry for a name that is
not public, is a build warning (an error under ``make docs``'s ``-W``).
Module-level constants re-exported by the package (``DEFAULT_*``) take the
``#:`` comments of the module that defines them, and ``__version__`` a line
of its own, so their pages say what they hold.
"""

from __future__ import annotations

import os
import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

import iterable_dask

__all__ = ["setup"]

logger = logging.getLogger(__name__)
ENTRY = re.compile(r"^\s+(?:iterable_dask\.)?(~?[A-Za-z_][\w.]*)\s*$")
DEFINED_IN = {"DEFAULT_CHUNK_SIZE", "DEFAULT_PARALLEL_MODE", "DEFAULT_PARALLEL_WORKERS"}
EXTRA = {"__version__": ["The installed version of iterable-dask (``importlib.metadata``), e.g. ``'0.1.0'``."]}


def documented_names(api_source: str) -> set[str]:
    """The names listed under the autosummary directives of ``api.rst``."""
    names: set[str] = set()
    inside = False
    for line in api_source.splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and not line.strip().startswith(":"):
            match = ENTRY.match(line)
            if match:
                names.add(match.group(1))
    return names


def _check(app: Sphinx) -> None:
    with open(os.path.join(app.srcdir, "api.rst"), encoding="utf-8") as f:
        names = documented_names(f.read())
    public = set(iterable_dask.__all__)
    for name in sorted(public - names):
        logger.warning("api.rst: iterable_dask.%s is in iterable_dask.__all__ but has no API entry", name)
    for name in sorted(names - public):
        logger.warning("api.rst: %s is listed but is not in iterable_dask.__all__", name)


def _constant_docs(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    module, _, short = name.rpartition(".")
    if what != "data" or module != "iterable_dask":
        return
    if short in EXTRA:  # autodoc offers the value's class docstring (str's, int's): not what it holds
        lines[:] = EXTRA[short]
    elif short in DEFINED_IN:
        docs = ModuleAnalyzer.for_module("iterable_dask.core.config").find_attr_docs()
        lines[:] = list(docs.get(("", short), []))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _check)
    app.connect("autodoc-process-docstring", _constant_docs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
