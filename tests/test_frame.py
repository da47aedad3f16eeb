"""Dask DataFrames from iterabledata formats: each partition equals pandas over iterabledata's own records."""

from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")

from iterable.helpers.bridges import to_dask as upstream_to_dask  # noqa: E402

import iterable_dask  # noqa: E402
from iterable_dask.sample import write_sample  # noqa: E402

from .helpers import sequential  # noqa: E402


def _xml(path, n: int) -> str:
    items = "".join(f"<item><id>{i}</id><city>{'AB'[i % 2]}</city><n>{i * 3}</n></item>" for i in range(n))
    path.write_text(f"<root>{items}</root>")
    return str(path)


def _json_array(path, n: int) -> str:
    path.write_text(json.dumps([{"id": i, "city": "AB"[i % 2], "score": i / 4} for i in range(n)]))
    return str(path)


def _expected(path: str, **iterableargs) -> pd.DataFrame:
    return pd.DataFrame.from_records(sequential(path, **iterableargs))


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


# data.tsv: iterabledata 1.0 reads a .tsv file with a comma (one column, extras as lists under None):
# the frame holds exactly that, nested values kept as Python objects.
@pytest.mark.parametrize("name", ["data.csv", "data.jsonl", "data.jsonl.gz", "data.parquet", "data.tsv"])
def test_formats_dask_reads_too_equal_iterabledatas_records(tmp_path, client, name):
    if name.endswith(".parquet"):  # several row groups, so that it splits
        import pyarrow as pa
        import pyarrow.parquet as pq

        records = sequential(write_sample(str(tmp_path / "rows.jsonl"), 2500, seed=3))
        path = str(tmp_path / name)
        pq.write_table(pa.Table.from_pylist(records), path, row_group_size=300)
    else:
        path = write_sample(str(tmp_path / name), 2500, seed=3)
    df = iterable_dask.read_dataframe(path, blocksize=20_000)
    got = client.compute(df).result()
    _same(got, _expected(path))
    if not name.endswith(".gz"):
        assert df.npartitions > 1  # a big file, several partitions read on the workers
    if name.endswith(".csv"):
        assert all(got[c].map(type).eq(str).all() for c in got.columns)  # CSV fields stay strings


def test_formats_dask_cannot_read_xml_and_json_arrays(tmp_path, client):
    xml = _xml(tmp_path / "items.xml", 300)
    df = iterable_dask.read_dataframe(xml, tagname="item")
    _same(client.compute(df).result(), _expected(xml, tagname="item"))
    arrays = [_json_array(tmp_path / f"a{i}.json", 50 + i) for i in range(3)]
    df = iterable_dask.read_dataframe(str(tmp_path / "a*.json"))
    expected = pd.concat([_expected(p) for p in arrays], ignore_index=True)
    _same(client.compute(df).result(), expected)


def test_a_groupby_equals_pandas(tmp_path, client):
    paths = [write_sample(str(tmp_path / f"p{i}.jsonl.gz"), 400, seed=i, start=i * 400) for i in range(4)]
    df = iterable_dask.read_dataframe(str(tmp_path / "*.jsonl.gz"))
    expected = pd.concat([_expected(p) for p in paths], ignore_index=True)
    got = client.compute(df.groupby("city")["amount"].sum()).result().sort_index()
    want = expected.groupby("city")["amount"].sum().sort_index()
    pd.testing.assert_series_equal(got, want, check_dtype=False, check_index_type=False)


def test_varying_columns_are_aligned_or_named(tmp_path, client):
    first = tmp_path / "a.jsonl"
    first.write_text("".join(json.dumps({"x": i, "y": i}) + "\n" for i in range(5)))
    second = tmp_path / "b.jsonl"
    second.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(5)))  # lacks y: nulls
    third = tmp_path / "c.jsonl"
    third.write_text(json.dumps({"x": 1, "z": 2}) + "\n")  # has z: not in meta
    aligned = client.compute(iterable_dask.read_dataframe([str(first), str(second)], blocksize=None)).result()
    assert list(aligned.columns) == ["x", "y"] and aligned["y"].isna().sum() == 5
    with pytest.raises(ValueError, match=r"c\.jsonl.*columns \['z'\].*meta="):
        client.compute(iterable_dask.read_dataframe([str(first), str(third)], blocksize=None)).result()
    chosen = iterable_dask.read_dataframe([str(first), str(third)], columns=["x", "z"], blocksize=None)
    assert client.compute(chosen).result()["z"].tolist()[-1] == 2


def test_to_dask_equals_iterabledatas_bridge(tmp_path, client):
    files = [
        write_sample(str(tmp_path / "a.csv"), 300, seed=1),
        write_sample(str(tmp_path / "b.jsonl"), 200, seed=2),
        _json_array(tmp_path / "c.json", 40),
    ]
    theirs = upstream_to_dask(files).compute()
    ours = client.compute(iterable_dask.to_dask(files)).result()
    assert sorted(ours.columns) == sorted(theirs.columns)
    key = list(theirs.columns)
    ours = ours[key].astype(str).sort_values(key).reset_index(drop=True)
    theirs = theirs[key].astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)
    with pytest.raises(ValueError, match="cannot be empty"):
        iterable_dask.to_dask([])


def test_dataframes_and_bags_round_trip_through_write_bag(tmp_path, client):
    path = write_sample(str(tmp_path / "in.csv"), 500, seed=5)
    df = iterable_dask.read_dataframe(path, blocksize=8_000)
    files = iterable_dask.write_bag(df, str(tmp_path / "out"), to_ext="parquet", client=client)
    assert len(files) == df.npartitions > 1
    back = pd.concat([_expected(f) for f in files], ignore_index=True)
    _same(back, _expected(path))
    bag = iterable_dask.read_bag(path, blocksize=8_000)
    frame = bag.to_dataframe(meta=df._meta)  # a bag of records is a DataFrame too
    _same(client.compute(frame).result(), _expected(path))


def test_dtype_backend_and_object_storage(tmp_path, client, s3):
    fs, bucket, so = s3
    path = write_sample(str(tmp_path / "r.jsonl"), 300, seed=8)
    fs.put_file(path, f"{bucket}/r.jsonl")
    df = iterable_dask.read_dataframe(f"{bucket}/r.jsonl", dtype_backend="pyarrow", storage_options=so)
    assert all("pyarrow" in str(t) for t in df.dtypes)
    got = client.compute(df).result()
    assert all("pyarrow" in str(t) for t in got.dtypes)
    _same(got.astype(object), _expected(path).astype(object))


def test_a_partition_of_nulls_keeps_its_columns_numeric_dtype(tmp_path, client):
    """A numeric column that is all null in one partition is NaN there, as pandas makes of the whole file."""
    path = tmp_path / "ages.jsonl"
    ages = [i / 2 for i in range(300)] + [None] * 300 + [1.5] * 300  # the middle partitions: nulls only
    path.write_text("".join(json.dumps({"id": i, "age": a}) + "\n" for i, a in enumerate(ages)))
    df = iterable_dask.read_dataframe(str(path), blocksize=2048)
    assert df.npartitions > 3
    got = client.compute(df).result()
    assert got["age"].dtype == "float64"
    _same(got, _expected(str(path)))
