"""The package's rooms and their doors: lower layers never import higher ones.

core <- io <- streams / pipelines / conversion <- the top (``__init__``, cli, sample).
Parsed from the source with :mod:`ast`, so a lazy import inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import iterable_dask

PACKAGE = pathlib.Path(iterable_dask.__file__).parent
ROOMS = ("core", "columnar", "io", "streams", "pipelines", "conversion")
#: Which rooms each room may import from (besides itself).
ALLOWED = {
    "core": set(),
    "columnar": {"core"},
    "io": {"core", "columnar"},
    "streams": {"core", "io"},
    "pipelines": {"core", "io"},
    "conversion": {"core", "columnar", "io"},
    "top": {"core", "columnar", "io", "streams", "pipelines", "conversion", "top"},
}
#: The public API as it stood before the move to subpackages; it must not shrink.
PUBLIC = {
    "DEFAULT_CHUNK_SIZE", "DEFAULT_PARALLEL_MODE", "DEFAULT_PARALLEL_WORKERS", "ClusterConnectionError",
    "EmptySourceError", "FileConversionError", "ParallelBulkConversionResult", "ParallelConversionResult",
    "FileWriteError", "IterableDaskError", "ParallelReader", "PartitionReadError", "SourceReadError",
    "UnpicklableFunctionError", "UnsplittableFileError", "WrittenFile", "ParallelPipelineResult", "Pipeline",
    "RecordError", "__version__", "bulk_convert", "close_embedded_clusters", "compute", "convert",
    "expand_sources", "get_client", "local_cluster", "pipeline", "parallel_read", "parallel_write",
    "plan_partitions", "read_bag", "records_to_bag", "write_bag",
}  # fmt: skip


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _room(parts: tuple[str, ...]) -> str:
    return parts[0] if parts and parts[0] in ROOMS else "top"


def _imported_rooms(path: pathlib.Path) -> set[tuple[str, int]]:
    """(room, line) for every import of an iterable_dask module in ``path``."""
    package = path.relative_to(PACKAGE).parts[:-1]  # the package a relative import starts from
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[tuple[str, ...]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                mod = tuple(node.module.split(".")) if node.module else ()
                full = base + mod
                targets = [full if mod else (*full, alias.name) for alias in node.names]
            elif node.module and node.module.split(".")[0] == "iterable_dask":
                mod = tuple(node.module.split(".")[1:])
                targets = [mod if mod else (alias.name,) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "iterable_dask"]
        for target in targets:
            found.add((_room(target), node.lineno))
    return found


def test_rooms_exist_with_a_door():
    for room in ROOMS:
        door = PACKAGE / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(door.read_text()))
        assert doc and "May import:" in doc, f"{door} must say what it holds and which rooms it may import"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    own = _room(path.relative_to(PACKAGE).parts[:-1])
    allowed = ALLOWED[own] | {own}
    bad = sorted((room, line) for room, line in _imported_rooms(path) if room not in allowed)
    assert not bad, f"{path.relative_to(PACKAGE)} ({own}) imports from higher or sibling rooms: {bad}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above can fail: a core module importing io is caught."""
    fake = PACKAGE / "core" / "_layout_probe.py"
    fake.write_text("from ..io.read import read_bag\n")
    try:
        assert ("io", 1) in _imported_rooms(fake)
    finally:
        fake.unlink()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 450, f"{path.relative_to(PACKAGE)} has {lines} lines: split it along its seams"


def test_public_api_unchanged():
    assert set(iterable_dask.__all__) >= PUBLIC
    for name in iterable_dask.__all__:
        assert hasattr(iterable_dask, name), name
    assert callable(iterable_dask.convert) and callable(iterable_dask.pipeline)
    assert iterable_dask.config.get("chunk-size") == iterable_dask.DEFAULT_CHUNK_SIZE
