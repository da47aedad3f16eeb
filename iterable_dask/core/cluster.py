"""Which Dask cluster runs the work: client resolution and the embedded cluster.

Resolution order of every parallel entry point (:func:`get_client`):

1. ``client=``: a :class:`distributed.Client`, or a cluster object with
   ``get_client()`` (LocalCluster, dask-jobqueue, dask-kubernetes ...);
2. ``scheduler=``: a scheduler address such as ``"tcp://10.0.0.5:8786"``
   (``"tls://..."`` with ``security=``, a :class:`distributed.security.Security`);
3. the ``iterable-dask.scheduler-address`` setting, then Dask's own
   ``scheduler-address`` (``DASK_SCHEDULER_ADDRESS``);
4. a Client already active in this process (a notebook's ``Client()``);
5. an embedded :class:`distributed.LocalCluster`, started on first use, reused
   by later calls and closed at interpreter exit. It binds its scheduler,
   workers and dashboards to 127.0.0.1 only.

Starting a LocalCluster has a deadline, and fails at once in a spawned import of a
script without ``if __name__ == "__main__":`` (:mod:`.startup`).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import threading
from collections.abc import Iterator
from typing import Any

import dask.config
import distributed
from distributed import Client, LocalCluster
from distributed.security import Security

from . import config
from .exceptions import ClusterConnectionError
from .lost import is_connected, raise_if_lost
from .startup import refuse_in_spawned_import, start_with_deadline

__all__ = [
    "close_embedded_clusters",
    "cluster_capacity",
    "cluster_threads",
    "compute",
    "dashboard_link",
    "get_client",
    "local_cluster",
    "parallelism_hint",
]

logger = logging.getLogger(__name__)

CLUSTER_MODES = ("process", "thread")

_lock = threading.RLock()
_embedded: dict[tuple[int, str], tuple[LocalCluster, Client]] = {}
_remote: dict[tuple[str, Any], Client] = {}


def _is_running(client: Client) -> bool:
    return client.status in ("running", "connecting", "newly-created")


def _security_token(security: Security | None) -> Any:
    """What tells two Security objects apart, for the cache of connected clients."""
    if security is None:
        return None
    if not isinstance(security, Security):
        raise TypeError(f"security must be a distributed.security.Security; got {type(security).__name__}")
    return tuple(repr(getattr(security, name, None)) for name in Security.__slots__)


def _check_tls(address: str, security: Security | None) -> None:
    """A ``tls://`` address needs a CA and a client certificate: say so before connecting."""
    if not address.startswith("tls://") or dask.config.get("distributed.client.security-loader", None):
        return
    effective = security if security is not None else Security()  # Dask's distributed.comm.tls.* settings
    if effective.tls_ca_file and effective.tls_client_cert:
        return
    raise ClusterConnectionError(
        f"The Dask scheduler at {address!r} speaks TLS, but no client certificate is configured. Pass "
        "security=distributed.security.Security(tls_ca_file=..., tls_client_cert=..., tls_client_key=..., "
        "require_encryption=True), or set Dask's distributed.comm.tls.ca-file and distributed.comm.tls.client.cert."
    )


def _connect(address: str, security: Security | None = None) -> Client:
    """Connect to a scheduler address, failing within the connect timeout."""
    if not isinstance(address, str) or not address:
        raise TypeError(f"scheduler must be an address string such as 'tcp://127.0.0.1:8786'; got {address!r}")
    key = (address, _security_token(security))
    with _lock:
        cached = _remote.get(key)
        if cached is not None and is_connected(cached):  # not one still reconnecting to a lost scheduler
            return cached
        _check_tls(address, security)
        timeout = config.connect_timeout()
        try:
            client = Client(address, timeout=timeout, set_as_default=False, security=security)
        except (OSError, TimeoutError) as e:
            hint = " (a TLS scheduler refuses a client without its certificates: pass security=)" if security else ""
            raise ClusterConnectionError(
                f"Could not connect to the Dask scheduler at {address!r} within {timeout:g}s: {e}. "
                "Check that the scheduler is running and the address is right "
                f"(set 'iterable-dask.connect-timeout' to wait longer){hint}."
            ) from e
        except ValueError as e:
            raise ValueError(f"Invalid Dask scheduler address {address!r}: {e}") from e
        _remote[key] = client
        return client


def _from_client_argument(client: Any, security: Security | None = None) -> Client:
    if isinstance(client, Client):
        return client
    address = getattr(client, "scheduler_address", None)
    if isinstance(address, str):
        # A cluster object: connect a client of our own (not the process default), with its security
        # unless one is given.
        key = (address, _security_token(security))
        with _lock:
            cached = _remote.get(key)
            if cached is not None and is_connected(cached):
                return cached
            try:
                connected = Client(client, set_as_default=False, timeout=config.connect_timeout(), security=security)
            except (TypeError, AttributeError):  # not a cluster Client() accepts: connect by address
                return _connect(address, security)
            _remote[key] = connected
            return connected
    get = getattr(client, "get_client", None)
    if callable(get):
        return get()
    raise TypeError(
        "client must be a distributed.Client or a cluster object with get_client() "
        f"(LocalCluster, dask-jobqueue, dask-kubernetes); got {type(client).__name__}"
    )


