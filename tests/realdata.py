"""A corpus of real data sets shipped in registry packages, for the conformance suite.

Three kinds of files, each an :class:`Entry` of one flat folder:

- **original**: files exactly as ``bokeh_sampledata``, ``vega_datasets``,
  ``palmerpenguins`` and scikit-learn ship them (odd quoting, ragged headers,
  JSON documents iterabledata cannot read as records, SQLite, iCalendar ...);
- **derived**: real tables written again, deterministically, in every format
  iterabledata reads (CSV, TSV, JSON Lines, gzip CSV and JSON Lines, JSON
  arrays, Parquet, XML where the column names are XML names, an Excel-style
  CSV with a BOM and CRLF, a Latin-1 CSV, a CSV with quoted newlines);
- **stress**: real data reshaped to stress the byte windows of the parallel
  readers: headers longer than 64 KiB and than 1 MiB, records longer than
  64 KiB and than 1 MiB, and a field over the ``csv`` module's limit.

Nothing is downloaded: the packages' files are found where they are installed.
:data:`SAMPLE` names the files ``make test`` checks; ``make conformance`` checks all.
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SAMPLE", "Entry", "build_corpus", "corpus_names"]

#: Files of the packages that are not data iterabledata reads (pictures, code, a cascade that is no table).
_NOT_DATA = re.compile(r"\.(png|py|pyc|typed)$|^(datasets|dataset_info|local_datasets)\.json$")

#: Where each package keeps its data, and the prefix its files get in the corpus.
PACKAGES = {
    "bokeh": ("bokeh_sampledata", "_data"),
    "vega": ("vega_datasets", "_data"),
    "penguins": ("palmerpenguins", "data"),
    "sklearn": ("sklearn.datasets", "data"),
}

#: The table of 55,861 columns (a header over 1 MiB): seconds per Parquet or CSV conversion.
WIDEST = frozenset({"stress-wide-1m.csv"})

#: SQLite files above this size are left out (13 MB of map shapes).
_MAX_ORIGINAL_BYTES = 10 << 20
#: Left out as shipped: UN population (346,332 records, the source of the wide tables), whose one read_bag
#: compute alone took 40 s (distributed serializes a computed list of dicts one object at a time).
_LEFT_OUT = frozenset({"population.csv.gz"})
#: Records of each derived table: its first rows (world cities, gapminder and stocks have more).
DERIVED_ROWS = 5_000


@dataclass(frozen=True)
class Entry:
    """One corpus file: its name in the corpus folder, where it came from, and how iterabledata opens it."""

    name: str
    kind: str  # "original" | "derived" | "stress"
    origin: str
    iterableargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def group(self) -> str:
        """The folder of the file: files opened with the same arguments share one (and so one bulk conversion);
        the 55,861-column table has its own, as the sample converts it to JSON Lines only."""
        if self.iterableargs.get("tagname"):
            return "xml"
        return "wide" if self.name in WIDEST else "plain"


def _package_dir(prefix: str) -> str:
    package, sub = PACKAGES[prefix]
    return str(importlib.resources.files(package) / sub)


def _originals() -> dict[str, tuple[Entry, Callable[[str], None]]]:
    """The packages' data files as shipped, named ``<package>-<file>`` (the extension in the stem where two
    files of a package share a stem, so that no two convert to one target)."""
    out: dict[str, tuple[Entry, Callable[[str], None]]] = {}
    for prefix in PACKAGES:
        folder = _package_dir(prefix)
        names = [
            n
            for n in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, n))
            and not _NOT_DATA.search(n)
            and os.path.getsize(os.path.join(folder, n)) <= _MAX_ORIGINAL_BYTES
            and n not in _LEFT_OUT
        ]
        stems = [n.split(".", 1)[0] for n in names]
        for name, stem in zip(names, stems, strict=True):
            rest = name[len(stem) :]
            unique = stem if stems.count(stem) == 1 else f"{stem}-{rest.strip('.').replace('.', '')}"
            entry = Entry(f"{prefix}-{unique}{rest}", "original", f"{PACKAGES[prefix][0]}/{PACKAGES[prefix][1]}/{name}")
            out[entry.name] = (entry, _copy(os.path.join(folder, name)))
    return out


def _copy(source: str) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(source, "rb") as f, open(path, "wb") as out:
            out.write(f.read())

    return write


# -- derived: real tables in every format ---------------------------------------------------------


def _frame(prefix: str, name: str, **read_options: Any) -> Callable[[], Any]:
    def load() -> Any:
        import pandas as pd

        path = os.path.join(_package_dir(prefix), name)
        if name.endswith((".json", ".json.gz")):
            return pd.read_json(path, **read_options)
        return pd.read_csv(path, **read_options)

    return load


def _sklearn(loader: str) -> Callable[[], Any]:
    def load() -> Any:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader)(as_frame=True).frame

    return load


#: Real tables written again in every format: name -> loader of a pandas DataFrame.
TABLES: dict[str, Callable[[], Any]] = {
    "penguins-raw": _frame("penguins", "penguins-raw.csv"),
    "titanic": _frame("bokeh", "titanic_all.csv"),
    "airports": _frame("vega", "airports.csv"),
    "cars": _frame("vega", "cars.json"),
    "seattle-weather": _frame("vega", "seattle-weather.csv"),
    "gapminder": _frame("bokeh", "gapminder.csv.gz"),
    "elements": _frame("bokeh", "elements.csv"),
    "breast-cancer": _sklearn("load_breast_cancer"),
    "wine": _sklearn("load_wine"),
    "stocks": _frame("bokeh", "stocks.csv.gz"),
    "world-cities": _frame("bokeh", "world_cities.csv.gz"),
}


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return buffer.getvalue()


def _xml_names(df: Any) -> bool:
    return all(isinstance(c, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", c) for c in df.columns)


def _derived_writers(df: Any) -> dict[str, Callable[[str], None]]:
    """Writers of one table in each format, keyed by the corpus name's suffix."""

    def text(make: Callable[[], str], encoding: str = "utf-8", compress: bool = False) -> Callable[[str], None]:
        def write(path: str) -> None:
            data = make().encode(encoding)
            with open(path, "wb") as f:
                f.write(_gzip(data) if compress else data)

        return write

    def csv_text(**options: Any) -> str:
        return df.to_csv(index=False, lineterminator=options.pop("lineterminator", "\n"), **options)

    def jsonl() -> str:
        return df.to_json(orient="records", lines=True, force_ascii=False)

    def parquet(path: str) -> None:
        df.to_parquet(path, index=False, engine="pyarrow", compression="snappy")

    writers = {
        "csv.csv": text(csv_text),
        "tsv.tsv": text(lambda: csv_text(sep="\t")),
        "jsonl.jsonl": text(jsonl),
        "csvgz.csv.gz": text(csv_text, compress=True),
        "jsonlgz.jsonl.gz": text(jsonl, compress=True),
        "json.json": text(lambda: df.to_json(orient="records", force_ascii=False)),
        "parquet.parquet": parquet,
        # What a spreadsheet exports: a BOM, CRLF line ends, every field quoted.
        "excel.csv": text(lambda: csv_text(lineterminator="\r\n", quoting=csv.QUOTE_ALL), encoding="utf-8-sig"),
    }
    if _xml_names(df):
        writers["xml.xml"] = lambda path: df.to_xml(path, index=False, root_name="data", row_name="row")
    return writers


