"""Benchmark: iterable_dask on objects in S3 against iterabledata's sequential fetch-and-process of each object.

Runs in one process, side by side, against a real S3-protocol server (moto's
``ThreadedMotoServer`` on 127.0.0.1, in a process of its own so that its
request handling does not share this process's GIL with the sequential
baseline) reached through s3fs, and a LocalCluster of 2 worker processes with
1 thread each on 127.0.0.1:

* A: ``read_bag("s3://bucket/in/*.csv").count()`` against, for each object in
  turn, downloading it with s3fs and counting its records with
  ``iterable.open_iterable``; the counts must be equal.
* B: ``bulk_convert(s3 CSV -> s3 JSON Lines, parallel=True)`` against, for each
  object in turn, downloading it, ``iterable.convert.core.convert`` to a local
  JSON Lines file and uploading that; the objects written must be byte-identical.

The baselines' times include the downloads and uploads. 8 CSV files of 100k
rows (5k with ``--small``) are generated under ``benchmarks/data/remote/``
(gitignored, reused) and uploaded to a fresh bucket before any timing. The
cluster is started and warmed up (one untimed run of each contender, whose
outputs are checked) first; each timing is the best (and the median) of
``--repeat`` rounds in which the contenders take turns. There is no target:
the ratio is reported. The load average is printed with the results: other
work on the machine, the S3 server included (it shares the machine's cores
with the workers), lowers the ratios.

Usage::

    python benchmarks/bench_remote.py            # 8 x 100k rows
    python benchmarks/bench_remote.py --small    # a quick check (ratios not meaningful)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from iterable import open_iterable
from iterable.convert.core import convert as iterabledata_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ensure_sample, s3_server, two_worker_cluster

import iterable_dask

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "remote")
FILES = 8
BUCKET = "bench-remote"
BLOCKSIZE = "8MiB"  # more than one file at these sizes: one partition per object


def ensure_csv(path: str, rows: int, seed: int) -> str:
    return ensure_sample(path, rows, seed, DATA)


def interleaved(repeat: int, contenders: dict[str, tuple[Callable[[], Any], Callable[[], None]]]) -> dict[str, list]:
    """Wall times of each contender over ``repeat`` rounds, the contenders taking turns in each round.

    Taking turns spreads whatever else the machine does over all of them. Each
    contender's reset runs, untimed, before each of its runs.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (run, reset) in contenders.items():
            reset()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def fresh_local(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)


def fresh_prefix(fs: Any, prefix: str) -> None:
    """Remove every object under ``prefix`` and forget cached listings."""
    fs.invalidate_cache()
    if fs.exists(prefix):
        fs.rm(prefix, recursive=True)
    fs.invalidate_cache()


def objects(fs: Any, pattern: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.glob(pattern))


# -- the baselines: iterabledata, one object after another ---------------------------------------------------


def sequential_count(fs: Any, pattern: str, scratch: str) -> int:
    """Fetch each object to a local file and count its records with ``open_iterable``."""
    total = 0
    for key in objects(fs, pattern):
        local = os.path.join(scratch, os.path.basename(key))
        fs.get_file(key, local)
        with open_iterable(local) as it:
            total += sum(1 for _ in it)
        os.remove(local)
    return total


def sequential_convert(fs: Any, pattern: str, dest: str, to_ext: str, scratch: str) -> None:
    """Fetch each object, convert it locally with iterabledata, upload the result to ``dest``."""
    for key in objects(fs, pattern):
        name = os.path.basename(key)
        local_in = os.path.join(scratch, name)
        local_out = os.path.join(scratch, f"{name.rsplit('.', 1)[0]}.{to_ext}")
        fs.get_file(key, local_in)
        iterabledata_convert(local_in, local_out)
        fs.put_file(local_out, f"{dest}/{os.path.basename(local_out)}")
        os.remove(local_in)
        os.remove(local_out)


# -- the contenders: iterable_dask on the cluster -------------------------------------------------------------


def dask_count(url: str, so: dict[str, Any], client: Any) -> int:
    (n,) = iterable_dask.compute(
        iterable_dask.read_bag(url, blocksize=BLOCKSIZE, storage_options=so).count(), client=client
    )
    return n


def dask_convert(url: str, dest_url: str, to_ext: str, so: dict[str, Any], client: Any) -> None:
    result = iterable_dask.bulk_convert(url, dest_url, to_ext=to_ext, parallel=True, client=client, storage_options=so)
    if result.failed_files or result.successful_files != FILES:
        raise RuntimeError(f"bulk_convert: {result.successful_files} converted, {result.failed_files} failed")


