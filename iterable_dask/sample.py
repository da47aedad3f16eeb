"""Sample data sets for the demo, the benchmarks and the tests."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
from collections.abc import Iterator
from typing import Any

__all__ = ["sample_records", "write_sample"]

_CITIES = ["Berlin", "Paris", "Lisbon", "Oslo", "Tallinn", "Riga", "Porto", "Lyon"]
_WORDS = ["alpha", "beta", "gamma, delta", 'say "hi"', "epsilon", "zeta", "eta", "theta"]


def sample_records(n: int, seed: int = 0, start: int = 0) -> Iterator[dict[str, str]]:
    """``n`` flat records of strings (as iterabledata reads CSV), deterministic for a seed.

    Examples
    --------
    >>> next(sample_records(1))["id"]
    '0'
    """
    rng = random.Random(seed)
    for i in range(start, start + n):
        yield {
            "id": str(i),
            "city": rng.choice(_CITIES),
            "amount": f"{rng.uniform(0, 1000):.2f}",
            "count": str(rng.randint(0, 100)),
            "note": rng.choice(_WORDS),
        }


def write_sample(path: str, n: int, seed: int = 0, start: int = 0) -> str:
    """Write ``n`` sample records to ``path``; the format comes from the extension.

    Supports ``.csv``, ``.tsv``, ``.jsonl``, ``.parquet`` and ``.gz`` of the
    text formats. Returns ``path``.
    """
    records = sample_records(n, seed, start)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    name = path[:-3] if path.endswith(".gz") else path
    opener: Any = gzip.open if path.endswith(".gz") else open
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(list(records)), path, row_group_size=max(1, min(n, 50_000)))
    elif name.endswith((".csv", ".tsv")):
        delimiter = "\t" if name.endswith(".tsv") else ","
        with opener(path, "wt", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "city", "amount", "count", "note"], delimiter=delimiter)
            writer.writeheader()
            writer.writerows(records)
    elif name.endswith((".jsonl", ".ndjson")):
        with opener(path, "wt", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
    else:
        raise ValueError(f"write_sample cannot write {path!r}: use .csv, .tsv, .jsonl, .parquet or their .gz")
    return path
