"""Paths and URLs: local files and anything fsspec opens (``s3://``, ``gs://``, ``abfs://``, ``http://`` ...).

Every source and destination goes through here. Local paths are made
absolute in the caller, so a worker started in another directory resolves
them as the caller did; a worker that cannot see one says so, naming the
path and itself. URLs are opened with fsspec and ``storage_options`` (Dask's
keyword): byte ranges are read from the object (a range request, never a
full download), whole-file formats are fetched to the worker's scratch
directory and parsed there by iterabledata, and outputs are written to a
local temporary file and uploaded in one piece, so nothing appears at the
final key until the object is complete.

Examples
--------
>>> is_url("s3://bucket/data.csv"), is_url("/tmp/data.csv"), is_url("file:///tmp/data.csv")
(True, False, False)
>>> absolute("file:///tmp/x.csv")
'/tmp/x.csv'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

__all__ = [
    "EXTRAS",
    "absolute",
    "exists",
    "expand_url",
    "file_size",
    "get_fs",
    "is_url",
    "join",
    "local_input",
    "makedirs",
    "missing_path_error",
    "modified_ns",
    "open_input",
    "pop_storage_options",
    "read_bytes",
    "scratch_dir",
    "upload",
]

#: The ``pip install iterable-dask[...]`` extra that brings each protocol's library.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "http": "http",
    "https": "http",
}
_LOCAL = frozenset({"file", "local"})
_GLOB_CHARS = frozenset("*?[")
#: Bytes fetched per request when aligning a byte range to a line start.
ALIGN_BLOCK = 1 << 16


def _protocol(path: str) -> str:
    if "://" not in path:
        return "file"
    return path.split("://", 1)[0].lower()


def is_url(path: Any) -> bool:
    """Whether ``path`` names a non-local fsspec location (``file://`` URLs are local paths)."""
    return isinstance(path, str) and _protocol(path) not in _LOCAL


def absolute(path: str | os.PathLike[str]) -> str:
    """A URL as given; a local path (or ``file://`` URL) made absolute in this process."""
    text = os.fspath(path)
    if is_url(text):
        return text
    if text.startswith(("file://", "local://")):
        text = text.split("://", 1)[1]
    return os.path.abspath(text)


def pop_storage_options(storage_options: dict[str, Any] | None, iterableargs: dict[str, Any]) -> dict[str, Any]:
    """``storage_options=`` merged over iterabledata's ``iterableargs["storage_options"]`` (removed from it)."""
    merged = dict(iterableargs.pop("storage_options", None) or {})
    merged.update(storage_options or {})
    return merged


def get_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path within it; a clear error when its library is missing."""
    import fsspec.core

    protocol = _protocol(url)
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'iterable-dask[{extra}]'" if extra else "install the fsspec implementation for it"
        raise ImportError(f"Opening {url!r} needs the library for {protocol}:// URLs ({e}); {hint}") from None
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise ValueError(f"{url!r}: fsspec knows no protocol {protocol!r}") from None
        raise


def _fresh_fs(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """:func:`get_fs` with the listing cache of ``url`` dropped: workers may have written there since."""
    fs, p = get_fs(url, storage_options)
    fs.invalidate_cache(p)
    return fs, p


def missing_path_error(path: str) -> FileNotFoundError:
    """The error for a local path this process cannot see; on a Dask worker it names the worker."""
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        return FileNotFoundError(2, "File not found", path)
    return FileNotFoundError(
        2,
        f"File not found on worker {address} (workers on other machines need a shared folder at the "
        "same absolute path, or an object-store URL such as s3://bucket/key)",
        path,
    )


def exists(path: str, storage_options: dict[str, Any] | None = None) -> bool:
    if not is_url(path):
        return os.path.exists(absolute(path))
    fs, p = _fresh_fs(path, storage_options)
    return bool(fs.exists(p))


def file_size(path: str, storage_options: dict[str, Any] | None = None) -> int:
    """Size in bytes; a missing file is a :class:`FileNotFoundError` naming it.

    For a URL, the size a listing just gave (:func:`expand_url`) is reused: no request.
    """
    if not is_url(path):
        try:
            return os.path.getsize(path)
        except FileNotFoundError:
            raise missing_path_error(path) from None
    fs, p = get_fs(path, storage_options)
    try:
        return int(fs.size(p))
    except FileNotFoundError:
        raise FileNotFoundError(2, "Object not found", path) from None


def modified_ns(path: str, storage_options: dict[str, Any] | None = None) -> int:
    """Last modification time in nanoseconds since the epoch."""
    if not is_url(path):
        return os.stat(path).st_mtime_ns
    fs, p = _fresh_fs(path, storage_options)
    return int(fs.modified(p).timestamp() * 1e9)


@contextlib.contextmanager
def open_input(path: str, storage_options: dict[str, Any] | None = None) -> Iterator[IO[bytes]]:
    """A seekable binary file: local, or an fsspec file reading byte ranges of the object on demand."""
    if not is_url(path):
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise missing_path_error(path) from None
        with f:
            yield f
        return
    fs, p = _fresh_fs(path, storage_options)
    try:
        f = fs.open(p, "rb", block_size=ALIGN_BLOCK, cache_type="readahead")
    except FileNotFoundError:
        raise FileNotFoundError(2, "Object not found", path) from None
    with f:
        yield f


def read_bytes(path: str, start: int, end: int, storage_options: dict[str, Any] | None = None) -> bytes:
    """Bytes ``[start, end)`` of a file (fewer at its end): one range request for a URL, no size lookup."""
    if not is_url(path):
        with open_input(path) as f:
            f.seek(start)
            return f.read(max(0, end - start))
    fs, p = get_fs(path, storage_options)
    try:
        return fs.cat_file(p, start=start, end=end)
    except FileNotFoundError:
        raise FileNotFoundError(2, "Object not found", path) from None
    except (OSError, ValueError) as e:
        if "range" in str(e).lower() or "416" in str(e):
            return b""  # the range starts at or past the end of the object
        raise


def scratch_dir() -> str:
    """Where this process keeps local copies: the Dask worker's own directory, else the system's temp."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return tempfile.gettempdir()


@contextlib.contextmanager
def local_input(path: str, storage_options: dict[str, Any] | None = None) -> Iterator[str]:
    """A local path holding ``path``'s bytes: the path itself, or a copy of the object removed afterwards.

    The copy keeps the object's file name, so iterabledata detects the format
    and compression from it exactly as for a local file.
    """
    if not is_url(path):
        if not os.path.exists(path):
            raise missing_path_error(path)
        yield path
        return
    fs, p = _fresh_fs(path, storage_options)
    folder = tempfile.mkdtemp(prefix="iterable-dask-in-", dir=scratch_dir())
    local = os.path.join(folder, os.path.basename(p.rstrip("/")) or "object")
    try:
        try:
            fs.get_file(p, local)
        except FileNotFoundError:
            raise FileNotFoundError(2, "Object not found", path) from None
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def upload(local: str, url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Put a complete local file at ``url`` in one operation (an object appears whole or not at all)."""
    fs, p = get_fs(url, storage_options)
    fs.put_file(local, p)


@contextlib.contextmanager
def remote_target(url: str, storage_options: dict[str, Any] | None = None) -> Iterator[str]:
    """A local temporary path named like ``url``'s object; uploaded to ``url`` on success, removed always."""
    fs, p = get_fs(url, storage_options)  # fail early on a missing library
    folder = tempfile.mkdtemp(prefix="iterable-dask-out-", dir=scratch_dir())
    name = os.path.basename(p.rstrip("/")) or f"object-{uuid.uuid4().hex[:8]}"
    local = os.path.join(folder, name)
    try:
        yield local
        fs.put_file(local, p)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def makedirs(folder: str, storage_options: dict[str, Any] | None = None) -> None:
    """Create ``folder`` (a prefix on object stores, where that is a no-op for an existing bucket)."""
    if not is_url(folder):
        os.makedirs(folder, exist_ok=True)
        return
    fs, p = get_fs(folder, storage_options)
    with contextlib.suppress(FileExistsError):
        fs.makedirs(p, exist_ok=True)


def join(folder: str, name: str) -> str:
    """``folder/name`` for a local folder or a URL prefix."""
    if is_url(folder):
        return f"{folder.rstrip('/')}/{name}"
    return os.path.join(folder, name)


def expand_url(url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The objects a URL names: itself, the files under a prefix (sorted, hidden skipped), or a glob's matches.

    Returns full URLs with their protocol. Raises :class:`FileNotFoundError`
    naming the URL when it matches nothing.
    """
    fs, p = _fresh_fs(url, storage_options)
    protocol = _protocol(url)

    def full(path: str) -> str:
        text = fs.unstrip_protocol(path)
        # unstrip_protocol gives the implementation's first protocol (s3a:// -> s3://): keep the user's.
        return f"{protocol}://{text.split('://', 1)[1]}" if "://" in text else text

    if _GLOB_CHARS & set(p):
        found = fs.glob(p, detail=True)  # one listing, sizes included (file_size reuses them)
        matches = sorted(name for name, info in found.items() if info.get("type") == "file")
        if not matches:
            raise FileNotFoundError(2, "No objects match the pattern", url)
        return [full(m) for m in matches]
    try:
        info = fs.info(p)
    except FileNotFoundError:
        raise FileNotFoundError(2, "Object or prefix not found", url) from None
    if info.get("type") == "directory":
        entries = fs.ls(p, detail=True)
        files = sorted(
            e["name"] for e in entries if e.get("type") == "file" and not os.path.basename(e["name"]).startswith(".")
        )
        if not files:
            raise FileNotFoundError(2, "The prefix holds no objects", url)
        return [full(f) for f in files]
    return [url]
