"""Deterministic data for the suite: seeded sample files, made once per size under a data folder.

Three sizes: ``quick`` (a smoke run), ``full`` (the report's) and ``targets``
(the per-issue target checks of :mod:`benchmarks.suite.targets`, at the
issues' sizes where a run stays near ten minutes on 2 cores).

Every file comes from :func:`iterable_dask.sample.sample_records` with a fixed
seed, so two runs (and two machines) time the same bytes. A stamp beside each
file or folder says it is complete; a half-written one from an interrupted
run is made again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass

from iterable_dask.sample import sample_records, write_sample

__all__ = ["FILES", "SIZES", "Data", "Sizes", "wide_jsonl"]

#: Files of the bulk workloads (one task each on the cluster).
FILES = 8


@dataclass(frozen=True)
class Sizes:
    """How much data each workload gets (one set for ``--quick``, one for ``--full``)."""

    pipe_cpu_rows: int  # CSV rows through the ~0.1 ms a record pipeline
    pipe_trivial_rows: int  # CSV rows through the trivial pipeline
    file_rows: tuple[int, int, int]  # rows per file of the 8 CSV files, three sizes (the last is the headline)
    wide_rows: int  # rows per file of the 8 wide JSON Lines files
    big_rows: int  # rows of the one big CSV (split convert, read_bag count)
    small_files: tuple[int, int, int]  # numbers of small CSV files, three sizes (the last is the headline)
    small_rows: int  # rows per small file
    gz_rows: int  # rows per file of the 8 gzip JSON Lines files (parallel_read, read_dataframe)
    s3_rows: int  # rows per object of the 8 CSV objects on the S3 server
    first_rows: int  # rows per file of the 8 CSV files of the first-call workload
    ship_records: int  # records in the caller shipped to the cluster (packed chunks vs from_sequence)
    wait_rows: int  # records of each of the 8 in-memory sources that wait 1 ms every 100 records
    memory_rows: tuple[int, int]  # CSV rows through the pipeline in a fresh caller, two sizes (memory growth)
    frame_rows: tuple[int, int]  # rows per gzip JSON Lines file of the DataFrame graph's caller, two sizes
    tiny_files: int  # CSV files of 3 rows through bulk_convert in a fresh caller (its peak memory)


SIZES = {
    "quick": Sizes(
        pipe_cpu_rows=200,
        pipe_trivial_rows=400,
        file_rows=(50, 100, 200),
        wide_rows=100,
        big_rows=2_000,
        small_files=(4, 8, 16),
        small_rows=10,
        gz_rows=200,
        s3_rows=100,
        first_rows=50,
        ship_records=2_000,
        wait_rows=200,
        memory_rows=(200, 2_000),
        frame_rows=(20, 200),
        tiny_files=50,
    ),
    "full": Sizes(
        pipe_cpu_rows=20_000,
        pipe_trivial_rows=50_000,
        file_rows=(5_000, 15_000, 30_000),
        wide_rows=10_000,
        big_rows=300_000,
        small_files=(250, 1_000, 2_000),
        small_rows=40,
        gz_rows=25_000,
        s3_rows=25_000,
        first_rows=5_000,
        ship_records=100_000,
        wait_rows=20_000,
        memory_rows=(100_000, 1_000_000),
        frame_rows=(10_000, 100_000),
        tiny_files=20_000,
    ),
    # The sizes the issues' scripts used, halved or so where a run would pass ten minutes on 2 cores: the
    # CPU-bound pipeline (100,000 rows), the wide records (50,000), the gzip files (150,000), the S3 objects
    # (100,000) and the pipeline's memory (3,000,000 rows against 100,000).
    "targets": Sizes(
        pipe_cpu_rows=50_000,
        pipe_trivial_rows=100_000,
        file_rows=(10_000, 30_000, 100_000),
        wide_rows=30_000,
        big_rows=1_000_000,
        small_files=(250, 1_000, 2_000),
        small_rows=40,
        gz_rows=100_000,
        s3_rows=50_000,
        first_rows=5_000,
        ship_records=100_000,
        wait_rows=20_000,
        memory_rows=(100_000, 1_000_000),
        frame_rows=(10_000, 100_000),
        tiny_files=100_000,
    ),
}


def wide_jsonl(path: str, rows: int, seed: int) -> None:
    """A JSON Lines file of ``rows`` records with 20 string fields (the sample's 5 and 15 more)."""
    with open(path, "w", encoding="utf-8") as f:
        for r in sample_records(rows, seed=seed, start=seed * rows):
            wide = {**r, **{f"f{k:02d}": f"{r['city']}-{k}-{r['id']}" for k in range(15)}}
            f.write(json.dumps(wide) + "\n")


class Data:
    """The suite's input files under ``root`` (made on first use, then reused).

    Parameters
    ----------
    root : str
        The data folder of one size, e.g. ``benchmarks/data/suite/full``.
    sizes : Sizes
        How many rows and files.
    """

    def __init__(self, root: str, sizes: Sizes) -> None:
        self.root, self.sizes = root, sizes

    def _folder(self, name: str, stamp: str, make) -> str:
        """``root/name``, made by ``make(folder)`` unless a stamp ``stamp`` says it is complete."""
        folder = os.path.join(self.root, name)
        mark = os.path.join(self.root, "stamps", f"{name}.{stamp}")
        if not os.path.exists(mark):
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            make(folder)
            os.makedirs(os.path.dirname(mark), exist_ok=True)
            with open(mark, "w") as f:
                json.dump(asdict(self.sizes), f)
        return folder

    def csv_files(self, rows: int, files: int = FILES, prefix: str = "csv") -> str:
        """A folder of ``files`` CSV files of ``rows`` rows, ``part-0.csv`` ... (seed = file number)."""

        def make(folder: str) -> None:
            width = len(str(files - 1))
            for i in range(files):
                write_sample(os.path.join(folder, f"part-{i:0{width}d}.csv"), rows, seed=i, start=i * rows)

        return self._folder(f"{prefix}-{files}x{rows}", "v1", make)

    def wide_files(self) -> str:
        """8 JSON Lines files of 20-field records."""
        rows = self.sizes.wide_rows

        def make(folder: str) -> None:
            for i in range(FILES):
                wide_jsonl(os.path.join(folder, f"wide-{i}.jsonl"), rows, seed=i)

        return self._folder(f"wide-{FILES}x{rows}", "v1", make)

    def gz_files(self, rows: int | None = None) -> str:
        """8 gzip JSON Lines files of ``rows`` sample records each (default the size's ``gz_rows``)."""
        rows = rows or self.sizes.gz_rows

        def make(folder: str) -> None:
            for i in range(FILES):
                write_sample(os.path.join(folder, f"part-{i}.jsonl.gz"), rows, seed=i, start=i * rows)

        return self._folder(f"gz-{FILES}x{rows}", "v1", make)

    def big_csv(self, rows: int | None = None) -> str:
        """One CSV file of ``rows`` rows (default the size's ``big_rows``)."""
        rows = rows or self.sizes.big_rows
        folder = self._folder(f"big-{rows}", "v1", lambda f: write_sample(os.path.join(f, "big.csv"), rows, seed=99))
        return os.path.join(folder, "big.csv")

    def small_files(self, files: int) -> str:
        """A folder of ``files`` CSV files of ``small_rows`` rows each."""
        return self.csv_files(self.sizes.small_rows, files, prefix="small")

    def tiny_files(self) -> str:
        """A folder of ``tiny_files`` CSV files of 3 rows each."""
        return self.csv_files(3, self.sizes.tiny_files, prefix="tiny")
