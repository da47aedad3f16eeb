"""Which Dask cluster runs the work: client resolution and the embedded cluster.

Resolution order of every parallel entry point (:func:`get_client`):

1. ``client=``: a :class:`distributed.Client`, or a cluster object with
   ``get_client()`` (LocalCluster, dask-jobqueue, dask-kubernetes ...);
2. ``scheduler=``: a scheduler address such as ``"tcp://10.0.0.5:8786"``;
3. the ``iterable-dask.scheduler-address`` setting, then Dask's own
   ``scheduler-address`` (``DASK_SCHEDULER_ADDRESS``);
4. a Client already active in this process (a notebook's ``Client()``);
5. an embedded :class:`distributed.LocalCluster`, started on first use, reused
   by later calls and closed at interpreter exit. It binds its scheduler,
   workers and dashboards to 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import dask.config
import distributed
from distributed import Client, LocalCluster

from . import config
from .exceptions import ClusterConnectionError

__all__ = [
    "close_embedded_clusters",
    "cluster_capacity",
    "compute",
    "get_client",
    "local_cluster",
    "parallelism_hint",
    "wait_until_stopped",
]

logger = logging.getLogger(__name__)

CLUSTER_MODES = ("process", "thread")

_lock = threading.RLock()
_embedded: dict[tuple[int, str], tuple[LocalCluster, Client]] = {}
_remote: dict[str, Client] = {}


def _is_running(client: Client) -> bool:
    return client.status in ("running", "connecting", "newly-created")


def _connect(address: str) -> Client:
    """Connect to a scheduler address, failing within the connect timeout."""
    if not isinstance(address, str) or not address:
        raise TypeError(f"scheduler must be an address string such as 'tcp://127.0.0.1:8786'; got {address!r}")
    with _lock:
        cached = _remote.get(address)
        if cached is not None and _is_running(cached):
            return cached
        timeout = config.connect_timeout()
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterConnectionError(
                f"Could not connect to the Dask scheduler at {address!r} within {timeout:g}s: {e}. "
                "Check that the scheduler is running and the address is right "
                "(set 'iterable-dask.connect-timeout' to wait longer)."
            ) from e
        except ValueError as e:
            raise ValueError(f"Invalid Dask scheduler address {address!r}: {e}") from e
        _remote[address] = client
        return client


def _from_client_argument(client: Any) -> Client:
    if isinstance(client, Client):
        return client
    address = getattr(client, "scheduler_address", None)
    if isinstance(address, str):
        # A cluster object: connect a client of our own (not the process default).
        with _lock:
            cached = _remote.get(address)
            if cached is not None and _is_running(cached):
                return cached
            try:
                connected = Client(client, set_as_default=False, timeout=config.connect_timeout())
            except (TypeError, AttributeError):  # not a cluster Client() accepts: connect by address
                return _connect(address)
            _remote[address] = connected
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
        client = Client(cluster, set_as_default=False)
        _embedded[key] = (cluster, client)
        logger.info("Started an embedded Dask cluster (%d %s workers); dashboard: %s", n, mode, client.dashboard_link)
        return client


def _start_local_cluster(workers: int, mode: str, **kwargs: Any) -> LocalCluster:
    host = config.get("embedded-cluster.host")
    dashboard = config.get("embedded-cluster.dashboard-address")
    options: dict[str, Any] = {"dashboard_address": dashboard, "silence_logs": logging.ERROR}
    if mode == "process":
        options.update(n_workers=workers, threads_per_worker=1, processes=True, host=host)
        options.update(worker_dashboard_address=f"{host}:0", memory_limit=config.get("embedded-cluster.memory-limit"))
    else:
        # One process: workers talk in-process (no socket, no serialization); only the dashboard listens.
        options.update(n_workers=1, threads_per_worker=workers, processes=False)
    options.update(kwargs)
    return LocalCluster(**options)


def get_client(
    client: Any = None,
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    mode: str | None = None,
) -> Client:
    """Resolve the Dask client that runs a parallel call.

    Parameters
    ----------
    client : distributed.Client or cluster, optional
        Used as is; a cluster object is asked for its ``get_client()``.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://127.0.0.1:8786"``.
    workers : int, optional
        Worker count of the embedded cluster (default: ``iterable-dask.workers``,
        else the CPU count). Ignored when another cluster is found.
    mode : {"process", "thread"}, optional
        Worker processes or threads of the embedded cluster.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ClusterConnectionError
        The scheduler address did not answer within ``iterable-dask.connect-timeout``.

    Examples
    --------
    >>> from distributed import LocalCluster
    >>> from iterable_dask import get_client
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
    ...     get_client(cluster).status
    'running'
    """
    if client is not None:
        return _from_client_argument(client)
    if scheduler is not None:
        return _connect(scheduler)
    address = config.get("scheduler-address") or dask.config.get("scheduler-address", None)
    if address:
        return _connect(address)
    active = _active_client()
    if active is not None:
        return active
    return _embedded_client(workers, mode)


def _executing(prefix: str, dask_worker: Any = None) -> list[str]:
    names = (str(key) for key, ts in dask_worker.state.tasks.items() if ts.state in _RUNNING)
    return [name for name in names if prefix in name]


_RUNNING = frozenset({"executing", "long-running", "cancelled", "resumed"})


def wait_until_stopped(client: Any, prefix: str, timeout: float = 60.0) -> bool:
    """Wait until no worker still runs a task whose key holds ``prefix``; whether that happened in time.

    Cancelling a future does not stop a task a worker already runs: its
    side effects (a temporary file) may still appear. Sweep after this.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            running = [k for keys in client.run(_executing, prefix).values() for k in keys]
        except Exception:  # a worker gone: nothing of ours runs there any more
            return True
        if not running:
            return True
        if time.monotonic() > deadline:
            logger.warning("tasks %s still run after %ss; their temporaries may stay", running[:3], timeout)
            return False
        time.sleep(0.05)


