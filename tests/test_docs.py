"""The documentation: the Sphinx site builds offline with no warning, and what is generated covers everything.

``test_docs_build`` runs ``make docs``'s build (warnings are errors, every
reference checked) with every proxy pointed at a closed port, so a build
that reached for the network would fail; the other tests check the pieces
that keep the site from drifting: the API list against ``__all__``, the
configuration reference against the YAML files, the offline inventories,
and the README's size and links.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib

import pytest
import yaml

import iterable_dask
from iterable_dask.cli.app import cli
from iterable_dask.core.names import TASK_NAMES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
sys.path.insert(0, os.path.join(DOCS, "_ext"))

from api_check import documented_names  # noqa: E402
from cli_help import literal_examples  # noqa: E402
from config_reference import DEFAULTS, SCHEMA, settings  # noqa: E402
from offline_inventories import write_inventories  # noqa: E402
from task_names import table_lines  # noqa: E402

PAGES = ["getting-started", "data", "cli", "configuration", "guarantees", "performance", "deployment", "contributing"]


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        out += _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return out


def _page(name: str) -> str:
    """The file autosummary writes for a public name (``conf.autosummary_filename_map`` keeps case apart)."""
    return "iterable_dask.Pipeline-class" if name == "Pipeline" else f"iterable_dask.{name}"


@pytest.mark.slow
def test_docs_build(tmp_path):
    out = tmp_path / "html"
    closed = "http://127.0.0.1:9"  # nothing listens: a download would fail, and -W makes it fatal
    env = {**os.environ, "http_proxy": closed, "https_proxy": closed, "HTTP_PROXY": closed, "HTTPS_PROXY": closed}
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going", "-n", "-q", DOCS, str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    assert run.stderr.strip() == "", run.stderr[-5000:]
    for name in iterable_dask.__all__:
        page = out / "generated" / f"{_page(name)}.html"
        assert page.exists(), f"no API page for iterable_dask.{name}"
        assert f"iterable_dask.{name}" in page.read_text(encoding="utf-8").replace("<wbr>", "")
    configuration = (out / "configuration.html").read_text(encoding="utf-8")
    with open(DEFAULTS, encoding="utf-8") as f:
        for key in _leaves(yaml.safe_load(f)["iterable-dask"]):
            assert f"iterable-dask.{key}" in configuration, key
    cli_page = (out / "cli.html").read_text(encoding="utf-8")
    for command in cli.commands:
        assert f'id="iterable-dask-{command}"' in cli_page, command
    started = (out / "getting-started.html").read_text(encoding="utf-8")
    for name in TASK_NAMES:
        assert f'<span class="pre">{name}</span>' in started, name
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="https://docs.dask.org/en/stable/generated/dask.bag.Bag.html#dask.bag.Bag"' in index


def test_api_reference_lists_every_public_name():
    with open(os.path.join(DOCS, "api.rst"), encoding="utf-8") as f:
        assert documented_names(f.read()) == set(iterable_dask.__all__)


def test_api_check_reads_autosummary_entries_only():
    source = ".. autosummary::\n   :toctree: generated/\n\n   read_bag\n   ~write_bag\n\nText read_dataframe\n"
    assert documented_names(source) == {"read_bag", "~write_bag"}


def test_configuration_reference_has_every_setting_in_yaml_order():
    with open(DEFAULTS, encoding="utf-8") as f:
        defaults = yaml.safe_load(f)["iterable-dask"]
    with open(SCHEMA, encoding="utf-8") as f:
        schema = yaml.safe_load(f)["properties"]["iterable-dask"]
    rows = list(settings(defaults, schema))
    assert [key for key, _, _ in rows] == _leaves(defaults)
    assert all(entry.get("description") for _, _, entry in rows)
    assert ("embedded-cluster.start-timeout", "60s") in [(key, default) for key, default, _ in rows]


def test_task_name_table_has_every_task_name_and_its_submitters():
    table = "\n".join(table_lines())
    for name, (does, submitters) in TASK_NAMES.items():
        row = table[table.index(f"   * - ``{name}``") :].splitlines()
        assert row[1] == f"     - {does}"
        assert all(f"``{s.strip()}``" in row[2] for s in submitters.split(", "))
    with open(os.path.join(DOCS, "getting-started.md"), encoding="utf-8") as f:
        assert ".. iterable-dask-task-names::" in f.read()


def test_cli_examples_become_shell_code_and_globs_stay_plain():
    lines = ["Convert files (s3://b/*.csv).", "", "| Examples:", "|   iterable-dask head 'data/*.csv'", "", "Done."]
    assert literal_examples(lines) == [
        "Convert files (s3://b/\\*.csv).",
        "",
        "Examples:",
        "",
        ".. code-block:: shell",
        "",
        "      iterable-dask head 'data/*.csv'",
        "",
        "",
        "Done.",
    ]


def test_offline_inventories_hold_the_names_the_docs_link(tmp_path):
    mapping = write_inventories(str(tmp_path))
    assert set(mapping) == {"python", "dask", "distributed", "pandas", "pyarrow", "fsspec"}
    wanted = {
        "python": ["os.PathLike py:class 1 library/os.html#os.PathLike", "ValueError py:exception"],
        "dask": ["dask.bag.Bag py:class 1 generated/dask.bag.Bag.html", "dask.dataframe.DataFrame py:class"],
        "distributed": ["distributed.Client py:class 1 api.html#distributed.Client", "distributed.security.Security"],
        "pandas": ["pandas.DataFrame py:class 1 reference/api/pandas.DataFrame.html"],
        "pyarrow": ["pyarrow.Table py:class 1 python/generated/pyarrow.Table.html"],
        "fsspec": ["fsspec.open py:function 1 api.html#fsspec.open"],
    }
    for project, entries in wanted.items():
        url, path = mapping[project]
        assert url.startswith("https://")
        with open(path, "rb") as f:
            header = b"".join(f.readline() for _ in range(4))
            body = zlib.decompress(f.read()).decode()
        assert header.startswith(b"# Sphinx inventory version 2\n")
        for entry in entries:
            assert re.search(rf"^{re.escape(entry)}", body, re.M), (project, entry)


def test_readme_fits_two_screens_and_links_each_docs_page():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert len(readme.splitlines()) < 200
    for page in PAGES:
        assert f"(docs/{page}.md" in readme, f"the README does not link docs/{page}.md"
        assert os.path.exists(os.path.join(DOCS, f"{page}.md"))
    assert "make docs" in readme