def same_objects(fs: Any, ours: str, theirs: str) -> bool:
    """Whether the two prefixes hold objects of the same names and the same bytes."""
    a, b = objects(fs, f"{ours}/*"), objects(fs, f"{theirs}/*")
    if [k.rsplit("/", 1)[1] for k in a] != [k.rsplit("/", 1)[1] for k in b] or len(a) != FILES:
        return False
    return all(fs.cat_file(x) == fs.cat_file(y) for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="20x smaller data, for a quick check")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per timing (best and median reported)")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import s3fs

    rows = 5_000 if args.small else 100_000
    src = os.path.join(DATA, "small" if args.small else "full")
    csv_dir, scratch = os.path.join(src, "csv"), os.path.join(src, "scratch")
    print(f"Generating data under {src} (reused when present) ...", flush=True)
    paths = [ensure_csv(os.path.join(csv_dir, f"part-{i}.csv"), rows, seed=i) for i in range(FILES)]
    mib = sum(os.path.getsize(p) for p in paths) / 2**20

    results: list[tuple[str, list[float], list[float], bool]] = []
    load_before = os.getloadavg()[0]
    with s3_server() as so:
        fs = s3fs.S3FileSystem(**so)
        fs.mkdir(BUCKET)
        for path in paths:
            fs.put_file(path, f"{BUCKET}/in/{os.path.basename(path)}")
        pattern, url = f"{BUCKET}/in/*.csv", f"s3://{BUCKET}/in/*.csv"
        print(f"{FILES} CSV objects x {rows:,} rows ({mib:.1f} MiB) uploaded to s3://{BUCKET}/in/", flush=True)

        with two_worker_cluster() as client:
            seq_out, par_out = f"{BUCKET}/out-seq", f"{BUCKET}/out-par"

            def reset_seq_out() -> None:
                fresh_local(scratch)
                fresh_prefix(fs, seq_out)

            def reset_par_out() -> None:
                fresh_prefix(fs, par_out)

            count_contenders = {
                "seq": (partial(sequential_count, fs, pattern, scratch), partial(fresh_local, scratch)),
                "par": (partial(dask_count, url, so, client), fs.invalidate_cache),
            }
            convert_contenders = {
                "seq": (partial(sequential_convert, fs, pattern, seq_out, "jsonl", scratch), reset_seq_out),
                "par": (partial(dask_convert, url, f"s3://{par_out}", "jsonl", so, client), reset_par_out),
            }

            # Warm up (imports, connections on both workers) and check the outputs before any timing.
            counts = {}
            for name, (run, reset) in count_contenders.items():
                reset()
                counts[name] = run()
            counts_equal = counts["seq"] == counts["par"] == FILES * rows
            if not counts_equal:
                print(f"COUNTS DIFFER: iterabledata {counts['seq']}, iterable_dask {counts['par']}", flush=True)
            for run, reset in convert_contenders.values():
                reset()
                run()
            objects_equal = same_objects(fs, par_out, seq_out)

            print("A: count records ...", flush=True)
            times = interleaved(args.repeat, count_contenders)
            name = f"A: read_bag(s3 {FILES} CSV x {rows:,}).count()"
            results.append((name, times["seq"], times["par"], counts_equal))

            print("B: bulk_convert CSV -> jsonl, S3 to S3 ...", flush=True)
            times = interleaved(args.repeat, convert_contenders)
            objects_equal &= same_objects(fs, par_out, seq_out)  # the outputs of the last timed round too
            name = f"B: bulk_convert(s3 {FILES} CSV x {rows:,} -> s3 jsonl)"
            results.append((name, times["seq"], times["par"], objects_equal))
    shutil.rmtree(scratch, ignore_errors=True)

    print()
    print("# iterabledata: each object in turn, fetched (and uploaded) with s3fs; times include the transfers.")
    print(f"# iterable_dask: 2 workers x 1 thread on 127.0.0.1; best and median of {args.repeat} interleaved rounds.")
    print(f"{'':<50} {'best of rounds':-^35}  {'median of rounds':-^35}")
    head = f"{'iterabledata':>12} {'iterable_dask':>13} {'ratio':>7}"
    print(f"{'benchmark':<50} {head}  {head}  outputs")
    all_ok = True
    for name, seq, par, equal in results:
        all_ok &= equal
        cells = [
            f"{s:>11.2f}s {p:>12.2f}s {s / p:>6.2f}x"
            for s, p in ((min(seq), min(par)), (statistics.median(seq), statistics.median(par)))
        ]
        print(f"{name:<50} {cells[0]}  {cells[1]}  {'equal' if equal else 'DIFFERENT'}")
    print(f"\nload average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.small:
        print("\n--small: data 20x smaller, fixed costs dominate; the ratios say little.")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
