"""Conformance on real data: every entry point against iterabledata, file by file, on a corpus of real data sets.

The corpus (``tests/realdata.py``) holds files as ``bokeh_sampledata``, ``vega_datasets``,
``palmerpenguins`` and scikit-learn ship them, real tables written again in every format
iterabledata reads, and real data reshaped to stress the parallel readers' byte windows
(headers and records longer than 64 KiB and 1 MiB). Each entry point must give what
iterabledata gives on each file: the same bytes where iterabledata writes text (JSON Lines,
CSV), the same records otherwise (Parquet read back), the same failure (same error type,
naming the file) where iterabledata fails. A difference the README documents is accepted
and named (:func:`documented`); anything else fails with the first differing record or byte.

``make test`` checks :data:`realdata.SAMPLE`; ``make conformance``
(``ITERABLE_DASK_CONFORMANCE=full``) checks the whole corpus.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import math
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from iterable import open_iterable
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.convert.core import convert as upstream_convert
from iterable.pipeline import pipeline as upstream_pipeline

import iterable_dask
from iterable_dask import UnsplittableFileError
from iterable_dask.cli import main as cli_main

from .cli_helpers import run_cli
from .helpers import sequential
from .realdata import SAMPLE, WIDEST, build_corpus, corpus_names
from .test_convert import assert_same_output

FULL = os.environ.get("ITERABLE_DASK_CONFORMANCE", "").strip().lower() == "full"
NAMES = corpus_names(FULL)
TARGETS = ("jsonl", "csv", "parquet")
HEAD_N = 5
PIPELINE_CHUNK = 200
#: Files the parallel readers split into byte ranges (and convert into parts) when they are big enough.
RANGED = (".csv", ".tsv", ".jsonl")
WIDE = "stress-wide-64k.csv"
CONTROL = "penguins-penguins-raw.csv"
#: read_dataframe is checked on tables up to this wide: dask.dataframe spends about a second a partition per
#: thousand columns (the 64 KiB header's 3,992 columns took 24 s, the 1 MiB header's 55,861 minutes).
MAX_FRAME_COLUMNS = 1000

#: Differences found in iterable_dask that are not the header and record windows, each with its reproduction:
#: ``{(check, name): reason}``, marked xfail(strict=True) until fixed.
KNOWN: dict[tuple[str, str], str] = {
    ("read_dataframe", "bokeh-movies.db"): (
        "read_dataframe(path): the all-None column 'imdbRating' comes back as string dtype with <NA> (dask's "
        "dataframe.convert-string); pandas over iterabledata's records: object None"
    ),
}


# -- outcomes and differences ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What a call gave: a value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


def attempt(call: Callable[[], Any]) -> Outcome:
    """Run ``call``; its value or its error (warnings ignored: iterabledata warns on some real files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Outcome(call())
        except Exception as e:
            return Outcome(error=e)


def error_names(error: BaseException) -> set[str]:
    """Names under which ``error`` carries a failure: its classes, its causes, an ``error_type``, a 'Type:' prefix."""
    names: set[str] = set()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names.update(c.__name__ for c in type(current).__mro__)
        if getattr(current, "error_type", None):
            names.add(current.error_type)
        text = str(current)
        names.update(
            word[:-1] for word in text.replace("'", " ").split() if word.endswith(":") and word[:-1].isidentifier()
        )
        current = current.__cause__ or current.__context__
    return names


def same_failure(ours: BaseException, theirs: BaseException, path: str) -> str | None:
    """None when ``ours`` is iterabledata's failure ``theirs`` (its type, and naming the file if wrapped)."""
    expected = type(theirs).__name__
    if expected not in error_names(ours):
        return f"ours raised {_short(ours)}; iterabledata raised {_short(theirs)}"
    if type(ours).__name__ != expected and os.path.basename(path) not in str(ours):
        return f"ours raised {_short(ours)} without naming {os.path.basename(path)!r}"
    return None


def _short(value: Any, limit: int = 300) -> str:
    text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


_NAN = "<NaN>"


def _canonical(value: Any) -> Any:
    """``value`` with float NaNs made equal to each other (a NaN is never == another)."""
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_canonical(v) for v in value)
    return value


