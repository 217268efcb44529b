"""How one run of an agent's command ended, whichever transport ran it (local or SSH)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How a run ended."""

    EXITED = "exited"  # the command exited by itself (any exit code)
    TIMED_OUT = "timed_out"  # it ran past its timeout and was killed
    CANCELLED = "cancelled"  # `cancel` was called and it was killed (or never started)
    START_FAILED = "start_failed"  # it could not be started (not found, no permission, ...)
    # The way to the command failed (an SSH host unreachable, a connection lost while it
    # ran): nothing says the next attempt would go the same way.
    TRANSPORT_FAILED = "transport_failed"


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    exit_code: int | None
    output: str  # stdout, at most `output_limit` characters (tail kept, cut stated)
    output_truncated: bool
    last_stderr_line: str
    duration_s: float
    lines: int  # output lines seen, stdout and stderr
    pid: int | None  # the local pid, or the remote one for a run over SSH
    stderr: str = ""  # the end of stderr, within `stderr_limit` bytes (cut marked)
    error: str | None = None  # why it could not start or reach its end (START/TRANSPORT_FAILED)
    cancel_reason: str | None = None  # the reason given to `cancel` (CANCELLED)
