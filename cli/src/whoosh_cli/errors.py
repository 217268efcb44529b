"""User-facing failures and the exit codes scripts can rely on.

Every error a user can cause ends as one line on stderr and one of these exit
codes, never as a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # a rejected command, a failed task, a refused `up`
EXIT_USAGE = 2  # bad configuration or arguments (argparse uses 2 too)
EXIT_UNREACHABLE = 3  # NATS or the coordinator does not answer
EXIT_INTERRUPTED = 130  # Ctrl-C while waiting

NOT_RUNNING_HINT = "is WHOOSH running? start it with `whoosh up`"


class CliError(Exception):
    """An error worded for the user, with the exit code it should end the process with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    """Arguments or a spec file that do not validate."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class UnreachableError(CliError):
    """The bus or the coordinator cannot be reached."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_UNREACHABLE)
