"""Where a conversion reads and writes: local paths or fsspec URLs, on the caller's side.

Finds the sources of ``bulk_convert`` (through fsspec for URLs), names their
targets as iterabledata does, makes local paths absolute for the workers,
and runs iterabledata's own sequential ``convert`` on URLs by handing it a
local copy of the source and uploading its output whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from iterable.convert import core as upstream
from iterable.types import BulkConversionResult, FileConversionResult

from ..io.atomic import TEMP_PREFIX, atomic_target, new_job_token
from ..io.fs import expand_url, is_url, join, local_input, pop_storage_options
from .checks import prepare_dest
from .run import bulk_totals

__all__ = ["discover", "local_endpoints", "sequential_urls", "split_storage_options", "target_for"]

logger = logging.getLogger(__name__)


def split_storage_options(
    storage_options: dict[str, Any] | None,
    iterableargs: dict[str, Any] | None,
    toiterableargs: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """``storage_options=`` merged with any given in either iterableargs (iterabledata's way), which lose the key."""
    src = dict(iterableargs) if iterableargs is not None else None
    dst = dict(toiterableargs) if toiterableargs is not None else None
    merged = pop_storage_options(None, dst) if dst is not None else {}
    if src is not None:
        merged.update(pop_storage_options(None, src))
    merged.update(storage_options or {})
    return merged, src, dst


def discover(source: str, storage_options: dict[str, Any]) -> list[str]:
    """The files of a glob, folder or file, as iterabledata's ``bulk_convert`` finds them (URLs through fsspec).

    Our own temporaries (a crashed run's) are never sources.
    """
    if is_url(source):
        try:
            files = expand_url(source, storage_options)
        except FileNotFoundError:
            return []
    else:
        files = upstream._discover_files(source)
    return [f for f in files if not os.path.basename(f).startswith(TEMP_PREFIX)]


def target_for(source: str, dest: str, pattern: str | None, to_ext: str | None) -> str:
    """iterabledata's output name for ``source`` in ``dest``; a URL source or dest keeps its ``scheme://``."""
    if not is_url(source) and not is_url(dest):
        return upstream._generate_output_filename(source, dest, pattern, to_ext)
    name = os.path.basename(upstream._generate_output_filename(source.rsplit("/", 1)[-1], ".", pattern, to_ext))
    return join(dest, name)


@contextlib.contextmanager
def local_endpoints(fromfile: str, tofile: str, storage_options: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Local stand-ins for a URL source (a copy) and a URL target (uploaded whole on success)."""
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(local_input(fromfile, storage_options)) if is_url(fromfile) else fromfile
        upload = is_url(tofile)
        yield src, stack.enter_context(atomic_target(tofile, new_job_token(), storage_options)) if upload else tofile


def sequential_urls(
    source: str,
    dest: str,
    pattern: str | None,
    to_ext: str | None,
    storage_options: dict[str, Any],
    args: dict[str, Any],
) -> BulkConversionResult:
    """iterabledata's sequential ``bulk_convert`` where ``source`` or ``dest`` is a URL: its ``convert`` per file."""
    start = time.time()
    if pattern is None and to_ext is None:
        raise ValueError("Either 'pattern' or 'to_ext' must be specified")
    files = discover(source, storage_options)
    if not files:
        logger.warning("No files found matching source: %s", source)
        return BulkConversionResult(**bulk_totals([]), total_elapsed_seconds=time.time() - start)
    prepare_dest(dest, storage_options)
    results = []
    for src in files:
        dst = target_for(src, dest, pattern, to_ext)
        try:
            with local_endpoints(src, dst, storage_options) as (local_src, local_dst):
                results.append(FileConversionResult(src, dst, upstream.convert(local_src, local_dst, **args)))
        except Exception as e:
            logger.error("Error converting %s: %s", src, e)
            results.append(FileConversionResult(src, dst, None, e))
    return BulkConversionResult(**bulk_totals(results), total_elapsed_seconds=time.time() - start)
