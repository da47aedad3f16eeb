"""docker-compose.yml checked without Docker: ports, shared storage, start order, the dask command lines,
and what the notebooks expect of it.

``compose_cluster`` starts the compose file's scheduler and workers on this machine from their own command
lines and environments (compose host names swapped for 127.0.0.1); tests/test_notebooks.py runs the cluster
notebook against it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import glob
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlparse

import dask.config
import psutil
import pytest
import yaml

from .conftest import real_cluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK_CLI = os.path.join(os.path.dirname(sys.executable), "dask")
# The services of the repository's image: the same data folder and the same object store on each.
DASK_SERVICES = ("scheduler", "worker", "notebook")
# The services that run iterable_dask tasks or calls: they wait for the scheduler and the bucket.
CLIENT_SERVICES = ("worker", "notebook")
S3_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")
# Flags of the test suite's `dask worker` (tests/conftest.py) that the compose workers must not have:
# inside the compose network a worker listens on its container address (no --host 127.0.0.1), serves its
# dashboard on its default port, and keeps its nanny, which restarts a worker that dies.
TEST_ONLY_WORKER_FLAGS = {"--host", "--dashboard-address", "--no-nanny"}
# Flags of the compose workers that the test suite's workers do without.
COMPOSE_ONLY_WORKER_FLAGS = {"--memory-limit"}
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
# Read by the notebooks but not set by compose: the tests' knob for small data.
TEST_ONLY_NOTEBOOK_ENV = {"ITERABLE_DASK_NOTEBOOK_ROWS"}


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


def data_folder() -> str:
    """The container path of the host's ``./data`` on the worker (the shared data folder)."""
    (target,) = [v.split(":")[1] for v in service("worker")["volumes"] if v.split(":")[0] == "./data"]
    return target


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


def test_dask_services_share_data_folder_and_object_store():
    assert "./data:/data" in service("worker")["volumes"]
    for name in DASK_SERVICES:
        assert sorted(service(name)["volumes"]) == sorted(service("worker")["volumes"]), name

    envs = {name: environment(name) for name in DASK_SERVICES}
    shared = {k: envs["worker"].get(k) for k in (*S3_ENV_KEYS, "ITERABLE_DASK_BUCKET", "ITERABLE_DASK_DATA")}
    assert all(shared.values()), shared
    for name in DASK_SERVICES:
        assert {k: envs[name].get(k) for k in shared} == shared, name
    # The notebooks work in ITERABLE_DASK_DATA: it must be where the shared folder is mounted.
    assert shared["ITERABLE_DASK_DATA"] == data_folder() == "/data"
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
    for name in CLIENT_SERVICES:
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


def running_command_lines(address: str) -> dict[str, list[str]]:
    """The command lines (from ``dask`` on) of the real scheduler at ``address`` and of one of its workers."""
    port = address.rsplit(":", 1)[1]
    found: dict[str, list[str]] = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = proc.cmdline()
            dask_at = next((i for i, a in enumerate(cmd) if os.path.basename(a) == "dask"), None)
            if dask_at is None:
                continue
            args = ["dask", *cmd[dask_at + 1 :]]
            if args[1] == "scheduler" and option(args, "--port") == port:
                found["scheduler"] = args
            elif args[1] == "worker" and args[2] == address:
                found["worker"] = args
    return found


@pytest.mark.slow
def test_dask_command_lines_match_the_integration_tests(real_scheduler):
    running = running_command_lines(real_scheduler)  # started by tests/conftest.py for the integration tests
    assert set(running) == {"scheduler", "worker"}, running
    scheduler = argv("scheduler")
    assert scheduler[:2] == ["dask", "scheduler"]
    assert flags(scheduler) == flags(running["scheduler"])
    worker = argv("worker")
    assert worker[:2] == running["worker"][:2] == ["dask", "worker"]
    assert flags(running["worker"]) - flags(worker) == TEST_ONLY_WORKER_FLAGS
    assert flags(worker) - flags(running["worker"]) == COMPOSE_ONLY_WORKER_FLAGS
    port = int(option(scheduler, "--port"))
    assert published("scheduler")[port] == "127.0.0.1:8786"
    dashboard = int(option(scheduler, "--dashboard-address").rsplit(":", 1)[1])
    assert dashboard in published("scheduler")

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