def diff_records(ours: list[Any], theirs: list[Any]) -> str | None:
    """None when the records are equal, in order; else the first difference."""
    if ours == theirs:
        return None
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a == b or _canonical(a) == _canonical(b):
            continue
        where = f"record {i}"
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                keys = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                return (
                    f"{where}: keys differ at key {keys} (ours {len(a)} keys, theirs {len(b)}): "
                    f"ours {_short(list(a)[keys : keys + 3])}, theirs {_short(list(b)[keys : keys + 3])}"
                )
            key = next(k for k in a if _canonical(a[k]) != _canonical(b[k]))
            return f"{where}, key {_short(key, 80)}: ours {_short(a[key])}, theirs {_short(b[key])}"
        return f"{where}: ours {_short(a)}, theirs {_short(b)}"
    if len(ours) != len(theirs):
        return f"ours has {len(ours)} records, iterabledata {len(theirs)}"
    return None


def diff_bytes(ours: bytes, theirs: bytes) -> str | None:
    """None when equal; else the first differing byte, its line, and both sides around it."""
    if ours == theirs:
        return None
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))
    line = theirs.count(b"\n", 0, at) + 1
    return (
        f"first differing byte {at} (line {line}; ours {len(ours)} bytes, theirs {len(theirs)}): "
        f"ours {ours[max(0, at - 40) : at + 80]!r}, theirs {theirs[max(0, at - 40) : at + 80]!r}"
    )


def diff_outputs(ours: str, theirs: str) -> str | None:
    """Text outputs byte for byte; Parquet by schema and records read back (``assert_same_output``)."""
    if not ours.endswith(".parquet") or not os.path.getsize(theirs):
        with open(ours, "rb") as a, open(theirs, "rb") as b:
            return diff_bytes(a.read(), b.read())
    try:
        assert_same_output(ours, theirs)
    except AssertionError:
        import pyarrow.parquet as pq

        schemas = pq.read_schema(ours), pq.read_schema(theirs)
        if not schemas[0].equals(schemas[1], check_metadata=False):
            return f"Parquet schemas differ: ours {_short(schemas[0])}, theirs {_short(schemas[1])}"
        return diff_records(sequential(ours), sequential(theirs)) or "Parquet outputs differ"
    return None


def diff_outcomes(ours: Outcome, theirs: Outcome, compare: Callable[[Any, Any], str | None], path: str) -> str | None:
    """None when both failed alike or both gave equal values (``compare``); else the difference."""
    if theirs.error is not None and ours.error is not None:
        return same_failure(ours.error, theirs.error, path)
    if theirs.error is not None:
        return f"iterabledata raised {_short(theirs.error)}; ours gave {_short(ours.value, 120)}"
    if ours.error is not None:
        return f"ours raised {_short(ours.error, 600)}; iterabledata succeeded"
    return compare(ours.value, theirs.value)


def documented(check: str, ours: Outcome, theirs: Outcome) -> str | None:
    """The README's words when a difference is one it documents, else None."""
    ranged = check.endswith("read_bag-small") or check == "read_dataframe"  # read_dataframe: read_bag's plan
    if ranged and isinstance(ours.error, UnsplittableFileError) and theirs.error is None:
        return (
            "README Guarantees: a CSV record with a quoted newline across a range boundary raises UnsplittableFileError"
        )
    if check == "read_dataframe" and ours.error is not None and "that the DataFrame's meta does not" in str(ours.error):
        return "README read_dataframe: a partition with a column meta (a sample of the first records) lacks is an error"
    return None


