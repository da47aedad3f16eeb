"""Checks a parallel conversion makes before it schedules any work, and the resume rule.

Everything here runs in the caller and only looks at names and file metadata
(no records are read), so a bad argument fails at once with an error naming
it, instead of as many per-file failures.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iterable.helpers.detect import detect_file_type

from ..columnar import path_kind
from ..io.atomic import TEMP_PREFIX
from ..io.fs import file_size, is_url, makedirs, modified_ns, open_input

__all__ = [
    "check_format",
    "check_infer_types",
    "check_targets",
    "check_writable",
    "is_complete",
    "prepare_dest",
    "remove_upstream_temporaries",
    "sweep_stale_temporaries",
]

_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{12}-[0-9a-f]{8}\.(?P<name>.+)\Z")


def check_writable(folder: str, argument: str) -> None:
    """Raise an :class:`OSError` naming ``argument`` unless a file can be created in ``folder``.

    Object-store prefixes are not probed (a probe object would be a stray
    key); a missing bucket or credentials fail the first upload instead.
    """
    if is_url(folder):
        return
    folder = folder or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, f"The output folder ({argument}) does not exist", folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=folder)
    except OSError as e:
        raise OSError(e.errno, f"The output folder ({argument}) is not writable: {e.strerror}", folder) from e
    os.close(fd)
    os.remove(probe)


def prepare_dest(dest: str, storage_options: dict[str, Any] | None = None) -> None:
    """Create the destination folder of ``bulk_convert`` as iterabledata does, and check it is writable."""
    if is_url(dest):
        makedirs(dest, storage_options)
        return
    path = Path(dest)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Destination path '{dest}' exists but is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"Cannot create the destination folder (dest): {e.strerror}", dest) from e
    check_writable(dest, "dest")


def check_format(target: str, argument: str) -> None:
    """Raise :class:`ValueError` unless iterabledata knows the format (and codec) of ``target``'s name."""
    try:
        info = detect_file_type(target)
    except ImportError as e:
        raise ValueError(f"The output format of {target!r} ({argument}) needs an optional dependency: {e}") from e
    if not info.get("success"):
        raise ValueError(
            f"Unknown output format for {target!r} ({argument}): iterabledata has no format for its extension"
        )


def check_targets(pairs: list[tuple[str, str]], argument: str) -> None:
    """Check (source, target) pairs: known formats, distinct targets, none onto its source, writable folders."""
    checked: set[str] = set()
    for _, target in pairs:
        name = os.path.basename(target)
        suffix = name[name.find(".") :] if "." in name else name
        if suffix not in checked:
            check_format(target, argument)
            checked.add(suffix)
    seen: dict[str, str] = {}
    for source, target in pairs:
        key = os.path.abspath(target)
        if key == os.path.abspath(source):
            raise ValueError(f"{source!r} would be converted onto itself; choose another {argument}")
        if key in seen:
            raise ValueError(f"{seen[key]!r} and {source!r} would both be converted to {target!r}; change {argument}")
        seen[key] = source
    for folder in {os.path.dirname(t) for _, t in pairs}:
        check_writable(folder, argument)


def check_infer_types(targets: list[str]) -> None:
    """``infer_types`` applies to Parquet targets only."""
    if any(path_kind(t) != "parquet" for t in targets):
        raise ValueError("infer_types=True applies to CSV/TSV sources converted to .parquet targets only")


def is_complete(source: str, target: str, storage_options: dict[str, Any] | None = None) -> bool:
    """The resume rule: whether ``target`` holds a complete conversion of ``source``.

    A target is complete when it exists, is not empty, was last modified no
    earlier than its source, and looks finished: a Parquet footer that
    pyarrow reads, or text (CSV, TSV, JSON Lines) ending in a newline. Outputs
    of iterable_dask are complete by construction (they appear only through
    an atomic rename, or a single upload to an object store); the checks also
    reject most partial files other writers leave, and a source changed after
    its conversion. Either may be a URL.
    """
    storage_options = storage_options
    try:
        # modified_ns first: it drops cached listings, so the size is current too.
        if (
            modified_ns(target, storage_options) < modified_ns(source, storage_options)
            or file_size(target, storage_options) == 0
        ):
            return False
    except (OSError, ValueError):
        return False
    kind = path_kind(target)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            with open_input(target, storage_options) as f:
                pq.read_metadata(f)
        except Exception:
            return False
    elif kind in ("csv", "jsonl"):
        with open_input(target, storage_options) as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    return True


def remove_upstream_temporaries(targets: Iterable[str]) -> None:
    """Remove ``<target>.tmp`` files, as iterabledata's ``convert(atomic=True)`` does before writing."""
    for target in targets:
        if not is_url(target):
            with contextlib.suppress(FileNotFoundError):
                os.remove(target + ".tmp")


def sweep_stale_temporaries(targets: Iterable[str]) -> list[str]:
    """Remove temporaries of these targets that any earlier job left (a crashed caller's).

    Only files named as :func:`iterable_dask.io.atomic.temp_path` names a
    temporary of one of ``targets`` are removed; do not run two conversions to
    the same targets at once.
    """
    names: dict[str, set[str]] = defaultdict(set)
    for target in targets:
        if is_url(target):
            continue  # object-store targets never have temporary keys
        folder, name = os.path.split(target)
        names[folder or "."].add(name)
    removed: list[str] = []
    for folder, wanted in names.items():
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                match = _TEMP_NAME.match(entry.name)
                if match and match.group("name") in wanted:
                    with contextlib.suppress(OSError):
                        os.remove(entry.path)
                        removed.append(entry.path)
    return removed