def _active_client() -> Client | None:
    try:
        client = distributed.default_client()
    except ValueError:
        return None
    return client if _is_running(client) else None


def dashboard_link(client: Any) -> str | None:
    """The address the client's dashboard answers on.

    Dask formats an in-process cluster's link with the machine's outward IP,
    while the embedded dashboard listens on 127.0.0.1 only; for a cluster
    object in this process the link is taken from the listening socket.

    Examples
    --------
    >>> from iterable_dask import local_cluster
    >>> with local_cluster(workers=1, mode="thread", dashboard_address="127.0.0.1:0") as client:
    ...     dashboard_link(client).startswith("http://127.0.0.1:")
    True
    """
    scheduler = getattr(getattr(client, "cluster", None), "scheduler", None)
    server = getattr(scheduler, "http_server", None)
    for sock in (getattr(server, "_sockets", None) or {}).values():
        host, port = sock.getsockname()[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}/status"
    return client.dashboard_link


def _embedded_client(workers: int | None, mode: str | None) -> Client:
    n = config.resolve_workers(workers)
    mode = mode or config.get("embedded-cluster.mode")
    if mode not in CLUSTER_MODES:
        raise ValueError(f"mode must be one of {', '.join(CLUSTER_MODES)}; got {mode!r}")
    key = (n, mode)
    with _lock:
        cached = _embedded.get(key)
        if cached is not None and _is_running(cached[1]):
            return cached[1]
        cluster = _start_local_cluster(n, mode)
        try:
            client = Client(cluster, set_as_default=False, timeout=config.start_timeout())
        except BaseException:
            with contextlib.suppress(Exception):
                cluster.close()
            raise
        _embedded[key] = (cluster, client)
        logger.info("Started an embedded Dask cluster (%d %s workers); dashboard: %s", n, mode, dashboard_link(client))
        return client


def _start_local_cluster(workers: int, mode: str, **kwargs: Any) -> LocalCluster:
    """A LocalCluster of the package's settings, within its deadline; refused in a spawned import of the script."""
    refuse_in_spawned_import()
    host = config.get("embedded-cluster.host")
    dashboard = config.get("embedded-cluster.dashboard-address")
    options: dict[str, Any] = {"dashboard_address": dashboard, "silence_logs": logging.ERROR}
    if mode == "process":
        options.update(n_workers=workers, threads_per_worker=1, processes=True, host=host)
        worker_dashboard = f"{host}:0" if config.get("embedded-cluster.worker-dashboards") else None
        options.update(worker_dashboard_address=worker_dashboard)
        options.update(memory_limit=config.get("embedded-cluster.memory-limit"))
    else:
        # One process: workers talk in-process (no socket, no serialization); only the dashboard listens.
        options.update(n_workers=1, threads_per_worker=workers, processes=False)
    profile = bool(config.get("embedded-cluster.worker-profile"))
    if mode == "process":  # the nanny hands the worker process its config (merged one level deep)
        section = copy.deepcopy(dask.config.get("distributed"))
        section.setdefault("worker", {}).setdefault("profile", {})["enabled"] = profile
        options.update(config={"distributed": section})
    options.update(kwargs)

    def start() -> LocalCluster:
        if mode == "process":
            return LocalCluster(**options)
        with dask.config.set({"distributed.worker.profile.enabled": profile}):  # an in-process worker reads it
            return LocalCluster(**options)

    return start_with_deadline(start, workers, mode)


def get_client(
    client: Any = None,
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    mode: str | None = None,
    security: Security | None = None,
) -> Client:
    """Resolve the Dask client that runs a parallel call.

    Parameters
    ----------
    client : distributed.Client or cluster, optional
        Used as is; a cluster object is connected to with its own security
        (or ``security``).
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://127.0.0.1:8786"`` or
        ``"tls://10.0.0.5:8786"``.
    workers : int, optional
        Worker count of the embedded cluster (default: ``iterable-dask.workers``,
        else the CPU count). Ignored when another cluster is found.
    mode : {"process", "thread"}, optional
        Worker processes or threads of the embedded cluster.
    security : distributed.security.Security, optional
        TLS certificates for connecting to a scheduler address (``scheduler=``,
        ``iterable-dask.scheduler-address`` or ``DASK_SCHEDULER_ADDRESS``).
        Default: Dask's own ``distributed.comm.tls.*`` settings, as
        ``distributed.Client`` reads them.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ClusterConnectionError
        The scheduler address did not answer within ``iterable-dask.connect-timeout``,
        refused the connection (a TLS scheduler and a client without its
        certificates), or is a ``tls://`` address while no client certificate
        is configured.

    Examples
    --------
    >>> from distributed import LocalCluster
    >>> from iterable_dask import get_client
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
    ...     get_client(cluster).status
    'running'
    """
    if client is not None:
        return _from_client_argument(client, security)
    if scheduler is not None:
        return _connect(scheduler, security)
    address = config.get("scheduler-address") or dask.config.get("scheduler-address", None)
    if address:
        return _connect(address, security)
    active = _active_client()
    if active is not None:
        return active
    return _embedded_client(workers, mode)