def verdict(
    check: str, ours: Outcome, theirs: Outcome, compare: Callable[[Any, Any], str | None], path: str
) -> str | None:
    """The difference between ours and iterabledata's, prefixed with what was checked; None if none (or documented)."""
    diff = diff_outcomes(ours, theirs, compare, path)
    if diff is None or documented(check, ours, theirs):
        return None
    return f"{check} of {os.path.basename(path)}: {diff}"


def diff_counts(ours: Any, theirs: Any) -> str | None:
    """Rows in, rows out and the number of recorded errors of two conversion results."""
    a = (ours.rows_in, ours.rows_out, len(ours.errors))
    b = (theirs.rows_in, theirs.rows_out, len(theirs.errors))
    return None if a == b else f"(rows_in, rows_out, errors) ours {a}, iterabledata {b}"


# -- the corpus and iterabledata's references -----------------------------------------------------


class Context:
    """The corpus, the session's client, and iterabledata's results on each file (computed once)."""

    def __init__(self, corpus: dict[str, Any], client: Any, work: str) -> None:
        self.corpus, self.client, self.work = corpus, client, work
        self._folders = 0

    def path(self, name: str) -> str:
        return self.corpus[name][1]

    def args(self, name: str) -> dict[str, Any]:
        return dict(self.corpus[name][0].iterableargs)

    def group(self, name: str) -> str:
        return self.corpus[name][0].group

    def small(self, name: str) -> int:
        """A blocksize that splits the file into about 32 parts (never under 4 KiB)."""
        return max(4096, os.path.getsize(self.path(name)) // 32)

    def scratch(self) -> str:
        self._folders += 1
        folder = os.path.join(self.work, f"run-{self._folders:05d}")
        os.makedirs(folder)
        return folder

    @functools.cache  # noqa: B019 - one Context per session
    def records(self, name: str) -> Outcome:
        return attempt(lambda: sequential(self.path(name), **self.args(name)))

    @functools.cache  # noqa: B019
    def reference(self, name: str, ext: str) -> tuple[Outcome, str]:
        target = os.path.join(self.scratch(), f"{_stem(name)}.{ext}")
        return attempt(lambda: upstream_convert(self.path(name), target, iterableargs=self.args(name) or None)), target

    @functools.cache  # noqa: B019
    def bulk(self, group: str, ext: str) -> tuple[Outcome, Outcome]:
        folder = os.path.dirname(self.path(next(n for n in self.corpus if self.group(n) == group)))
        args = next(self.args(n) for n in self.corpus if self.group(n) == group) or None
        ours_dest, theirs_dest = os.path.join(self.scratch(), "ours"), os.path.join(self.scratch(), "theirs")
        ours = attempt(
            lambda: iterable_dask.bulk_convert(
                folder, ours_dest, to_ext=ext, iterableargs=args, parallel=True, client=self.client
            )
        )
        theirs = attempt(lambda: upstream_bulk_convert(folder, theirs_dest, to_ext=ext, iterableargs=args))
        return ours, theirs

    @functools.cache  # noqa: B019
    def parallel_read(self, group: str) -> tuple[list[str], dict[str, list[Any]], list[str], BaseException | None]:
        """One ``parallel_read(ordered=True)`` over the group's readable files: paths, records by path, order, error."""
        names = [n for n in sorted(self.corpus) if self.group(n) == group and self.records(n).error is None]
        paths = [self.path(n) for n in names]
        got: dict[str, list[Any]] = {p: [] for p in paths}
        order: list[str] = []
        args = self.args(names[0]) if names else {}

        def read() -> None:
            with iterable_dask.parallel_read(paths, ordered=True, with_source=True, client=self.client, **args) as r:
                for source, record in r:
                    got[source].append(record)
                    if not order or order[-1] != source:
                        order.append(source)

        return paths, got, order, attempt(read).error


def _stem(name: str) -> str:
    return name.split(".", 1)[0]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_corpus(str(tmp_path_factory.mktemp("realdata")), NAMES)


@pytest.fixture(scope="session")
def ctx(corpus, client, tmp_path_factory) -> Context:
    return Context(corpus, client, str(tmp_path_factory.mktemp("conformance")))


def _cases(check: str, names: list[str], *more: str) -> list[Any]:
    """Parameters ``(name, *more)`` for ``check``, marked xfail(strict=True) where :data:`KNOWN` lists them."""
    out = []
    for name in names:
        key = ("-".join((check, *more)), name)
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[key])] if key in KNOWN else []
        out.append(pytest.param(name, *more, marks=marks, id="-".join((*more, name))))
    return out


