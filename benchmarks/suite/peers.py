"""The peers: each job done as a user of dask.bag, dask.dataframe, plain pyarrow or DuckDB would write it.

Each function does one job and returns what the job yields (nothing for a
conversion: the files in ``out`` are its result). The hand-written dask.bag
versions parse CSV lines with :mod:`csv` per partition and drop the header
row wherever it appears, which is right for files without newlines inside
quoted fields (the suite's data has none; the equality check would catch it).
Every engine is given all columns as strings, as iterabledata reads CSV, so
that its output can equal iterabledata's.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import dask.bag as db
import dask.dataframe as dd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

__all__ = [
    "bag_convert_csv_jsonl",
    "bag_convert_jsonl_csv",
    "bag_count_csv",
    "bag_pipeline",
    "bag_records",
    "blocksize_for",
    "csv_header",
    "duck_copy",
    "duck_count_csv",
    "duck_groupby",
    "frame_convert",
    "frame_count_csv",
    "frame_groupby",
    "part_name",
    "pa_convert",
    "pa_count_csv",
    "pa_groupby",
    "pa_records",
]


def csv_header(path: str, fs: Any = None) -> list[str]:
    """The header row of a CSV file (through ``fs.open`` for a remote one)."""
    opener = fs.open if fs is not None else open
    with opener(path, "rb") as f:
        return next(csv.reader([f.readline().decode("utf-8")]))


def blocksize_for(paths: list[str]) -> int:
    """Bytes per partition that give about 8 partitions over ``paths`` (at least 1 MiB): 4 per worker."""
    return max(1 << 20, sum(os.path.getsize(p) for p in paths) // 8)


def part_name(i: int) -> str:
    """Part file names that sort in partition order."""
    return f"{i:05d}"


# -- dask.bag: read_text + map + to_textfiles -------------------------------------------------------------------


def _csv_records(lines: Any, header: list[str] | None = None) -> Iterator[dict[str, str]]:
    """Records of CSV lines; the header is the first row unless given (then rows equal to it are dropped)."""
    rows = csv.reader(lines)
    if header is None:
        header = next(rows, None)
    for row in rows:
        if row != header:
            yield dict(zip(header, row, strict=True))


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def _apply(record: dict[str, Any], func: Any) -> Any:
    return func(record, {})


def _is_not_none(record: Any) -> bool:
    return record is not None


def bag_pipeline(src: str, out: str, func: Any, client: Any) -> None:
    """``func(record, {})`` over a CSV file's records, written as JSON Lines part files into ``out``."""
    header = csv_header(src)
    bag = db.read_text(src, blocksize=blocksize_for([src])).map_partitions(_csv_records, header)
    lines = bag.map(_apply, func).filter(_is_not_none).map(_dumps)
    lines.to_textfiles(os.path.join(out, "*.jsonl"), name_function=part_name, last_endline=True, scheduler=client)


def _csv_to_json_lines(lines: Any) -> Iterator[str]:
    return map(_dumps, _csv_records(lines))


def _json_lines_to_csv(lines: Any) -> Iterator[str]:
    """One CSV text of a partition of JSON Lines (header from the first record)."""
    buffer, writer = io.StringIO(), None
    for line in lines:
        record = json.loads(line)
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(record))
            writer.writeheader()
        writer.writerow(record)
    if writer is not None:
        yield buffer.getvalue()


def _outputs(sources: list[str], out: str, ext: str) -> list[str]:
    names = [os.path.basename(s).split(".", 1)[0] for s in sources]
    return [os.path.join(out, f"{n}.{ext}") for n in names]


def bag_convert_csv_jsonl(
    sources: list[str], out: str, client: Any, split: bool = False, storage_options: dict | None = None
) -> None:
    """CSV files to JSON Lines: one output per file, or (``split``) part files of byte ranges of one file."""
    so = storage_options or {}
    if split:
        header = csv_header(sources[0])
        bag = db.read_text(sources, blocksize=blocksize_for(sources)).map_partitions(_csv_records, header)
        bag.map(_dumps).to_textfiles(
            os.path.join(out, "*.jsonl"), name_function=part_name, last_endline=True, scheduler=client
        )
        return
    bag = db.read_text(sources, blocksize=None, storage_options=so).map_partitions(_csv_to_json_lines)
    bag.to_textfiles(_outputs(sources, out, "jsonl"), last_endline=True, storage_options=so, scheduler=client)


def bag_convert_jsonl_csv(sources: list[str], out: str, client: Any) -> None:
    """JSON Lines files to CSV, one output per file."""
    bag = db.read_text(sources, blocksize=None).map_partitions(_json_lines_to_csv)
    bag.to_textfiles(_outputs(sources, out, "csv"), scheduler=client)


def bag_count_csv(sources: Any, client: Any, storage_options: dict | None = None, split: bool = True) -> int:
    """Records in CSV files: byte ranges of about :func:`blocksize_for` (or whole files), rows parsed, counted."""
    if split:
        header = csv_header(sources[0])
        bag = db.read_text(sources, blocksize=blocksize_for(sources)).map_partitions(_csv_records, header)
    else:
        bag = db.read_text(sources, blocksize=None, storage_options=storage_options or {})
        bag = bag.map_partitions(_csv_records)
    return bag.count().compute(scheduler=client)


def bag_records(sources: list[str], client: Any) -> Iterator[dict[str, Any]]:
    """The records of JSON Lines files (gzip or not): each partition computed on the cluster, yielded in order."""
    for future in client.compute(db.read_text(sources, blocksize=None).map(json.loads).to_delayed()):
        yield from future.result()


# -- dask.dataframe: read_csv / read_json -> to_parquet / to_json / to_csv --------------------------------------


