"""The ``iterable-dask-config`` directive: the configuration reference, generated from the YAML files.

Reads ``iterable_dask/core/iterable-dask.yaml`` (the defaults) and
``iterable-dask-schema.yaml`` (types, allowed values, descriptions) beside
it, and renders one row per setting: its dotted key, default, type, the
environment variable that sets it, and the schema's description. A key
in one file and not the other is a build warning (an error under ``-W``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import iterable_dask.core as core

__all__ = ["setup"]

NAMESPACE = "iterable-dask"
FOLDER = os.path.dirname(core.__file__)
DEFAULTS = os.path.join(FOLDER, "iterable-dask.yaml")
SCHEMA = os.path.join(FOLDER, "iterable-dask-schema.yaml")
logger = logging.getLogger(__name__)


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def settings(defaults: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, dict]]:
    """(dotted key, default, schema entry) for every leaf setting, in the YAML file's order."""
    properties = schema.get("properties", {})
    for key, value in defaults.items():
        entry = properties.get(key)
        if entry is None:
            logger.warning(
                "configuration: %s%s is in %s but not in its schema", prefix, key, os.path.basename(DEFAULTS)
            )
            continue
        if isinstance(value, dict):
            yield from settings(value, entry, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value, entry
    for key in properties.keys() - defaults.keys():
        logger.warning("configuration: %s%s is in the schema but has no default", prefix, key)


def _literal(value: Any) -> str:
    return "``null``" if value is None else f"``{str(value).lower() if isinstance(value, bool) else value}``"


def _type(entry: dict[str, Any]) -> str:
    kinds = entry.get("type", "any")
    text = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if "enum" in entry:
        text += ": " + ", ".join(f"``{v}``" for v in entry["enum"])
    if "minimum" in entry:
        text += f", at least {entry['minimum']}"
    return text


def _env(key: str) -> str:
    return "DASK_" + f"{NAMESPACE}.{key}".upper().replace("-", "_").replace(".", "__")


class ConfigReference(SphinxDirective):
    """Render the settings of the ``iterable-dask`` namespace as a table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(DEFAULTS)
        self.env.note_dependency(SCHEMA)
        defaults = _load(DEFAULTS)[NAMESPACE]
        schema = _load(SCHEMA)["properties"][NAMESPACE]
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 14 18 46", ""]
        lines += ["   * - key", "     - default", "     - type", "     - meaning and environment variable"]
        for key, default, entry in settings(defaults, schema):
            lines += [
                f"   * - ``{NAMESPACE}.{key}``",
                f"     - {_literal(default)}",
                f"     - {_type(entry)}",
                f"     - {entry.get('description', '')}",
                "",
                f"       ``{_env(key)}``",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=SCHEMA), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("iterable-dask-config", ConfigReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