def _ranged(name: str) -> bool:
    return name.endswith(RANGED)


# -- the checks (each returns the difference, or None) --------------------------------------------


def check_convert(ctx: Context, name: str, ext: str, mode: str) -> str | None:
    """``convert`` sequential, parallel (default blocksize) or split (small blocksize) against iterabledata's."""
    path, args = ctx.path(name), ctx.args(name) or None
    theirs, theirs_path = ctx.reference(name, ext)
    target = os.path.join(ctx.scratch(), f"{_stem(name)}.{ext}")
    options: dict[str, Any] = {"parallel": False}
    if mode != "sequential":
        options = {"parallel": True, "client": ctx.client}
        if mode == "split":
            options["blocksize"] = ctx.small(name)
    ours = attempt(lambda: iterable_dask.convert(path, target, iterableargs=args, **options))
    try:
        return verdict(
            f"convert-{mode}-{ext}",
            ours,
            theirs,
            lambda a, b: diff_counts(a, b) or diff_outputs(target, theirs_path),
            path,
        )
    finally:
        shutil.rmtree(os.path.dirname(target), ignore_errors=True)


def check_bulk(ctx: Context, name: str, ext: str) -> str | None:
    """This file's part of one ``bulk_convert(parallel=True)`` of its folder, against iterabledata's."""
    path = ctx.path(name)
    ours_run, theirs_run = ctx.bulk(ctx.group(name), ext)
    if ours_run.error is not None or theirs_run.error is not None:
        return verdict(f"bulk_convert-{ext}", ours_run, theirs_run, lambda a, b: None, path)
    ours = next(r for r in ours_run.value.file_results if r.source_file == path)
    theirs = next(r for r in theirs_run.value.file_results if r.source_file == path)
    if os.path.basename(ours.dest_file) != os.path.basename(theirs.dest_file):
        return f"bulk_convert-{ext} of {name}: targets {ours.dest_file!r} and {theirs.dest_file!r}"
    mine = Outcome(ours.result, None if ours.success else (ours.error or RuntimeError("failed")))
    upstream = Outcome(theirs.result, None if theirs.success else _as_error(theirs.error))
    return verdict(
        f"bulk_convert-{ext}",
        mine,
        upstream,
        lambda a, b: diff_counts(a, b) or diff_outputs(ours.dest_file, theirs.dest_file),
        path,
    )


def _as_error(error: Any) -> BaseException:
    return error if isinstance(error, BaseException) else RuntimeError(str(error))


def check_read_bag(ctx: Context, name: str, blocksize: str) -> str | None:
    """``read_bag(...).compute()`` at the default or a small blocksize against ``list(open_iterable(path))``."""
    path, args = ctx.path(name), ctx.args(name)
    size = "default" if blocksize == "default" else ctx.small(name)
    ours = attempt(
        lambda: iterable_dask.compute(iterable_dask.read_bag(path, blocksize=size, **args), client=ctx.client)[0]
    )
    return verdict(f"read_bag-{blocksize}", ours, ctx.records(name), diff_records, path)