def _latin1(path: str) -> None:
    """World cities with accented names in Latin-1 (names Latin-1 cannot hold are left out)."""
    df = TABLES["world-cities"]()
    keep = df["name"].map(lambda s: isinstance(s, str) and s.encode("latin-1", "ignore").decode("latin-1") == s)
    with open(path, "wb") as f:
        f.write(df[keep].head(3000).to_csv(index=False, lineterminator="\n").encode("latin-1"))


def _multiline(path: str) -> None:
    """Titanic passengers grouped by class and survival: each group's names in one quoted multi-line field.

    The groups come after 4,000 single-line records of the same people (one per line, about 140 KB),
    so the quoted newlines lie well beyond the head the parallel readers sniff.
    """
    df = TABLES["titanic"]()
    rows = [(str(i % len(df)), df["name"].iloc[i % len(df)], "") for i in range(4_000)]
    for (pclass, survived), group in df.groupby(["class", "survived"], sort=True):
        rows.append((f"{pclass}/{survived}", f"{len(group)} passengers", "\n".join(group["name"].astype(str))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "name", "names"])
    writer.writerows(rows)
    with open(path, "wb") as f:
        f.write(buffer.getvalue().encode("utf-8"))


# -- stress: the byte windows ----------------------------------------------------------------------


def _population() -> Any:
    import pandas as pd

    return pd.read_csv(os.path.join(_package_dir("bokeh"), "population.csv.gz"))


def _wide_64k(path: str) -> None:
    """UN population pivoted: a row per sex and age group, a column per country and year to 2020.

    Its header line is just over 64 KiB (as the 67,207-byte header of the issue), quoted names included.
    """
    pop = _population()
    pop = pop[pop["Year"] <= 2020]
    pop = pop.assign(column=pop["Location"] + " " + pop["Year"].astype(str))
    wide = pop.pivot_table(index=["Sex", "AgeGrp"], columns="column", values="Value", aggfunc="first", sort=True)
    _write_checked(path, wide.reset_index().to_csv(index=False, lineterminator="\n"), 64 << 10, 1 << 20)


