"""The ``iterable-dask`` command: conversions, pipelines and a local cluster from a shell.

Built on click, over the same functions as the Python API:

    app        the command group, ``main()`` and its exit codes
    options    options every command shares (``--json``, ``--progress``, ``-v``, ``--storage-option`` ...)
    errors     how failures map to exit codes and one-line messages
    session    the cluster a command runs on, its dashboard link, and cleanup after Ctrl-C
    report     result objects as JSON and as text
    convert    ``convert`` and ``bulk-convert``
    pipeline   ``pipeline`` (a function imported by name)
    head       ``head``: the first records of any file as JSON lines
    cluster    ``cluster``: a scheduler and workers in the foreground
    demo       ``demo``

Exit codes: 0 all succeeded; 1 some files or records failed; 2 a usage
error (bad flag, no file matched, unknown format, unreachable scheduler);
130 interrupted (Ctrl-C).

May import: core, io, pipelines, conversion, and the top (the public API, sample).
"""

from __future__ import annotations

from .app import main

__all__ = ["main"]