def parallelism_hint() -> int:
    """Worker threads to plan tasks for, without connecting to or starting anything.

    The active client's threads where there is one (a notebook's ``Client()``),
    else the size an embedded cluster would have.
    """
    active = _active_client()
    if active is not None:
        return max(1, sum(active.nthreads().values()))
    return config.resolve_workers()


def cluster_capacity(client: Any = None, scheduler: str | None = None, workers: int | None = None) -> tuple[bool, int]:
    """Whether the cluster :func:`get_client` would pick is already up, and how many tasks it runs at once.

    Never starts an embedded cluster: for one not yet running, its planned size.
    """
    if client is not None or scheduler is not None or config.get("scheduler-address"):
        resolved = get_client(client, scheduler)
        return True, sum(resolved.nthreads().values())
    active = _active_client()
    if active is not None:
        return True, sum(active.nthreads().values())
    n = config.resolve_workers(workers)
    with _lock:
        return any(key[0] == n and _is_running(c) for key, (_, c) in _embedded.items()), n


def compute(
    *collections: Any,
    client: Any = None,
    scheduler: str | None = None,
    retries: int | None = None,
) -> tuple[Any, ...]:
    """Compute Dask collections on the resolved cluster (see :func:`get_client`).

    Parameters
    ----------
    *collections
        Bags, delayed objects ...
    client, scheduler : optional
        Where to run.
    retries : int, default 0
        Dask's retries: rerun a failed task whatever it raised. The default is
        none, as in Dask: iterable_dask's own partition tasks already retry
        transient failures in place (``iterable-dask.retries`` times), and a
        data error (a malformed file) should fail once, not three times.

    Returns
    -------
    tuple
        One result per collection.

    Examples
    --------
    >>> import dask.bag as db
    >>> from iterable_dask import compute, local_cluster
    >>> with local_cluster(workers=1, mode="thread", dashboard_address=None):
    ...     compute(db.from_sequence([1, 2, 3]).count())
    (3,)
    """
    dask_client = get_client(client, scheduler)
    futures = dask_client.compute(list(collections), retries=0 if retries is None else config.resolve_retries(retries))
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
