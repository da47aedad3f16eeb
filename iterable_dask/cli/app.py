"""The ``iterable-dask`` command group and :func:`main`, which turns outcomes into exit codes."""

from __future__ import annotations

import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import FrameType

import click

from .cluster import cluster_command
from .convert import bulk_convert_command, convert_command
from .demo import demo_command
from .errors import EXIT_OK, EXIT_USAGE, Terminated, exit_code_for, one_line
from .head import head_command
from .options import verbosity
from .pipeline import pipeline_command

__all__ = ["cli", "main"]

PROG = "iterable-dask"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iterable-dask", prog_name=PROG, message="%(prog)s %(version)s")
def cli() -> None:
    """Convert files and run pipelines in parallel on Dask, on this machine or a cluster.

    Exit codes: 0 all succeeded; 1 some files or records failed; 2 a usage
    error; 130 interrupted (Ctrl-C).

    \b
    Examples:
      iterable-dask bulk-convert 'data/*.csv' out/ --to parquet
      iterable-dask head out/part-00.parquet -n 3
      iterable-dask cluster --workers 4
    """


for command in (
    convert_command,
    bulk_convert_command,
    pipeline_command,
    head_command,
    cluster_command,
    demo_command,
):
    cli.add_command(command)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _command_name(argv: Sequence[str]) -> str:
    names = [a for a in argv if a in cli.commands]
    return f"{PROG} {names[0]}" if names else PROG


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``iterable-dask`` command; return its exit code.

    Errors are one line on stderr naming the problem (with the traceback
    under ``-v``): 1 when files or records failed, 2 for a usage error, 130
    after Ctrl-C once the run is cleaned up.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    iterable-dask ...
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # The dashboard link printed is the one in use; Dask's note that it moved to a free port is noise here.
    warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
    previous = signal.signal(signal.SIGTERM, _terminate) if argv is None else None
    try:
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        hint = f" (see '{_command_name(args)} --help')"
        click.echo(f"{_command_name(args)}: error: {one_line(e)}{hint}", err=True)
        return EXIT_USAGE
    except (KeyboardInterrupt, click.Abort) as e:
        click.echo(f"{_command_name(args)}: {'terminated' if isinstance(e, Terminated) else 'interrupted'}", err=True)
        return exit_code_for(e)
    except Exception as e:
        if verbosity():
            traceback.print_exc()
        click.echo(f"{_command_name(args)}: error: {one_line(e)}", err=True)
        return exit_code_for(e)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK if code is None else int(code)
