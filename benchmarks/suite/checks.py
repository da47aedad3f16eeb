"""Equality checks: a contender's output against iterabledata's sequential output.

Text outputs of engines that write the same format differently (quoting,
spacing, line ends, part files instead of one file per input) are compared
as rows and values: every output file is read with pyarrow with every column
as a string, the files are concatenated in name order, and the tables must be
equal column by column in the reference's column order. Parquet outputs are
compared the same way, so a contender that wrote ``large_string`` or typed
columns with the same values passes; one with other values, rows, order or
columns does not.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

__all__ = ["fingerprint", "same_bytes", "same_groups", "same_rows", "same_value", "table_of"]


def _read(path: str) -> pa.Table:
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".parquet"):
        return pq.read_table(path)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return pajson.read_json(path)
    if name.endswith(".csv"):
        with pa.input_stream(path) as f:
            head = f.read(1 << 16).decode("utf-8", "replace").splitlines()[0]
        names = next(csv.reader([head]))
        types = {n: pa.string() for n in names}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    raise ValueError(f"no reader for {path!r}")


def table_of(paths: Iterable[str]) -> pa.Table | None:
    """The rows of ``paths`` (in order; empty files skipped) as one table of strings, or None if there are none."""
    tables = []
    for path in paths:
        if os.path.getsize(path) == 0:
            continue
        t = _read(path)
        tables.append(pa.table({n: t[n].cast(pa.string()) for n in t.column_names}))
    if not tables:
        return None
    columns = tables[0].column_names
    if any(set(t.column_names) != set(columns) for t in tables[1:]):
        return None
    return pa.concat_tables([t.select(columns) for t in tables]).combine_chunks()


def _files(location: str) -> list[str]:
    if os.path.isfile(location):
        return [location]
    found = []
    for folder, _, names in os.walk(location):
        found += [os.path.join(folder, n) for n in names if not n.startswith((".", "_"))]
    return sorted(found)


def same_rows(reference: str, output: str) -> str | None:
    """None if the files under ``output`` hold the rows and values of those under ``reference``; else why not."""
    ref, got = _files(reference), _files(output)
    if not got:
        return "no output files"
    a, b = table_of(ref), table_of(got)
    if b is None:
        return "output files disagree on their columns, or are all empty"
    if a is None:
        return "the reference is empty"
    if set(a.column_names) != set(b.column_names):
        return f"columns {b.column_names} instead of {a.column_names}"
    if a.num_rows != b.num_rows:
        return f"{b.num_rows} rows instead of {a.num_rows}"
    b = b.select(a.column_names)
    for name in a.column_names:
        if not a[name].equals(b[name]):
            return f"column {name!r} differs"
    return None


def same_bytes(reference: str, output: str) -> str | None:
    """None if ``output`` holds files of the same names and bytes as ``reference``; else the first that differs.

    For outputs too big to compare row by row cheaply, from writers that must agree byte for byte.
    """
    ref, got = _files(reference), _files(output)
    names = [os.path.relpath(p, reference) for p in ref]
    if [os.path.relpath(p, output) for p in got] != names:
        return f"files {[os.path.relpath(p, output) for p in got][:3]} instead of {names[:3]}"
    for name, a, b in zip(names, ref, got, strict=True):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return f"{name} differs"
                if not x:
                    break
    return None


def same_value(reference: Any, output: Any) -> str | None:
    """None if the two results are equal; else both, shortened."""
    return None if reference == output else f"{str(output)[:80]} instead of {str(reference)[:80]}"


def same_groups(reference: dict[str, float], output: dict[str, float]) -> str | None:
    """None if both map the same keys to sums equal to 1e-9 relative (float sums differ in their last bits by order)."""
    if set(reference) != set(output):
        return f"groups {sorted(output)} instead of {sorted(reference)}"
    wrong = [k for k in reference if not math.isclose(reference[k], output[k], rel_tol=1e-9)]
    return f"sums differ for {wrong}" if wrong else None


def fingerprint(records: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Record count and an order-independent checksum of the records with values as strings (their multiset)."""
    n = total = 0
    for record in records:
        n += 1
        total += hash(tuple(sorted((k, str(v)) for k, v in record.items())))
    return n, total & (2**64 - 1)