def _wide_1m_text() -> str:
    """UN population to 1970 transposed: a row per field, a column per country, year, sex and age group."""
    pop = _population()
    pop = pop[pop["Year"] <= 1970].sort_values(["Location", "Year", "Sex", "AgeGrpStart"], kind="stable")
    columns = pop["Location"] + "/" + pop["Year"].astype(str) + "/" + pop["Sex"] + "/" + pop["AgeGrp"]
    table = pop[["LocID", "AgeGrpStart", "Value"]].T
    table.columns = list(columns)
    table.insert(0, "field", table.index)
    return table.to_csv(index=False, lineterminator="\n")


def _wide_1m(path: str) -> None:
    """The transposed table as CSV: its header line is longer than 1 MiB."""
    _write_checked(path, _wide_1m_text(), 1 << 20, 1 << 23)


def _cities() -> list[tuple[str, float, float]]:
    df = TABLES["world-cities"]()
    return [(str(n), float(a), float(b)) for n, a, b in zip(df["name"], df["lat"], df["lng"], strict=True)]


def _chunks_of_names(cities: list[tuple[str, float, float]], target: int) -> Iterable[list[tuple[str, float, float]]]:
    chunk: list[tuple[str, float, float]] = []
    size = 0
    for city in cities:
        chunk.append(city)
        size += len(city[0].encode("utf-8")) + 2
        if size >= target:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _long_64k_records() -> list[dict[str, Any]]:
    """World cities in runs of about 90 KB of names: one record per run, its names joined in one field."""
    out = []
    for i, chunk in enumerate(_chunks_of_names(_cities(), 90_000)):
        out.append(
            {
                "run": i,
                "first": chunk[0][0],
                "last": chunk[-1][0],
                "cities": len(chunk),
                "mean_lat": round(sum(c[1] for c in chunk) / len(chunk), 5),
                "names": "; ".join(c[0] for c in chunk),
            }
        )
    return out


def _long_1m_texts() -> list[tuple[str, str]]:
    """Every world city with its coordinates, joined in one text, in three orders: over 1 MiB each."""
    cities = _cities()
    orders = {
        "by name": sorted(cities, key=lambda c: (c[0], c[1], c[2])),
        "by latitude": sorted(cities, key=lambda c: (c[1], c[2], c[0])),
        "by longitude": sorted(cities, key=lambda c: (c[2], c[1], c[0])),
    }
    return [(order, "; ".join(f"{n} ({a}, {b})" for n, a, b in rows)) for order, rows in orders.items()]


def _write_records_csv(path: str, header: list[str], rows: list[list[Any]], low: int, high: int) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_checked(path, buffer.getvalue(), low, high, line=1)


def _long_64k_csv(path: str) -> None:
    records = _long_64k_records()
    header = list(records[0])
    _write_records_csv(path, header, [[r[k] for k in header] for r in records], 64 << 10, csv.field_size_limit())


def _long_64k_jsonl(path: str) -> None:
    import json

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _long_64k_records())
    _write_checked(path, text, 64 << 10, 1 << 20, line=1)


def _long_1m_jsonl(path: str) -> None:
    import json

    text = "".join(
        json.dumps({"order": order, "chars": len(t), "cities": t}, ensure_ascii=False) + "\n"
        for order, t in _long_1m_texts()
    )
    _write_checked(path, text, 1 << 20, 1 << 24, line=1)


def _long_1m_csv(path: str) -> None:
    """The 1 MiB texts in fields under the ``csv`` module's limit (100,000 characters a part)."""
    texts = _long_1m_texts()
    parts = [[t[i : i + 100_000] for i in range(0, len(t), 100_000)] for _, t in texts]
    width = max(len(p) for p in parts)
    header = ["order", "chars", *(f"part_{i:02d}" for i in range(width))]
    rows = [[order, len(t), *p, *[""] * (width - len(p))] for (order, t), p in zip(texts, parts, strict=True)]
    _write_records_csv(path, header, rows, 1 << 20, 1 << 24)


def _long_1m_one_field_csv(path: str) -> None:
    """The 1 MiB texts each in one CSV field: over the ``csv`` module's limit, so iterabledata fails on it."""
    rows = [[order, len(t), t] for order, t in _long_1m_texts()]
    _write_records_csv(path, ["order", "chars", "cities"], rows, 1 << 20, 1 << 24)


def _write_checked(path: str, text: str, low: int, high: int, line: int = 0) -> None:
    """Write ``text`` (UTF-8) after checking that its line ``line`` (0: the header) is ``low``-``high`` bytes."""
    data = text.encode("utf-8")
    lines = data.split(b"\n")
    longest = len(lines[0]) if line == 0 else max(len(x) for x in lines[line:])
    assert low < longest < high, f"{os.path.basename(path)}: line of {longest} bytes, wanted {low}-{high}"
    with open(path, "wb") as f:
        f.write(data)


