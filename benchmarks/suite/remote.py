"""Workloads that need more than the shared cluster: objects on a local S3 server, and first-call overhead.

S3: moto's ``ThreadedMotoServer`` on 127.0.0.1 (a child process, so its
request handling does not share the caller's GIL), reached through s3fs; the
8 CSV objects are uploaded once before any timing. DuckDB is not a contender
there: reading S3 needs its httpfs extension, which it downloads at first use.

First call: each run is a fresh Python process doing the whole job, imports
and (for iterable_dask) the start of the embedded cluster included, as a
script run from a shell would.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

from iterable import open_iterable
from iterable.convert.core import convert as upstream_convert

import iterable_dask

from . import peers
from .checks import same_rows
from .data import FILES
from .runner import Contender, Workload, run_fresh
from .workloads import Context, files_equal, values_equal

__all__ = ["BUCKET", "S3", "first_call", "s3_context", "s3_convert", "s3_count", "s3_server"]

BUCKET = "bench-suite"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, ready: Any, stop: Any) -> None:
    """Run moto's S3 server on 127.0.0.1:``port`` until ``stop`` is set (in a child process)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    stop.wait()
    server.stop()


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server in a child process; yields the s3fs ``storage_options`` that reach it."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    port = _free_port()
    process = ctx.Process(target=_serve, args=(port, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the moto S3 server did not start within 60 s")
        yield {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()


class S3:
    """The S3 server of a run, started on first use, with the CSV objects uploaded.

    Parameters
    ----------
    stack : contextlib.ExitStack
        Closes the server when the run ends.
    options : dict, optional
        s3fs options of a server already running (then none is started).
    """

    def __init__(self, stack: contextlib.ExitStack, options: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.given = options
        self.options: dict[str, Any] | None = None
        self.fs: Any = None
        self.rows = 0

    def objects(self, ctx: Context) -> list[str]:
        """URLs of the 8 CSV objects (server started and data uploaded on first call)."""
        if self.options is None:
            import s3fs

            self.options = self.given or self.stack.enter_context(s3_server())
            self.fs = s3fs.S3FileSystem(**self.options)
            if not self.fs.exists(BUCKET):
                self.fs.mkdir(BUCKET)
            folder = ctx.data.csv_files(ctx.sizes.s3_rows, prefix="s3")
            for name in sorted(os.listdir(folder)):
                self.fs.put_file(os.path.join(folder, name), f"{BUCKET}/in/{name}")
            self.rows = ctx.sizes.s3_rows
        self.fs.invalidate_cache()
        return [f"s3://{k}" for k in sorted(self.fs.glob(f"{BUCKET}/in/*.csv"))]

    def reset(self, prefix: str) -> None:
        """Remove every object under ``prefix``."""
        self.fs.invalidate_cache()
        if self.fs.exists(prefix):
            self.fs.rm(prefix, recursive=True)
        self.fs.invalidate_cache()

    def same_objects(self, ref_out: str, ref: Any, out: str, got: Any) -> str | None:
        """The rows of the objects under ``out`` against those under ``ref_out`` (both fetched to local folders)."""
        with tempfile.TemporaryDirectory() as tmp:
            folders = []
            for i, prefix in enumerate((ref_out, out)):
                folder = os.path.join(tmp, str(i))
                os.makedirs(folder)
                self.fs.invalidate_cache()
                for key in sorted(self.fs.find(prefix)):
                    self.fs.get_file(key, os.path.join(folder, key.rsplit("/", 1)[1]))
                folders.append(folder)
            return same_rows(*folders)


def _fetch_each(fs: Any, urls: list[str], work: Any) -> Any:
    """Fetch each object to a local temporary file and pass it to ``work(local, url)``; the results in a list."""
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for url in urls:
            local = os.path.join(tmp, url.rsplit("/", 1)[1])
            fs.get_file(url, local)
            results.append(work(local, url))
            os.remove(local)
        return results


def s3_count(ctx: Context, s3: S3) -> list[Workload]:
    urls = s3.objects(ctx)
    so = s3.options

    def seq(out: str) -> int:
        def count(local: str, url: str) -> int:
            with open_iterable(local) as it:
                return sum(1 for _ in it)

        return sum(_fetch_each(s3.fs, urls, count))

    def ours(out: str) -> int:
        bag = iterable_dask.read_bag(f"s3://{BUCKET}/in/*.csv", storage_options=so)
        return iterable_dask.compute(bag.count(), client=ctx.client)[0]

    contenders = [
        Contender("iterabledata sequential (fetch each object, count)", "baseline", seq),
        Contender("iterable_dask read_bag().count()", "iterable_dask", ours),
        Contender(
            "dask.bag read_text+csv parse, count",
            "peer",
            lambda out: peers.bag_count_csv(urls, ctx.client, so, split=False),
        ),
        Contender(
            "dask.dataframe read_csv, len",
            "peer",
            lambda out: peers.frame_count_csv(f"s3://{BUCKET}/in/*.csv", ctx.client, split=False, storage_options=so),
        ),
        Contender("pyarrow read_csv through s3fs, num_rows", "peer", lambda out: peers.pa_count_csv(urls, s3.fs)),
    ]
    size = f"{FILES} objects x {s3.rows:,} rows"
    work = Workload("s3-count", "S3: count the records of CSV objects", size, FILES * s3.rows, contenders, values_equal)
    return [work]


def s3_convert(ctx: Context, s3: S3) -> list[Workload]:
    urls = s3.objects(ctx)
    so = s3.options

    def seq(out: str) -> None:
        def convert(local: str, url: str) -> None:
            target = local.rsplit(".", 1)[0] + ".jsonl"
            upstream_convert(local, target)
            s3.fs.put_file(target, f"{out}/{os.path.basename(target)}")
            os.remove(target)

        _fetch_each(s3.fs, urls, convert)

    def ours(out: str) -> None:
        result = iterable_dask.bulk_convert(
            f"s3://{BUCKET}/in/*.csv", out, to_ext="jsonl", parallel=True, client=ctx.client, storage_options=so
        )
        if result.failed_files or result.successful_files != FILES:
            raise RuntimeError(f"{result.successful_files} converted; errors {result.errors[:2]}")

    contenders = [
        Contender("iterabledata sequential (fetch, convert, upload each)", "baseline", seq),
        Contender("iterable_dask bulk_convert", "iterable_dask", ours),
        Contender(
            "dask.bag read_text+map+to_textfiles",
            "peer",
            lambda out: peers.bag_convert_csv_jsonl(urls, out, ctx.client, storage_options=so),
        ),
        Contender(
            "dask.dataframe",
            "peer",
            lambda out: peers.frame_convert(f"s3://{BUCKET}/in/*.csv", out, "jsonl", ctx.client, storage_options=so),
        ),
    ]
    size = f"{FILES} objects x {s3.rows:,} rows"
    title = "S3 → S3: bulk CSV → JSON Lines"
    work = Workload("s3-convert", title, size, FILES * s3.rows, contenders, s3.same_objects, reset=s3.reset)
    return [work]


#: What each fresh process runs (``sys.argv[1]`` the CSV folder, ``sys.argv[2]`` the output folder).
FIRST_CALL = {
    "iterabledata sequential": (
        "baseline",
        "import sys; from iterable.convert.core import bulk_convert\n"
        "r = bulk_convert(sys.argv[1], sys.argv[2], to_ext='jsonl'); assert not r.failed_files",
    ),
    "iterable_dask bulk_convert, embedded cluster": (
        "iterable_dask",
        "import sys, iterable_dask\n"
        "r = iterable_dask.bulk_convert(sys.argv[1], sys.argv[2], to_ext='jsonl', parallel=True)\n"
        "assert not r.failed_files, r.errors",
    ),
    "dask.bag, default (process pool) scheduler": (
        "peer",
        "import csv, glob, json, os, sys\nimport dask.bag as db\n"
        "def convert(lines):\n"
        "    rows = csv.reader(lines); head = next(rows)\n"
        "    return [json.dumps(dict(zip(head, r)), ensure_ascii=False) for r in rows]\n"
        "if __name__ == '__main__':\n"
        "    files = sorted(glob.glob(os.path.join(sys.argv[1], '*.csv')))\n"
        "    outs = [os.path.join(sys.argv[2], os.path.basename(f)[:-4] + '.jsonl') for f in files]\n"
        "    db.read_text(files, blocksize=None).map_partitions(convert).to_textfiles(outs, last_endline=True)",
    ),
    "DuckDB COPY": (
        "peer",
        "import glob, os, sys, duckdb\ncon = duckdb.connect()\n"
        "for f in sorted(glob.glob(os.path.join(sys.argv[1], '*.csv'))):\n"
        "    t = os.path.join(sys.argv[2], os.path.basename(f)[:-4] + '.jsonl')\n"
        "    con.execute(f\"COPY (SELECT * FROM read_csv('{f}', all_varchar=true)) TO '{t}' (FORMAT json)\")",
    ),
}


def first_call(ctx: Context) -> list[Workload]:
    rows = ctx.sizes.first_rows
    folder = ctx.data.csv_files(rows, prefix="first")
    contenders = [
        Contender(name, kind, lambda out, code=code: run_fresh(code, folder, out))
        for name, (kind, code) in FIRST_CALL.items()
    ]
    size = f"{FILES} files x {rows:,} rows"
    title = "first call in a fresh process: bulk CSV → JSON Lines, imports and cluster start included"
    work = Workload("first-call", title, size, FILES * rows, contenders, files_equal, fresh=True)
    work.notes.append("wall time of `python -c ...` doing the whole job; iterable_dask starts its embedded cluster")
    return [work]


@contextlib.contextmanager
def s3_context(options: dict[str, Any] | None = None) -> Iterator[S3]:
    """An :class:`S3` on the server of ``options``, or on one it starts at first use and stops at the end."""
    with contextlib.ExitStack() as stack:
        yield S3(stack, options)