def check_read_dataframe(ctx: Context, name: str) -> str | None:
    """``read_dataframe`` at a small blocksize against pandas over iterabledata's records."""
    import pandas as pd

    from .test_frame import _same

    path, args = ctx.path(name), ctx.args(name)
    records = ctx.records(name)
    if records.error is None and not all(isinstance(r, dict) for r in records.value):
        pytest.skip("records that are not dicts make no DataFrame")
    width = max((len(r) for r in records.value), default=0) if records.error is None else 0
    if width > MAX_FRAME_COLUMNS:
        pytest.skip(f"{width} columns: dask.dataframe spends seconds per partition on each thousand columns")
    # About 32 partitions in the full run, 8 in the sample; a wide table (a second a partition per thousand
    # columns) about 4.
    parts = 4 if width > 100 else 32 if FULL else 8
    blocksize = max(ctx.small(name), os.path.getsize(path) // parts)
    theirs = records if records.error is not None else Outcome(pd.DataFrame.from_records(records.value))
    ours = attempt(lambda: ctx.client.compute(iterable_dask.read_dataframe(path, blocksize=blocksize, **args)).result())

    def compare(a: Any, b: Any) -> str | None:
        try:
            _same(a, b)
        except AssertionError as e:
            return f"frames differ: {_short(e, 600)}"
        return None

    return verdict("read_dataframe", ours, theirs, compare, path)


def check_parallel_read(ctx: Context, name: str) -> str | None:
    """This file's records from one ``parallel_read(ordered=True)`` of its group, or of itself when it fails."""
    path, args = ctx.path(name), ctx.args(name)
    theirs = ctx.records(name)
    _, got, _, error = ctx.parallel_read(ctx.group(name))
    if theirs.error is None and error is None:
        return verdict("parallel_read", Outcome(got[path]), theirs, diff_records, path)

    def alone() -> list[Any]:
        with iterable_dask.parallel_read([path], ordered=True, client=ctx.client, **args) as reader:
            return list(reader)

    return verdict("parallel_read", attempt(alone), theirs, diff_records, path)


def annotate(record: Any, state: dict[str, Any]) -> Any:
    """A pipeline step for real records: counts them and their fields in ``state``, adds a field."""
    state["records"] = state.get("records", 0) + 1
    if isinstance(record, dict):
        state["fields"] = state.get("fields", 0) + len(record)
        return {**record, "_fields": len(record)}
    return {"value": record}


def check_pipeline(ctx: Context, name: str) -> str | None:
    """``pipeline(parallel=True)`` in worker processes against iterabledata's pipeline: output bytes, counts, state."""
    path, args = ctx.path(name), ctx.args(name)
    folder = ctx.scratch()

    def run(parallel: bool) -> tuple[Any, dict[str, Any], bytes]:
        state: dict[str, Any] = {}
        out = os.path.join(folder, f"{'ours' if parallel else 'theirs'}.jsonl")
        with open_iterable(path, iterableargs=dict(args)) as src, open_iterable(out, mode="w") as dst:
            if parallel:
                result = iterable_dask.pipeline(
                    src, dst, annotate, start_state=state, parallel=True, parallel_mode="process",
                    chunk_size=PIPELINE_CHUNK, client=ctx.client,
                )  # fmt: skip
            else:
                result = upstream_pipeline(src, dst, annotate, start_state=state)
        with open(out, "rb") as f:
            return result, state, f.read()

    def compare(a: Any, b: Any) -> str | None:
        counts = [(r.rec_count, r.exceptions, r.nulls) for r in (a[0], b[0])]
        if counts[0] != counts[1]:
            return f"(rec_count, exceptions, nulls) ours {counts[0]}, iterabledata {counts[1]}"
        if a[1] != b[1]:
            return f"state ours {a[1]}, iterabledata {b[1]}"
        return diff_bytes(a[2], b[2])

    try:
        return verdict("pipeline", attempt(lambda: run(True)), attempt(lambda: run(False)), compare, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_head(ctx: Context, name: str) -> str | None:
    """``iterable-dask head -n 5`` (in this process) against iterabledata's first records as JSON lines."""
    path = ctx.path(name)

    def first() -> list[str]:
        with open_iterable(path) as it:
            return [json.dumps(r, default=str, ensure_ascii=False) for r in itertools.islice(it, HEAD_N)]

    def head() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["head", path, "-n", str(HEAD_N)])
        return code, out.getvalue(), err.getvalue()

    theirs, (code, stdout, stderr) = attempt(first), head()
    if theirs.error is not None:
        expected = type(theirs.error).__name__
        if code == 0 or (expected not in stderr and " ".join(str(theirs.error).split())[:60] not in stderr):
            return f"head of {name}: exit {code}, stderr {stderr.strip()!r}; iterabledata raised {_short(theirs.error)}"
        return None
    if code != 0:
        return f"head of {name}: exit {code}, stderr {stderr.strip()!r}; iterabledata read {len(theirs.value)} records"
    diff = diff_records(stdout.splitlines(), theirs.value)
    return f"head of {name}: {diff}" if diff else None


def _fail(diff: str | None) -> None:
    if diff:
        pytest.fail(diff, pytrace=False)


# -- the tests ------------------------------------------------------------------------------------


def _converted(name: str, ext: str, mode: str = "parallel") -> bool:
    """Whether the run converts ``name`` to ``ext`` (in ``mode``): the 55,861-column table (seconds a Parquet or
    CSV conversion) to JSON Lines only in the sample, and to CSV and Parquet only in parallel in the full run."""
    return ext == "jsonl" or name not in WIDEST or (FULL and mode == "parallel")


#: convert's cases: sequential (iterabledata itself) in the full run only; split for the files read in ranges;
#: to CSV and JSON Lines in the sample (its bulk conversions write Parquet too), to every target in the full run.
CONVERT_CASES = [
    case
    for mode in (("sequential", "parallel", "split") if FULL else ("parallel", "split"))
    for ext in (TARGETS if FULL else ("jsonl", "csv"))
    for case in _cases(
        "convert", [n for n in NAMES if (mode != "split" or _ranged(n)) and _converted(n, ext, mode)], mode, ext
    )
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "mode", "ext"), CONVERT_CASES)
def test_convert(ctx, name, mode, ext):
    _fail(check_convert(ctx, name, ext, mode))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "ext"),
    [case for ext in TARGETS for case in _cases("bulk_convert", [n for n in NAMES if _converted(n, ext)], ext)],
)
def test_bulk_convert(ctx, name, ext):
    _fail(check_bulk(ctx, name, ext))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("read_bag-default", NAMES))