def cluster_threads(client: Any) -> int:
    """Worker threads of ``client``'s cluster right now (at least 1): the one count every planner and window uses."""
    return max(1, sum(client.nthreads().values()))


def parallelism_hint() -> int:
    """Worker threads to plan tasks for, without connecting to or starting anything.

    The active client's threads where there is one (a notebook's ``Client()``),
    else the size an embedded cluster would have.
    """
    active = _active_client()
    if active is not None:
        return cluster_threads(active)
    return config.resolve_workers()


def cluster_capacity(
    client: Any = None, scheduler: str | None = None, workers: int | None = None, security: Security | None = None
) -> tuple[bool, int]:
    """Whether the cluster :func:`get_client` would pick is already up, and how many tasks it runs at once.

    Never starts an embedded cluster: for one not yet running, its planned size.
    """
    if client is not None or scheduler is not None or config.get("scheduler-address"):
        resolved = get_client(client, scheduler, security=security)
        return True, cluster_threads(resolved)
    active = _active_client()
    if active is not None:
        return True, cluster_threads(active)
    n = config.resolve_workers(workers)
    with _lock:
        return any(key[0] == n and _is_running(c) for key, (_, c) in _embedded.items()), n


def compute(
    *collections: Any,
    client: Any = None,
    scheduler: str | None = None,
    retries: int | None = None,
    security: Security | None = None,
) -> tuple[Any, ...]:
    """Compute Dask collections on the resolved cluster (see :func:`get_client`).

    Parameters
    ----------
    *collections
        Bags, delayed objects ...
    client, scheduler, security : optional
        Where to run (``security``: TLS certificates for a ``scheduler`` address).
    retries : int, default 0
        Dask's retries: rerun a failed task whatever it raised. The default is
        none, as in Dask: iterable_dask's own partition tasks already retry
        transient failures in place (``iterable-dask.retries`` times), and a
        data error (a malformed file) should fail once, not three times.

    Returns
    -------
    tuple
        One result per collection.

    Raises
    ------
    SchedulerLostError
        The scheduler went away before the results came back.

    Examples
    --------
    >>> import dask.bag as db
    >>> from iterable_dask import compute, local_cluster
    >>> with local_cluster(workers=1, mode="thread", dashboard_address=None):
    ...     compute(db.from_sequence([1, 2, 3]).count())
    (3,)
    """
    dask_client = get_client(client, scheduler, security=security)
    futures = dask_client.compute(list(collections), retries=0 if retries is None else config.resolve_retries(retries))
    with raise_if_lost(dask_client):
        return tuple(dask_client.gather(futures))


@contextlib.contextmanager
def local_cluster(
    workers: int | None = None,
    mode: str = "process",
    **cluster_kwargs: Any,
) -> Iterator[Client]:
    """Start a LocalCluster on 127.0.0.1 for the duration of a ``with`` block.

    Inside the block the cluster's client is the active one, so every
    iterable_dask call (and any Dask computation) runs on it.

    Parameters
    ----------
    workers : int, optional
        Worker processes (``mode="process"``) or threads (``mode="thread"``);
        default ``iterable-dask.workers``, else the CPU count.
    mode : {"process", "thread"}
        One process per worker with one thread each, or one process with
        ``workers`` threads.
    **cluster_kwargs
        Passed to :class:`distributed.LocalCluster` (``dashboard_address``,
        ``memory_limit`` ...); ``host`` defaults to 127.0.0.1.

    Yields
    ------
    distributed.Client

    Examples
    --------
    >>> import iterable_dask
    >>> with iterable_dask.local_cluster(workers=2, mode="thread", dashboard_address=None) as client:
    ...     len(client.nthreads())
    1
    """
    n = config.resolve_workers(workers)
    if mode not in CLUSTER_MODES:
        raise ValueError(f"mode must be one of {', '.join(CLUSTER_MODES)}; got {mode!r}")
    with _start_local_cluster(n, mode, **cluster_kwargs) as cluster, Client(cluster) as client:
        yield client


def close_embedded_clusters() -> None:
    """Close the embedded clusters and the clients connected by address."""
    with _lock:
        for cluster, client in list(_embedded.values()):
            with contextlib.suppress(Exception):
                client.close()
            with contextlib.suppress(Exception):
                cluster.close()
        _embedded.clear()
        for client in list(_remote.values()):
            with contextlib.suppress(Exception):
                client.close()
        _remote.clear()


atexit.register(close_embedded_clusters)
