"""Options the commands share, as click decorators, and their parsing."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = [
    "cluster_options",
    "output_options",
    "parse_storage_options",
    "progress_option",
    "security_from",
    "show_progress",
    "storage_option",
    "verbosity",
]

F = TypeVar("F", bound=Callable[..., Any])

_verbosity = 0


def verbosity() -> int:
    """How many ``-v`` the running command got (0: warnings only, no tracebacks)."""
    return _verbosity


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    global _verbosity
    _verbosity = value
    level = logging.WARNING if value == 0 else logging.INFO if value == 1 else logging.DEBUG
    logging.basicConfig(format="iterable-dask: %(levelname)s: %(name)s: %(message)s", stream=sys.stderr, force=True)
    logging.getLogger("iterable_dask").setLevel(level)
    if value < 2:  # Dask's own INFO chatter (workers starting, closing) only at -vv
        for name in ("distributed", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(logging.ERROR)
    return value


def _value(text: str) -> Any:
    """A storage option's value: JSON when it parses (``true``, ``3``, ``{"a": 1}``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_storage_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``key=value`` pairs as fsspec storage options; dotted keys nest.

    Values are read as JSON when they parse, else kept as text: quote a
    value that looks like a number but must stay text (``key='"0123"'``).

    Examples
    --------
    >>> parse_storage_options(["anon=true", "client_kwargs.endpoint_url=http://127.0.0.1:9000"])
    {'anon': True, 'client_kwargs': {'endpoint_url': 'http://127.0.0.1:9000'}}
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="'--storage-option'")
        *parents, last = key.strip().split(".")
        node = options
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise click.BadParameter(f"{key!r} nests under a key that has a value", param_hint="'--storage-option'")
            node = child
        node[last] = _value(text)
    return options


def show_progress(value: bool | None) -> bool:
    """``--progress/--no-progress``; by default a bar only when stderr is a terminal."""
    return sys.stderr.isatty() if value is None else value


def _apply(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def wrap(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return wrap


storage_option = click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec option for s3://, gs://, ... URLs (repeatable; dotted keys nest: client_kwargs.endpoint_url=...).",
)

progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar on stderr (default: when stderr is a terminal).",
)

output_options = _apply(
    click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary on stdout."),
    click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        is_eager=True,
        callback=_set_verbosity,
        help="Log progress (-vv: debug, Dask's logs too); show tracebacks of errors.",
    ),
)


def security_from(ca_file: str | None, cert: str | None, key: str | None) -> Any:
    """A :class:`distributed.security.Security` from the TLS options; None leaves Dask's ``distributed.comm.tls``."""
    if not (ca_file or cert or key):
        return None
    if not (ca_file and cert):
        raise click.UsageError("TLS needs --tls-ca-file and --tls-cert (and --tls-key unless the cert holds the key)")
    from distributed.security import Security

    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


_path = click.Path(exists=True, dir_okay=False)

cluster_options = _apply(
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Workers of the embedded local cluster (default: CPU count).",
    ),
    click.option(
        "--scheduler",
        metavar="ADDR",
        default=None,
        help="Run on a running Dask scheduler, e.g. tcp://127.0.0.1:8786 (see 'iterable-dask cluster').",
    ),
    click.option("--tls-ca-file", type=_path, default=None, help="CA certificate of a tls:// scheduler."),
    click.option("--tls-cert", type=_path, default=None, help="This client's TLS certificate."),
    click.option("--tls-key", type=_path, default=None, help="This client's TLS private key."),
)