def test_read_bag(ctx, name):
    _fail(check_read_bag(ctx, name, "default"))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("read_bag-small", [n for n in NAMES if _ranged(n) or n.endswith(".parquet")]))
def test_read_bag_small_blocksize(ctx, name):
    _fail(check_read_bag(ctx, name, "small"))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("read_dataframe", NAMES))
def test_read_dataframe(ctx, name):
    _fail(check_read_dataframe(ctx, name))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("parallel_read", NAMES))
def test_parallel_read(ctx, name):
    _fail(check_parallel_read(ctx, name))


@pytest.mark.slow
@pytest.mark.parametrize("group", ["plain", "wide", "xml"])
def test_parallel_read_keeps_the_source_order(ctx, group):
    if not any(ctx.group(n) == group for n in ctx.corpus):
        pytest.skip(f"no {group} file in this corpus")
    paths, got, order, error = ctx.parallel_read(group)
    assert error is None, f"parallel_read over the {group} files raised {_short(error, 600)}"
    assert order == [p for p in paths if got[p]], "ordered=True gave the sources out of order"


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("pipeline", NAMES))
def test_pipeline(ctx, name):
    _fail(check_pipeline(ctx, name))


@pytest.mark.slow
@pytest.mark.parametrize("name", _cases("head", NAMES))
def test_head(ctx, name):
    _fail(check_head(ctx, name))