STRESS: dict[str, tuple[str, Callable[[str], None]]] = {
    "stress-wide-64k.csv": ("bokeh_sampledata population.csv.gz, pivoted", _wide_64k),
    "stress-wide-1m.csv": ("bokeh_sampledata population.csv.gz, transposed", _wide_1m),
    "stress-long-64k-csv.csv": ("bokeh_sampledata world_cities.csv.gz, names joined", _long_64k_csv),
    "stress-long-64k-jsonl.jsonl": ("bokeh_sampledata world_cities.csv.gz, names joined", _long_64k_jsonl),
    "stress-long-1m-jsonl.jsonl": ("bokeh_sampledata world_cities.csv.gz, joined", _long_1m_jsonl),
    "stress-long-1m-csv.csv": ("bokeh_sampledata world_cities.csv.gz, joined, 100,000-character parts", _long_1m_csv),
    "stress-long-1m-one-field.csv": ("bokeh_sampledata world_cities.csv.gz, joined", _long_1m_one_field_csv),
    "derived-titanic-multiline.csv": ("bokeh_sampledata titanic_all.csv, names grouped", _multiline),
    "derived-world-cities-latin1.csv": ("bokeh_sampledata world_cities.csv.gz, Latin-1", _latin1),
}

#: The files ``make test`` checks: the window stressers and a spread of real oddities.
SAMPLE = (
    "stress-wide-64k.csv",  # a header line of 67,376 bytes, as the 67,207 of the issue
    "stress-wide-1m.csv",  # a header line over 1 MiB
    "stress-long-64k-csv.csv",  # CSV records over 64 KiB
    "stress-long-1m-csv.csv",  # CSV records over 1 MiB
    "stress-long-1m-jsonl.jsonl",  # JSON Lines records over 1 MiB
    "stress-long-1m-one-field.csv",  # a field over the csv module's limit: iterabledata fails
    "derived-titanic-multiline.csv",  # quoted newlines after the head
    "penguins-penguins-raw.csv",  # quoted fields, NA, long column names with spaces
    "sklearn-breast_cancer.csv",  # a header shorter than its rows (extras under None)
    "bokeh-airports-json.json",  # a JSON document that is no list of records: iterabledata fails
    "bokeh-commits.txt.gz",  # lines of text, not records
    "derived-cars-xml.xml",
    "derived-titanic-excel.csv",  # BOM, CRLF, every field quoted
    "derived-seattle-weather-parquet.parquet",
)


#: The suffixes of each derived table's files; XML only for the tables whose column names are XML names.
SUFFIXES = ("csv.csv", "tsv.tsv", "jsonl.jsonl", "csvgz.csv.gz", "jsonlgz.jsonl.gz", "json.json", "parquet.parquet",
            "excel.csv")  # fmt: skip
XML_TABLES = frozenset({"titanic", "airports", "cars", "seattle-weather", "gapminder", "world-cities"})


def _catalogue() -> dict[str, tuple[Entry, Callable[[str], None]]]:
    out = _originals()
    for table, load in TABLES.items():
        for suffix in (*SUFFIXES, *(("xml.xml",) if table in XML_TABLES else ())):
            name = f"derived-{table}-{suffix}"
            args = {"tagname": "row"} if suffix == "xml.xml" else {}
            out[name] = (Entry(name, "derived", f"table {table}", args), _derived(load, suffix))
    for name, (origin, write) in STRESS.items():
        kind = "derived" if name.startswith("derived-") else "stress"
        out[name] = (Entry(name, kind, origin), write)
    return out


_FRAMES: dict[Callable[[], Any], Any] = {}


def _derived(load: Callable[[], Any], suffix: str) -> Callable[[str], None]:
    def write(path: str) -> None:
        if load not in _FRAMES:
            _FRAMES[load] = load().head(DERIVED_ROWS)
        _derived_writers(_FRAMES[load])[suffix](path)

    return write


def corpus_names(full: bool) -> list[str]:
    """The names of the corpus files, sorted: all of them, or the sample's."""
    return sorted(_catalogue()) if full else sorted(SAMPLE)


def build_corpus(root: str, names: Iterable[str]) -> dict[str, tuple[Entry, str]]:
    """Write the named files under ``root`` (one folder per group); ``{name: (entry, path)}`` of those written.

    Deterministic: the same bytes on every run (gzip without a time stamp, sorted pivots).
    """
    catalogue = _catalogue()
    out: dict[str, tuple[Entry, str]] = {}
    try:
        for name in names:
            entry, write = catalogue[name]
            folder = os.path.join(root, entry.group)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, name)
            write(path)
            out[name] = (entry, path)
    finally:
        _FRAMES.clear()
    return out