def _read_frame(sources: Any, split: bool, storage_options: dict | None = None) -> Any:
    so = storage_options or {}
    if isinstance(sources, str) and not sources.startswith("s3://"):
        sources = [sources]
    if isinstance(sources, list) and sources[0].split(".", 1)[-1].startswith("jsonl"):
        return dd.read_json(sources, lines=True, blocksize=None, dtype=False, convert_dates=False, storage_options=so)
    blocksize = blocksize_for(sources) if split else None
    return dd.read_csv(sources, dtype=str, keep_default_na=False, blocksize=blocksize, storage_options=so)


def frame_convert(
    sources: Any, out: str, to_ext: str, client: Any, split: bool = False, storage_options: dict | None = None
) -> None:
    """Files to ``to_ext`` (parquet, jsonl, csv) part files in ``out``, one partition per file unless ``split``."""
    df = _read_frame(sources, split, storage_options)
    kw: dict[str, Any] = {"storage_options": storage_options, "compute_kwargs": {"scheduler": client}}
    if to_ext == "parquet":
        df.to_parquet(out, write_index=False, name_function=lambda i: f"part-{i:05d}.parquet", **kw)
    elif to_ext == "jsonl":
        df.to_json(f"{out}/*.jsonl", orient="records", lines=True, force_ascii=False, name_function=part_name, **kw)
    else:
        df.to_csv(f"{out}/*.csv", index=False, name_function=part_name, **kw)


def frame_count_csv(sources: Any, client: Any, split: bool = True, storage_options: dict | None = None) -> int:
    """Rows of CSV files: ``len`` of ``read_csv``."""
    df = _read_frame(sources, split, storage_options)
    return int(df.shape[0].compute(scheduler=client))


def frame_groupby(sources: list[str], client: Any) -> dict[str, float]:
    """Sum of ``amount`` (as float) by ``city`` over gzip JSON Lines files."""
    df = dd.read_json(sources, lines=True, blocksize=None, dtype=False, convert_dates=False, compression="gzip")
    sums = df.assign(amount=df.amount.astype("float64")).groupby("city").amount.sum()
    return {str(k): float(v) for k, v in sums.compute(scheduler=client).items()}


# -- plain pyarrow ----------------------------------------------------------------------------------------------


def _pa_read(path: str, fs: Any = None) -> pa.Table:
    if path.split(".", 1)[-1].startswith("jsonl"):
        return pajson.read_json(path)
    types = {n: pa.string() for n in csv_header(path, fs)}
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
    if fs is not None:
        with fs.open(path, "rb") as f:
            return pacsv.read_csv(f, convert_options=options)
    return pacsv.read_csv(path, convert_options=options)


def pa_convert(sources: list[str], out: str, to_ext: str) -> None:
    """Each file read whole by pyarrow and written as Parquet or CSV (pyarrow writes no JSON)."""
    for source, target in zip(sources, _outputs(sources, out, to_ext), strict=True):
        table = _pa_read(source)
        if to_ext == "parquet":
            pq.write_table(table, target)
        else:
            pacsv.write_csv(table, target)


def pa_count_csv(sources: list[str], fs: Any = None) -> int:
    """Rows of CSV files, each read by pyarrow (through ``fs`` when given)."""
    return sum(_pa_read(s, fs).num_rows for s in sources)


def pa_records(sources: list[str]) -> Iterator[dict[str, Any]]:
    """Records of JSON Lines files (gzip or not), each file parsed by pyarrow, then made Python dicts."""
    for source in sources:
        yield from pajson.read_json(source).to_pylist()


def pa_groupby(sources: list[str]) -> dict[str, float]:
    """Sum of ``amount`` (as float) by ``city``."""
    table = pa.concat_tables(pajson.read_json(s) for s in sources)
    table = table.set_column(table.column_names.index("amount"), "amount", pc.cast(table["amount"], pa.float64()))
    grouped = table.group_by("city").aggregate([("amount", "sum")])
    return dict(zip(grouped["city"].to_pylist(), grouped["amount_sum"].to_pylist(), strict=True))


# -- DuckDB -----------------------------------------------------------------------------------------------------


def _duck() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    return con


def _duck_source(path: str) -> str:
    if path.split(".", 1)[-1].startswith("jsonl"):
        return f"read_json('{path}', format = 'newline_delimited')"
    return f"read_csv('{path}', header = true, all_varchar = true)"


def duck_copy(sources: list[str], out: str, to_ext: str) -> None:
    """``COPY (SELECT * FROM read_csv/read_json(file)) TO target``, one statement per file."""
    fmt = {"parquet": "FORMAT parquet", "jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER"}[to_ext]
    con = _duck()
    try:
        for source, target in zip(sources, _outputs(sources, out, to_ext), strict=True):
            con.execute(f"COPY (SELECT * FROM {_duck_source(source)}) TO '{target}' ({fmt})")
    finally:
        con.close()


def duck_count_csv(sources: list[str]) -> int:
    """``SELECT count(*)`` over CSV files."""
    con = _duck()
    try:
        files = ", ".join(f"'{s}'" for s in sources)
        return con.execute(f"SELECT count(*) FROM read_csv([{files}], header = true, all_varchar = true)").fetchone()[0]
    finally:
        con.close()


def duck_groupby(sources: list[str]) -> dict[str, float]:
    """``SELECT city, sum(amount::DOUBLE) ... GROUP BY city`` over gzip JSON Lines files."""
    con = _duck()
    try:
        files = ", ".join(f"'{s}'" for s in sources)
        query = (
            f"SELECT city, sum(CAST(amount AS DOUBLE)) FROM read_json([{files}], format = 'newline_delimited') "
            "GROUP BY city"
        )
        return {city: float(total) for city, total in con.execute(query).fetchall()}
    finally:
        con.close()
