"""Sphinx configuration of the iterable_dask documentation (``make docs``).

The build needs no network: the intersphinx inventories of Python, Dask,
distributed, pandas, pyarrow and fsspec are written from the installed
packages by ``_ext/offline_inventories.py`` before intersphinx reads them
(see that module for why), the configuration page is generated from the YAML
defaults and schema (``_ext/config_reference.py``), the CLI page from the
click commands (sphinx-click), the API pages from the numpydoc docstrings
(autosummary), and the performance page includes what ``make bench`` wrote
to ``benchmarks/results/``.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))

from offline_inventories import write_inventories  # noqa: E402

import iterable_dask  # noqa: E402

project = "iterable_dask"
author = "the iterable_dask developers"
copyright = "the iterable_dask developers"
release = iterable_dask.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.extlinks",
    "numpydoc",
    "sphinx_click",
    "cli_help",
    "myst_parser",
    "config_reference",
    "task_names",
    "api_check",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_templates", "README.md"]
templates_path = ["_templates"]
nitpicky = True
# iterabledata publishes no Sphinx inventory and none can be fetched here: its names are shown as code.
nitpick_ignore_regex = [(r"py:.*", r"iterable(\..*)?")]

# The API: one page per public name, from the numpydoc docstrings.
autosummary_generate = True
autosummary_ignore_module_all = False
# pipeline and Pipeline: two pages whose names differ only in case; keep them apart on any file system.
autosummary_filename_map = {"iterable_dask.Pipeline": "iterable_dask.Pipeline-class"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "Client": "distributed.Client",
    "LocalCluster": "distributed.LocalCluster",
    "Security": "distributed.security.Security",
    "Bag": "dask.bag.Bag",
    "DataFrame": "dask.dataframe.DataFrame",
    "PathLike": "os.PathLike",
    "BaseIterable": "iterable.base.BaseIterable",
    "ConversionResult": "iterable.types.ConversionResult",
    "BulkConversionResult": "iterable.types.BulkConversionResult",
    "PipelineResult": "iterable.types.PipelineResult",
    "path-like": ":term:`python:path-like object`",
    "iterable": ":term:`python:iterable`",
    "callable": ":term:`python:callable`",
}
# Words numpydoc finds in free-text types that are not names to link.
numpydoc_xref_ignore = {
    "optional",
    "default",
    "or",
    "of",
    "and",
    "a",
    "an",
    "the",
    "one",
    "each",
    "any",
    "to",
    "in",
    "with",
    "per",
    "from",
    "as",
    "is",
    "none",
    "None",
    "record",
    "records",
    "state",
    "function",
    "object",
    "objects",
    "cluster",
    "mapping",
    "sequence",
    "value",
    "values",
    "kwargs",
    "these",
    "path",
    "paths",
    "class",
    "instance",
    "list",
    "URL",
    "URLs",
    "glob",
    "folder",
}

# Links to the projects iterable_dask stands on, resolved offline (see the module docstring).
INVENTORIES = write_inventories(os.path.join(HERE, "_build", "inventories"))
intersphinx_mapping = {name: (url, path) for name, (url, path) in INVENTORIES.items()}
intersphinx_timeout = 1
extlinks = {
    "pypi": ("https://pypi.org/project/%s/", "%s"),
}

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "pydata_sphinx_theme"
html_title = f"iterable_dask {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
