"""columnar: the pyarrow engine that reads and writes whole columns on the workers.

Columnar fast paths: pyarrow reads and writes whole columns on the workers.

The conversion tasks try these before iterabledata's dict-per-row path for
CSV, TSV or JSON Lines to Parquet and for Parquet to CSV or JSON Lines. A fast
path runs only where its output is provably the one iterabledata's own
``convert`` gives, and raises :class:`ColumnarUnavailable` otherwise, so the
caller falls back to the row path:

* **CSV/TSV to Parquet.** Every column is a string, as iterabledata reads CSV
  fields; columns in header order; row groups as iterabledata's writer cuts
  them. pyarrow refuses ragged rows; a BOM, a non-UTF-8 encoding, duplicate or
  empty header names and fields beyond Python's csv field limit fall back.
* **JSON Lines to Parquet.** pyarrow.json's column types are kept only where
  ``pyarrow.Table.from_pylist`` on iterabledata's first written batch infers
  the same: flat string, int64, bool and double columns, each with a value in
  that batch, the first record holding every key, one object per line.
* **Parquet to JSON Lines or CSV.** The text is built column-wise with
  pyarrow.compute, byte for byte what ``json.dumps(ensure_ascii=False)`` and
  ``csv.DictWriter`` write, for string, integer and boolean columns.

Holds the kinds of files it takes and its refusal (:mod:`.kinds`), CSV/TSV
and JSON Lines to Parquet (:mod:`.to_parquet`), Parquet to CSV or JSON Lines
(:mod:`.to_text`) and the one entry point (:mod:`.convert`).

May import: core. Used by io and conversion.
"""

from __future__ import annotations

from .convert import convert_columnar
from .kinds import ColumnarUnavailable, parquet_flush_rows, path_kind

__all__ = ["ColumnarUnavailable", "convert_columnar", "parquet_flush_rows", "path_kind"]
