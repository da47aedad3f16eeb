"""Intersphinx inventories written from the installed packages, so the build never needs the network.

Why: intersphinx normally downloads each project's ``objects.inv`` at build
time. The machines this project builds on (developers' and CI's) reach the
package registries only, and no installed wheel ships an ``objects.inv``
(Python's, Dask's, distributed's, pandas', pyarrow's and fsspec's live on
their documentation sites). So each inventory is written here, before
intersphinx reads it, from the names the installed packages really have, and
points at the URL each project's documentation uses for a name:

=============  =====================================================================
project        page of a name
=============  =====================================================================
python         ``library/<module>.html#<name>`` (builtins: functions, stdtypes,
               exceptions, constants); glossary terms ``glossary.html#term-<term>``
dask           ``generated/<name>.html`` (dask.bag, dask.dataframe),
               ``api.html`` (top level), ``configuration.html`` (dask.config)
distributed    ``api.html#<name>`` (``distributed.security``: ``tls.html``)
pandas         ``reference/api/<name>.html``
pyarrow        ``python/generated/<name>.html``
fsspec         ``api.html#<name>``
=============  =====================================================================

A name that is not installed is not listed, so a reference to it fails the
nitpicky build instead of becoming a dead link. The anchors follow each
site's layout as of their 2024-2026 releases; a site that reorganises breaks
a link, not the build.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import zlib
from collections.abc import Callable, Iterable, Iterator

__all__ = ["PROJECTS", "write_inventories"]

Entry = tuple[str, str, str]  # (name, role, uri)
LABELS = {  # label -> (page#anchor, title): the labels numpydoc's type aliases refer to
    "bltin-boolean-values": ("library/stdtypes.html#boolean-type-bool", "Boolean type - bool"),
}

STDLIB = [
    "collections",
    "collections.abc",
    "concurrent.futures",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "functools",
    "gzip",
    "io",
    "itertools",
    "json",
    "logging",
    "multiprocessing",
    "os",
    "os.path",
    "pathlib",
    "pickle",
    "queue",
    "signal",
    "subprocess",
    "tempfile",
    "threading",
    "types",
    "typing",
    "warnings",
]
STDTYPES = {"str", "dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "memoryview", "range"}
GLOSSARY = ["path-like object", "iterable", "iterator", "callable", "file object", "generator", "context manager"]


def _role(obj: object) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _public(module: object) -> Iterator[tuple[str, object]]:
    names = set(getattr(module, "__all__", ())) | {n for n in dir(module) if not n.startswith("_")}
    for name in sorted(names):
        try:
            obj = getattr(module, name)
        except AttributeError:
            continue
        if not inspect.ismodule(obj):
            yield name, obj


def _members(prefix: str, cls: type, uri: Callable[[str], str]) -> Iterator[Entry]:
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        role = "property" if isinstance(value, property) else "method" if callable(value) else "attribute"
        yield f"{prefix}.{name}", role, uri(f"{prefix}.{name}")


def _python() -> Iterator[Entry]:
    for name, obj in vars(builtins).items():
        if name.startswith("_"):
            continue
        role = _role(obj)
        if role == "exception":
            yield name, role, f"library/exceptions.html#{name}"
        elif name in {"None", "True", "False", "Ellipsis", "NotImplemented"}:
            yield name, "data", f"library/constants.html#{name}"
        elif role in {"class", "function"}:
            yield name, role, f"library/{'stdtypes' if name in STDTYPES else 'functions'}.html#{name}"
    for module_name in STDLIB:
        module = importlib.import_module(module_name)
        yield module_name, "module", f"library/{module_name}.html#module-{module_name}"
        for name, obj in _public(module):
            yield f"{module_name}.{name}", _role(obj), f"library/{module_name}.html#{module_name}.{name}"
    for term in GLOSSARY:
        yield term, "std:term", f"glossary.html#term-{term.replace(' ', '-')}"
    for label, (uri, title) in LABELS.items():
        yield label, "std:label", f"{uri} {title}"


def _dask() -> Iterator[Entry]:
    import dask
    import dask.bag
    import dask.config
    import dask.dataframe

    def generated(name: str) -> str:
        return f"generated/{name}.html#{name}"

    for module, page in ((dask.bag, generated), (dask.dataframe, generated)):
        for name, obj in _public(module):
            full = f"{module.__name__}.{name}"
            yield full, _role(obj), page(full)
            if inspect.isclass(obj) and name in {"Bag", "DataFrame", "Series"}:
                yield from _members(full, obj, generated)
    for name in ("compute", "persist", "delayed", "visualize"):
        yield f"dask.{name}", "function", f"api.html#dask.{name}"
    for name in ("get", "set", "refresh", "update_defaults", "expand_environment_variables"):
        yield f"dask.config.{name}", "function", f"configuration.html#dask.config.{name}"


def _distributed() -> Iterator[Entry]:
    import distributed
    import distributed.security

    def api(name: str) -> str:
        return f"api.html#{name}"

    for name, obj in _public(distributed):
        yield f"distributed.{name}", _role(obj), api(f"distributed.{name}")
        if inspect.isclass(obj) and name in {"Client", "Future", "LocalCluster"}:
            yield from _members(f"distributed.{name}", obj, api)
    yield "distributed.security.Security", "class", "tls.html#distributed.security.Security"


def _pandas() -> Iterator[Entry]:
    import pandas

    def page(name: str) -> str:
        return f"reference/api/{name}.html#{name}"

    for name, obj in _public(pandas):
        yield f"pandas.{name}", _role(obj), page(f"pandas.{name}")
        if name in {"DataFrame", "Series"}:
            yield from _members(f"pandas.{name}", obj, page)


def _pyarrow() -> Iterator[Entry]:
    import pyarrow
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    for module in (pyarrow, pyarrow.csv, pyarrow.json, pyarrow.parquet):
        for name, obj in _public(module):
            full = f"{module.__name__}.{name}"
            yield full, _role(obj), f"python/generated/{full}.html#{full}"


def _fsspec() -> Iterator[Entry]:
    import fsspec
    import fsspec.core
    import fsspec.spec

    for module in (fsspec, fsspec.core, fsspec.spec):
        for name, obj in _public(module):
            yield f"{module.__name__}.{name}", _role(obj), f"api.html#{module.__name__}.{name}"


#: project -> (documentation root, the entries of its inventory)
PROJECTS: dict[str, tuple[str, Callable[[], Iterable[Entry]]]] = {
    "python": ("https://docs.python.org/3/", _python),
    "dask": ("https://docs.dask.org/en/stable/", _dask),
    "distributed": ("https://distributed.dask.org/en/stable/", _distributed),
    "pandas": ("https://pandas.pydata.org/docs/", _pandas),
    "pyarrow": ("https://arrow.apache.org/docs/", _pyarrow),
    "fsspec": ("https://filesystem-spec.readthedocs.io/en/latest/", _fsspec),
}


def _dump(path: str, project: str, entries: Iterable[Entry]) -> None:
    lines = []
    for name, role, uri in sorted(set(entries)):
        domain_role = role if ":" in role else f"py:{role}"
        target, _, title = uri.partition(" ")
        lines.append(f"{name} {domain_role} 1 {target} {title or '-'}\n")
    header = f"# Sphinx inventory version 2\n# Project: {project}\n# Version: installed\n"
    header += "# The remainder of this file is compressed using zlib.\n"
    temporary = f"{path}.{os.getpid()}"  # two builds at once (make docs beside make test) never read half a file
    with open(temporary, "wb") as f:
        f.write(header.encode() + zlib.compress("".join(lines).encode(), 9))
    os.replace(temporary, path)


def write_inventories(folder: str) -> dict[str, tuple[str, str]]:
    """Write one ``<project>.inv`` per project into ``folder``; return intersphinx's mapping to them."""
    os.makedirs(folder, exist_ok=True)
    mapping = {}
    for project, (url, entries) in PROJECTS.items():
        path = os.path.join(folder, f"{project}.inv")
        _dump(path, project, entries())
        mapping[project] = (url, path)
    return mapping