@pytest.mark.slow
def test_head_command_in_its_own_process(ctx):
    """The installed ``iterable-dask head`` on the file whose header is longer than 1 MiB."""
    path = ctx.path("stress-wide-1m.csv")
    completed = run_cli("head", path, "-n", "2")
    assert completed.returncode == 0, completed.stderr
    expected = [json.dumps(r, default=str, ensure_ascii=False) for r in ctx.records("stress-wide-1m.csv").value[:2]]
    _fail(diff_records(completed.stdout.splitlines(), expected))


# -- object storage: a subset through the S3 server ----------------------------------------------

#: The headers and records longer than the remote head (1 MiB) and an object iterabledata cannot read; in the
#: full run also a compressed object (fetched whole) and a real CSV.
S3_NAMES = sorted(
    {
        "stress-wide-64k.csv",
        "stress-wide-1m.csv",
        "stress-long-1m-jsonl.jsonl",
        "bokeh-airports-json.json",
        *(("penguins-penguins-raw.csv", "bokeh-commits.txt.gz") if FULL else ()),
    }
)


@pytest.fixture(scope="module")
def bucket(s3_server, corpus) -> tuple[dict[str, Any], dict[str, str]]:
    """The sample's files on the S3 server: ``(storage_options, {name: url})``."""
    import s3fs

    _, options = s3_server
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("conformance")
    urls = {}
    for name in S3_NAMES:
        urls[name] = f"s3://conformance/{name}"
        fs.put(corpus[name][1], urls[name])
    yield dict(options), urls
    fs.invalidate_cache()
    with contextlib.suppress(Exception):
        fs.rm("conformance", recursive=True)


def check_s3(ctx: Context, bucket: tuple[dict[str, Any], dict[str, str]], name: str, what: str) -> str | None:
    """``read_bag`` (small blocksize) or ``convert(parallel=True)`` to JSON Lines of an object, against the file's."""
    so, urls = bucket
    url, args, path = urls[name], ctx.args(name), ctx.path(name)
    if what == "read_bag":
        bag = lambda: iterable_dask.read_bag(url, blocksize=ctx.small(name), storage_options=so, **args)  # noqa: E731
        ours = attempt(lambda: iterable_dask.compute(bag(), client=ctx.client)[0])
        return verdict("s3-read_bag-small", ours, ctx.records(name), diff_records, path)
    theirs, theirs_path = ctx.reference(name, "jsonl")
    target = os.path.join(ctx.scratch(), f"{_stem(name)}.jsonl")
    ours = attempt(
        lambda: iterable_dask.convert(
            url, target, iterableargs=args or None, parallel=True, client=ctx.client, blocksize=ctx.small(name),
            storage_options=so,
        )
    )  # fmt: skip
    return verdict(
        "s3-convert-jsonl", ours, theirs, lambda a, b: diff_counts(a, b) or diff_outputs(target, theirs_path), path
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "what"),
    [*_cases("s3-read_bag-small", S3_NAMES, "read_bag"), *_cases("s3-convert-jsonl", S3_NAMES, "convert")],
)
def test_s3(ctx, bucket, name, what):
    _fail(check_s3(ctx, bucket, name, what))


# -- the suite can fail ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_corpus_holds_what_the_windows_must_survive(corpus, tmp_path):
    """The stress files are as long as they claim, in the sample too, and the corpus is the same on every build."""
    assert set(S3_NAMES) <= set(SAMPLE) <= set(corpus)

    def longest(name: str, header: bool) -> int:
        with open(corpus[name][1], "rb") as f:
            lines = f.read().split(b"\n")
        return len(lines[0]) if header else max(len(line) for line in lines[1:])

    assert 64 << 10 < longest("stress-wide-64k.csv", header=True) < 1 << 20
    assert longest("stress-wide-1m.csv", header=True) > 1 << 20
    assert 64 << 10 < longest("stress-long-64k-csv.csv", header=False) < 1 << 20
    assert longest("stress-long-1m-csv.csv", header=False) > 1 << 20
    assert longest("stress-long-1m-jsonl.jsonl", header=False) > 1 << 20
    again = build_corpus(str(tmp_path), ["stress-wide-64k.csv", "derived-titanic-excel.csv", "bokeh-commits.txt.gz"])
    for name, (_, path) in again.items():
        with open(path, "rb") as a, open(corpus[name][1], "rb") as b:
            assert a.read() == b.read(), f"{name} differs between two builds"


