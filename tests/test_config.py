import os
import subprocess
import sys

import dask
import jsonschema
import pytest
import yaml

import iterable_dask
from iterable_dask import config


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


def _schema_keys(schema, prefix=""):
    out = set()
    for k, v in schema.get("properties", {}).items():
        out.add(prefix + k)
        out |= _schema_keys(v, prefix + k + ".")
    return out


def test_defaults_validate_against_schema():
    defaults = yaml.safe_load(config.DEFAULTS_FILE.read_text())
    schema = yaml.safe_load(config.SCHEMA_FILE.read_text())
    jsonschema.validate(defaults, schema)


def test_defaults_and_schema_have_the_same_keys():
    defaults = yaml.safe_load(config.DEFAULTS_FILE.read_text())
    schema = yaml.safe_load(config.SCHEMA_FILE.read_text())
    assert _keys(defaults) == _schema_keys(schema)


def test_design_constants():
    assert iterable_dask.DEFAULT_PARALLEL_WORKERS is None
    assert iterable_dask.DEFAULT_PARALLEL_MODE == "auto"
    assert iterable_dask.DEFAULT_CHUNK_SIZE == 1000


def test_values_are_read_at_call_time():
    assert config.resolve_chunk_size() == 1000
    with dask.config.set({"iterable-dask.chunk-size": 7, "iterable-dask.workers": 3}):
        assert config.resolve_chunk_size() == 7
        assert config.resolve_workers() == 3
    assert config.resolve_workers() == (os.cpu_count() or 1)
    assert config.resolve_chunk_size(11) == 11


def test_environment_variables_override_defaults():
    env = dict(os.environ, DASK_ITERABLE_DASK__CHUNK_SIZE="250", DASK_ITERABLE_DASK__PARALLEL_MODE="process")
    code = "from iterable_dask import config; print(config.resolve_chunk_size(), config.resolve_parallel_mode())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["250", "process"]


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (config.resolve_chunk_size, 0, "chunk_size must be >= 1, got 0"),
        (config.resolve_workers, -2, "workers must be >= 1, got -2"),
        (config.resolve_parallel_mode, "gpu", "parallel_mode must be one of auto, thread, process; got 'gpu'"),
        (config.resolve_blocksize, -5, "blocksize must be a positive number of bytes"),
    ],
)
def test_bad_values_name_the_argument(func, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        func(value)


def test_blocksize_parsing():
    assert config.resolve_blocksize("1KiB") == 1024
    assert config.resolve_blocksize(None) is None
    assert config.resolve_blocksize("default") == 32 * 2**20
