"""The package's rooms and their doors: lower layers never import higher ones, and no import cycle.

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


def _modules(root: pathlib.Path = PACKAGE) -> list[pathlib.Path]:
    return sorted(root.rglob("*.py"))


def _room(parts: tuple[str, ...]) -> str:
    return parts[0] if parts and parts[0] in ROOMS else "top"


def _imports(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> set[tuple[tuple[str, ...], str, int]]:
    """(module, imported name, line) for every import of a module of the package at ``root`` in ``path``.

    ``module`` is relative to ``root`` (``("io", "read")``; ``()`` is the
    package's ``__init__``); ``name`` is what ``from module import name``
    takes from it ("" for ``import module``).
    """
    package = path.relative_to(root).parts[:-1]  # the package a relative import starts from
    found: set[tuple[tuple[str, ...], str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            mod = tuple(node.module.split(".")) if node.module else ()
            if node.level:
                full = package[: len(package) - (node.level - 1)] + mod
            elif mod and mod[0] == root.name:
                full = mod[1:]
            else:
                continue
            found |= {(full, alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.Import):
            parts = [a.name.split(".") for a in node.names]
            found |= {(tuple(p[1:]), "", node.lineno) for p in parts if p[0] == root.name}
    return found


def _imported_rooms(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> set[tuple[str, int]]:
    """(room, line) for every import of an iterable_dask module in ``path``."""
    return {(_room(module if module else (name,)), line) for module, name, line in _imports(path, root)}


def _import_graph(root: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at the top or lazily inside a function (dotted names).

    ``from a import b`` imports module ``a.b`` when there is one, else ``a``.
    A module's imports of the packages around it (``from .. import x`` in
    ``io/read.py``) are left out: Python runs those ``__init__`` files first
    anyway, so a package ``__init__`` re-exporting its children is not a cycle.
    """
    modules = {}
    for path in _modules(root):
        parts = path.relative_to(root).with_suffix("").parts
        modules[parts[:-1] if parts[-1] == "__init__" else parts] = path

    def dotted(module: tuple[str, ...]) -> str:
        return ".".join((root.name, *module))

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        enclosing = {module[:i] for i in range(len(module))}  # the packages around it
        targets = set()
        for target, name, _ in _imports(path, root):
            target = (*target, name) if (*target, name) in modules else target
            while target and target not in modules:  # a name from a package that is not a module of its own
                target = target[:-1]
            if target != module and target not in enclosing:
                targets.add(dotted(target))
        graph[dotted(module)] = targets
    return graph


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = [stack.pop()]
            while group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


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
    """The rule above can fail: a core module importing io is caught (a probe package under tmp_path)."""
    root = tmp_path / "iterable_dask"
    (root / "core").mkdir(parents=True)
    for door in (root / "__init__.py", root / "core" / "__init__.py"):
        door.write_text('"""A door."""\n')
    fake = root / "core" / "_layout_probe.py"
    fake.write_text("from ..io.read import read_bag\n\n\ndef later():\n    import iterable_dask.pipelines.runner\n")
    assert _imported_rooms(fake, root) == {("io", 1), ("pipelines", 5)}


def test_no_import_cycles():
    """No module imports, at the top or inside a function, a module that imports it back (directly or not)."""
    assert _import_cycles(_import_graph()) == []


@pytest.mark.parametrize("lazy_import_back", [True, False])
def test_the_cycle_check_sees_a_cycle(tmp_path, lazy_import_back):
    """A synthetic package under tmp_path: a lazy import back makes a cycle; doors re-exporting children do not."""
    root = tmp_path / "iterable_dask"
    (root / "core").mkdir(parents=True)
    files = {
        "__init__.py": "from .core import a, c\nfrom .core.b import y\n",
        "core/__init__.py": '"""A door."""\nfrom .a import x\nfrom .b import y\nfrom .c import z\n',
        "core/a.py": "from . import b\n\nx = 1\n",
        "core/b.py": "def f():\n    from .a import x\n\n    return x\n" if lazy_import_back else "y = 2\n",
        "core/c.py": "from .. import core\nfrom ..core import y\nimport iterable_dask\n\nz = 3\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    graph = _import_graph(root)
    assert graph["iterable_dask.core.c"] == set()  # its own doors: no edge
    cycles = _import_cycles(graph)
    assert cycles == ([["iterable_dask.core.a", "iterable_dask.core.b"]] if lazy_import_back else [])


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