def notebook_code(path: str) -> str:
    import nbformat

    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def environment_read(code: str) -> dict[str, str | None]:
    """The environment variables ``code`` reads with ``os.environ[...]``/``os.environ.get(...)``, and their defaults."""
    found: dict[str, str | None] = {}
    for name, default in re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"\s*(?:,\s*"([^"]*)")?', code):
        found[name] = default or found.get(name)
    return found


def merged_dask_config(name: str) -> dict:
    """Dask's settings in a service: the defaults here, updated from the service's ``DASK_*`` variables."""
    return dask.config.update(copy.deepcopy(dask.config.config), dask.config.collect_env(environment(name)))


def test_notebooks_read_the_environment_compose_sets():
    assert len(NOTEBOOKS) >= 2
    env = environment("notebook")
    read = {os.path.basename(path): environment_read(notebook_code(path)) for path in NOTEBOOKS}
    for name, names in read.items():
        assert "ITERABLE_DASK_DATA" in names, name  # every notebook works in the shared folder under compose
        assert set(names) - TEST_ONLY_NOTEBOOK_ENV <= set(env), (name, set(names) - set(env))
    cluster = next(names for names in read.values() if "DASK_ITERABLE_DASK__SCHEDULER_ADDRESS" in names)
    assert {"ITERABLE_DASK_BUCKET", "ITERABLE_DASK_DATA"} <= set(cluster)
    # Its default scheduler is the compose one, which the compose variable names and iterable_dask's setting holds.
    assert cluster["DASK_ITERABLE_DASK__SCHEDULER_ADDRESS"] == env["DASK_ITERABLE_DASK__SCHEDULER_ADDRESS"]
    config = merged_dask_config("notebook")
    assert dask.config.get("iterable-dask.scheduler-address", config=config) == f"tcp://scheduler:{8786}"
    assert option(argv("scheduler"), "--port") == "8786"
    # What s3fs reads in the notebook is what the workers have.
    assert {k: env[k] for k in S3_ENV_KEYS} == {k: environment("worker")[k] for k in S3_ENV_KEYS}


def test_notebook_dashboard_links_open_the_published_dashboard():
    template = dask.config.get("distributed.dashboard.link", config=merged_dask_config("notebook"))
    dashboard = int(option(argv("scheduler"), "--dashboard-address").rsplit(":", 1)[1])
    # As distributed formats a Client's dashboard_link for the scheduler at scheduler:8787.
    link = template.format(**os.environ, scheme="http", host="scheduler", port=dashboard)
    assert link == f"http://{published('scheduler')[dashboard]}/status" == "http://127.0.0.1:8787/status"


def local_argv(name: str, *, port: int = 0, scheduler: str = "") -> list[str]:
    """The compose command of ``scheduler`` or ``worker`` for this machine: every listener on 127.0.0.1.

    The flags stay those of the compose file; only values naming the compose network change (and a worker,
    which listens on its container address in compose, gets ``--host 127.0.0.1`` and a dashboard on it).
    """
    args = argv(name)
    assert args[0] == "dask"
    args[0] = DASK_CLI
    if name == "scheduler":
        swaps = {"--host": "127.0.0.1", "--port": str(port), "--dashboard-address": "127.0.0.1:0"}
        for i, arg in enumerate(args[:-1]):
            if arg in swaps:
                args[i + 1] = swaps[arg]
        return args
    assert args[2].startswith("tcp://scheduler:")
    args[2] = scheduler
    assert not flags(args) & {"--host", "--dashboard-address"}
    return [*args, "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]


def local_environment(name: str, *, scheduler: str, s3_endpoint: str, data: str) -> dict[str, str]:
    """A compose service's environment with the compose network's addresses swapped for local ones."""
    swaps = {
        environment("notebook")["DASK_ITERABLE_DASK__SCHEDULER_ADDRESS"]: scheduler,
        environment("worker")["AWS_ENDPOINT_URL_S3"]: s3_endpoint,
        data_folder(): data,
    }
    env = {key: swaps.get(value, value) for key, value in environment(name).items()}
    for key, value in env.items():  # nothing left that only resolves inside the compose network
        assert urlparse(value).hostname not in compose()["services"], (key, value)
    return env


def outside_environment() -> dict[str, str]:
    """This process's environment without the variables the compose file sets (Dask, S3, iterable_dask)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "AWS_", "ITERABLE_DASK_"))}


@contextlib.contextmanager
def compose_cluster(cwd: str, *, s3_endpoint: str, data: str) -> Iterator[str]:
    """Start the compose file's scheduler and workers (``deploy.replicas`` of them) here; yield the address."""
    replicas = service("worker")["deploy"]["replicas"]

    def command(role: str, address: str, port: int) -> list[str]:
        return local_argv(role, port=port) if role == "scheduler" else local_argv(role, scheduler=address)

    def env(role: str, address: str) -> dict[str, str]:
        return {
            **outside_environment(),
            **local_environment(role, scheduler=address, s3_endpoint=s3_endpoint, data=data),
        }

    expect = replicas * int(option(argv("worker"), "--nworkers"))
    with real_cluster(cwd, replicas, command=command, environment=env, expect_workers=expect) as real:
        yield real.address
