"""Atomic outputs: write to a hidden temporary name beside the target, then rename.

Temporary names carry a job token, ``.iterable-dask-<job>-<random>.<name>``,
so they keep the target's extensions (iterabledata picks the format and
codec from them) and so the caller can sweep what a killed worker left
behind once the job is over.

A URL target (``s3://...``) is written to a local temporary file named like
the object and uploaded in one piece when complete: object stores show an
object only once its upload completes, so a failed or killed task leaves
nothing at the final key and no temporary keys at all.
"""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from .fs import is_url, makedirs, remote_target

__all__ = ["TEMP_PREFIX", "atomic_target", "ensure_output_folder", "new_job_token", "sweep_temporaries", "temp_path"]

TEMP_PREFIX = ".iterable-dask-"


def ensure_output_folder(folder: str, storage_options: dict[str, Any] | None = None) -> None:
    """Create ``folder`` if needed; a clear error when it cannot be created or written."""
    if is_url(folder):
        makedirs(folder, storage_options)
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OSError(f"Cannot create the destination folder {folder!r}: {e}") from e
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"The destination folder {folder!r} is not writable")


def new_job_token() -> str:
    """A random token naming one job's temporary files."""
    return uuid.uuid4().hex[:12]


def temp_path(target: str, job: str) -> str:
    """A fresh temporary path beside ``target`` for job ``job``."""
    folder, name = os.path.split(target)
    return os.path.join(folder, f"{TEMP_PREFIX}{job}-{uuid.uuid4().hex[:8]}.{name}")


@contextlib.contextmanager
def atomic_target(target: str, job: str, storage_options: dict[str, Any] | None = None) -> Iterator[str]:
    """Yield a temporary path; rename it to ``target`` on success, remove it on failure.

    For a URL ``target`` the temporary path is local, uploaded to ``target`` on success.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_target(os.path.join(folder, "out.txt"), "job") as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> os.listdir(folder)
    ['out.txt']
    """
    if is_url(target):
        with remote_target(target, storage_options) as tmp:
            yield tmp
        return
    tmp = temp_path(target, job)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def sweep_temporaries(folders: Iterable[str], job: str) -> list[str]:
    """Remove temporary files job ``job`` left in ``folders`` (a killed task's); return them."""
    removed = []
    for folder in set(folders):
        if is_url(folder):
            continue  # object-store targets have no temporary keys: their temporaries are local

        for path in glob.glob(os.path.join(glob.escape(folder or "."), f"{TEMP_PREFIX}{job}-*")):
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(path)
    return removed