def test_the_differences_are_found():
    """The comparisons report what differs (a weakened one would let the window bug through)."""
    assert diff_records([{"a": 1}, {"a": float("nan")}], [{"a": 1}, {"a": float("nan")}]) is None
    assert "record 1, key 'a'" in diff_records([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}])
    assert "keys differ" in diff_records([{"a": 1, "b": 2}], [{"a": 1, "c": 2}])
    assert "ours has 1 records, iterabledata 2" in diff_records([{"a": 1}], [{"a": 1}, {"a": 1}])
    assert "first differing byte 3" in diff_bytes(b"abcd", b"abcX")
    assert diff_bytes(b"ab", b"abc") is not None
    failed, fine = Outcome(error=KeyError(0)), Outcome([{"a": 1}])
    assert diff_outcomes(failed, fine, diff_records, "x.json") is not None
    assert diff_outcomes(fine, failed, diff_records, "x.json") is not None
    assert diff_outcomes(Outcome(error=ValueError("x.json: bad")), failed, diff_records, "x.json") is not None
    wrapped = iterable_dask.FileConversionError("x.json: KeyError: 0", "x.json", "y", "KeyError")
    assert diff_outcomes(Outcome(error=wrapped), failed, diff_records, "x.json") is None
    unnamed = iterable_dask.FileConversionError("KeyError: 0", "x.json", "y", "KeyError")
    assert "without naming" in diff_outcomes(Outcome(error=unnamed), failed, diff_records, "x.json")


def _old_header_window(path, encoding, delimiter, quotechar, storage_options=None, head=None, size=None):
    """The header sniff as it was: the first 64 KiB parsed, a header line cut there taken as the header."""
    from iterable_dask.io.fs import read_bytes

    sample = read_bytes(path, 0, 1 << 16, storage_options)
    text = sample.decode(encoding, errors="replace")
    first = next(iter(io.StringIO(text, newline="")), "")
    header = next(csv.reader([first], delimiter=delimiter, quotechar=quotechar), None)
    return (tuple(header) if header else None), len(first.encode(encoding)), False


@pytest.mark.slow
def test_probe_a_broken_header_window_is_reported(ctx, monkeypatch):
    """With the 64 KiB header sniff put back, the wide-header file is reported as a mismatch."""
    import iterable_dask.io.csv_ranges as read_module

    calls: list[str] = []
    header_end = len(open(ctx.path(WIDE), "rb").readline())  # noqa: SIM115
    assert header_end > 1 << 16, "the wide file's header must be longer than the old window"

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return _old_header_window(*args, **kwargs)

    monkeypatch.setattr(read_module, "_csv_header", broken)
    bag = check_read_bag(ctx, WIDE, "small")
    converted = check_convert(ctx, WIDE, "jsonl", "split")
    assert calls, "the probe's window was never used: the planning no longer calls io.csv_ranges._csv_header"
    assert bag is not None and bag.startswith(f"read_bag-small of {WIDE}: record 0"), bag
    assert converted is not None and converted.startswith(f"convert-split-jsonl of {WIDE}: "), converted
    assert "first differing byte" in converted or "iterabledata" in converted, converted
    monkeypatch.undo()
    # The same comparisons pass equal data: a real CSV read in ranges through the real header window.
    assert check_read_bag(ctx, CONTROL, "small") is None
    assert check_convert(ctx, CONTROL, "jsonl", "split") is None
