"""Exit codes, and failures as one line naming the problem."""

from __future__ import annotations

import click
from iterable.exceptions import (
    CodecNotSupportedError,
    FormatDetectionError,
    FormatNotSupportedError,
    WriteNotSupportedError,
)

from ..core.exceptions import ClusterConnectionError, SchedulerLostError, UnpicklableFunctionError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Terminated",
    "UsageProblem",
    "exit_code_for",
    "one_line",
]

EXIT_OK = 0
#: Some files or records failed; the summary names them.
EXIT_FAILED = 1
#: A usage error: a bad flag, no file matched, an unknown format, an unreachable scheduler.
EXIT_USAGE = 2
#: Interrupted by Ctrl-C (128 + SIGINT), after cleaning up.
EXIT_INTERRUPTED = 130
#: Stopped by SIGTERM (128 + SIGTERM: ``kill``, a job scheduler's timeout), after the same cleanup.
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds (and cleans up) like Ctrl-C."""


#: Exceptions that say the request itself is wrong: what was asked for does not exist or cannot be done.
_USAGE_ERRORS = (
    click.UsageError,
    ClusterConnectionError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FormatNotSupportedError,
    FormatDetectionError,
    CodecNotSupportedError,
    WriteNotSupportedError,
    ImportError,
    UnpicklableFunctionError,
)
#: The API's argument checks raise these exact types; their subclasses (a JSON
#: decode error, an undecodable byte) are data errors, not usage errors.
_ARGUMENT_ERRORS = (ValueError, TypeError)


class UsageProblem(click.UsageError):
    """A request the command cannot carry out as asked (exit code 2)."""


def exit_code_for(error: BaseException) -> int:
    """The exit code of a command that raised ``error``."""
    if isinstance(error, Terminated):
        return EXIT_TERMINATED
    if isinstance(error, (KeyboardInterrupt, click.Abort)):
        return EXIT_INTERRUPTED
    if isinstance(error, SchedulerLostError):
        return EXIT_FAILED  # the run started, then lost its cluster: not a usage error
    if isinstance(error, _USAGE_ERRORS) or type(error) in _ARGUMENT_ERRORS:
        return EXIT_USAGE
    return EXIT_FAILED


def one_line(error: BaseException) -> str:
    """``error`` as one line: its type where that helps, and its message."""
    if isinstance(error, click.ClickException):
        message = error.format_message()
    elif isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError)) and error.filename:
        message = f"{error.strerror or 'not found'}: {error.filename}"
    else:
        message = str(error) or type(error).__name__
        if not isinstance(error, (ClusterConnectionError, ValueError)):  # those messages say what they are
            message = f"{type(error).__name__}: {message}"
    return " ".join(message.split())
