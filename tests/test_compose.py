"""docker-compose.yml checked without Docker: ports, shared storage, start order, and the dask command lines."""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import urlparse

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK_CLI = os.path.join(os.path.dirname(sys.executable), "dask")
# The services that run iterable_dask code and must see the same files and the same object store.
CODE_SERVICES = ("worker", "notebook")
S3_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")


@functools.cache
def compose() -> dict:
    with open(os.path.join(REPO, "docker-compose.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def service(name: str) -> dict:
    return compose()["services"][name]


def argv(name: str) -> list[str]:
    """The command of a service as an argument list (compose accepts a list or a shell-style string)."""
    command = service(name)["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(args: list[str], flag: str) -> str:
    """The value after ``flag`` (``--flag value`` or ``--flag=value``)."""
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} missing from {args}")


def flags(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def published(name: str) -> dict[int, str]:
    """Container port -> host binding of every published port of a service."""
    out = {}
    for port in service(name).get("ports", []):
        if isinstance(port, dict):
            out[int(port["target"])] = f"{port.get('host_ip', '')}:{port.get('published', '')}"
        else:
            host, _, target = str(port).rpartition(":")
            out[int(target.split("/")[0])] = host
    return out


def shell_steps(name: str) -> list[list[str]]:
    """The ``&&``-joined commands of a service whose entrypoint is ``sh -c``."""
    assert service(name)["entrypoint"][-1] == "-c"
    (script,) = argv(name)
    return [shlex.split(step) for step in script.split("&&")]


def test_every_published_port_is_loopback_only():
    seen = 0
    for name, svc in compose()["services"].items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports", []):
            seen += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert isinstance(port, str), f"{name}: quote ports so YAML cannot read them as numbers: {port!r}"
                assert port.startswith("127.0.0.1:"), (name, port)
    assert seen >= 5  # scheduler 8786/8787, notebook 8888, minio 9000/9001


def test_code_services_share_data_folder_and_object_store():
    worker, notebook = (service(name) for name in CODE_SERVICES)
    assert "./data:/data" in worker["volumes"]
    assert sorted(worker["volumes"]) == sorted(notebook["volumes"])

    envs = {name: environment(name) for name in CODE_SERVICES}
    shared = {k: envs["worker"].get(k) for k in (*S3_ENV_KEYS, "ITERABLE_DASK_BUCKET")}
    assert all(shared.values()), shared
    for name in CODE_SERVICES:
        assert {k: envs[name].get(k) for k in shared} == shared, name
    assert envs["notebook"]["DASK_ITERABLE_DASK__SCHEDULER_ADDRESS"] == "tcp://scheduler:8786"


def test_s3_endpoint_and_keys_are_the_minio_service():
    env = environment("worker")
    endpoint = urlparse(env["AWS_ENDPOINT_URL_S3"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "minio"
    assert endpoint.hostname in compose()["services"]
    minio_args = argv("minio")
    assert minio_args[0] == "server"
    # The API listens on :9000 unless --address says otherwise; the endpoint must use that container port.
    api_port = int(option(minio_args, "--address").rsplit(":", 1)[1]) if "--address" in minio_args else 9000
    assert endpoint.port == api_port
    assert api_port in published("minio")
    console_port = int(option(minio_args, "--console-address").rsplit(":", 1)[1])
    assert console_port in published("minio")

    minio_env = environment("minio")
    assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert service("minio")["image"].split("/")[-1].startswith("minio:")
    # Its data lives in a named volume declared at the top level.
    volume = next(v.split(":")[0] for v in service("minio")["volumes"] if v.endswith(":" + minio_args[1]))
    assert volume in compose()["volumes"]


def test_createbucket_creates_the_configured_bucket_on_minio():
    bucket = urlparse(environment("worker")["ITERABLE_DASK_BUCKET"])
    assert bucket.scheme == "s3"
    assert bucket.path in ("", "/")

    create = service("createbucket")
    assert create["image"].split("/")[-1].startswith("mc:")
    assert create["depends_on"]["minio"]["condition"] == "service_healthy"
    steps = shell_steps("createbucket")
    alias_set = next(s for s in steps if s[:3] == ["mc", "alias", "set"])
    alias, url, key, secret = alias_set[3:7]
    assert url == environment("worker")["AWS_ENDPOINT_URL_S3"]
    # "$$VAR" reaches the shell as "$VAR"; the variable must hold the MinIO credentials.
    env = environment("createbucket")
    assert env[key.removeprefix("$$")] == environment("minio")["MINIO_ROOT_USER"]
    assert env[secret.removeprefix("$$")] == environment("minio")["MINIO_ROOT_PASSWORD"]
    make_bucket = next(s for s in steps if s[:2] == ["mc", "mb"])
    assert "--ignore-existing" in make_bucket  # rerunning `docker compose up` must not fail
    assert make_bucket[-1] == f"{alias}/{bucket.netloc}"


def test_start_order_and_healthchecks():
    for name in ("scheduler", "minio"):
        assert "healthcheck" in service(name), name
        test = service(name)["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    for name in CODE_SERVICES:
        deps = service(name)["depends_on"]
        assert isinstance(deps, dict), f"{name}: the list form of depends_on has no conditions"
        assert deps["scheduler"]["condition"] == "service_healthy", name
        assert deps["minio"]["condition"] == "service_healthy", name
        assert deps["createbucket"]["condition"] == "service_completed_successfully", name


def test_scheduler_healthcheck_probes_the_scheduler_port():
    port = option(argv("scheduler"), "--port")
    probe = " ".join(service("scheduler")["healthcheck"]["test"][1:])
    assert re.search(rf"\(\s*['\"]127\.0\.0\.1['\"]\s*,\s*{port}\s*\)", probe), probe
    # The probe is valid Python for the image's interpreter.
    compile(service("scheduler")["healthcheck"]["test"][-1], "healthcheck", "exec")


def test_dask_command_lines_match_the_integration_tests():
    scheduler = argv("scheduler")
    assert scheduler[:2] == ["dask", "scheduler"]
    # The flags tests/conftest.py passes to a real `dask scheduler`.
    assert flags(scheduler) == {"--host", "--port", "--dashboard-address"}
    port = int(option(scheduler, "--port"))
    assert published("scheduler")[port] == "127.0.0.1:8786"
    dashboard = int(option(scheduler, "--dashboard-address").rsplit(":", 1)[1])
    assert dashboard in published("scheduler")

    worker = argv("worker")
    assert worker[:3] == ["dask", "worker", f"tcp://scheduler:{port}"]
    assert {"--nthreads", "--nworkers"} <= flags(worker)
    assert int(option(worker, "--nthreads")) >= 1
    assert int(option(worker, "--nworkers")) >= 1
    assert service("worker")["deploy"]["replicas"] >= 1

    notebook = " ".join(argv("notebook"))
    with open(os.path.join(REPO, "Dockerfile")) as f:
        dockerfile = f.read()
    assert re.search(r"pip install .*\.\[[^]]*\bnotebook\b[^]]*\]", dockerfile)  # ipywidgets in the image
    assert re.search(r"pip install .*\.\[[^]]*\bs3\b[^]]*\]", dockerfile)  # s3fs in the image
    assert int(re.search(r"jupyter lab .*--port (\d+)", notebook).group(1)) in published("notebook")


def cli_options(subcommand: str) -> set[str]:
    """Every ``--option`` the installed ``dask <subcommand> --help`` lists."""
    out = subprocess.run([DASK_CLI, subcommand, "--help"], capture_output=True, text=True, timeout=120, check=True)
    options = set()
    for line in out.stdout.splitlines():
        if re.match(r"\s+-", line):
            spec = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            options.update(re.findall(r"--[\w-]+", spec))
    return options


@pytest.mark.parametrize("name", ["scheduler", "worker"])
def test_installed_dask_cli_knows_every_compose_flag(name):
    args = argv(name)
    assert args[:2] == ["dask", name]
    known = cli_options(name)
    assert {"--help", "--port" if name == "scheduler" else "--nthreads"} <= known  # the help text was parsed
    assert flags(args) <= known, flags(args) - known


def test_compose_s3_environment_reaches_an_s3_server(s3_server, monkeypatch):
    """s3fs with no storage_options finds the object store from the compose environment alone."""
    import s3fs

    endpoint, _ = s3_server
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in environment("worker").items():
        monkeypatch.setenv(key, value)
    # The moto server on 127.0.0.1 stands in for http://minio:9000.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    bucket = urlparse(os.environ["ITERABLE_DASK_BUCKET"]).netloc
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(bucket)
    try:
        fs.pipe(f"{bucket}/probe.txt", b"ok")
        assert s3fs.S3FileSystem(skip_instance_cache=True).cat(f"{bucket}/probe.txt") == b"ok"
    finally:
        fs.rm(bucket, recursive=True)
