"""What a finished run tells the coordinator, and getting that said.

The result is the one message that must not be lost: the work message is acked
only after the coordinator answered it, so the report is retried through any
bus outage for as long as the executor lives (and the work message is kept
alive meanwhile by its heartbeat).
"""

from __future__ import annotations

import logging
import signal

from whoosh_shared.commands import CompleteTask, FailTask, Usage
from whoosh_shared.work import WorkItem

from whoosh_executor_cli.local_process import Outcome, RunResult

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


def result_command(
    item: WorkItem, result: RunResult, *, coordinator_timed_out: bool = False
) -> CompleteTask | FailTask:
    """The CompleteTask or FailTask that reports `result`.

    Only a non-zero exit is retryable: a command that cannot start, a timeout or
    a kill would go the same way on the next attempt.
    """
    ids = {"task_id": item.task_id, "attempt": item.attempt}
    usage = Usage(duration_s=result.duration_s)
    if result.outcome is Outcome.START_FAILED:
        reason = result.error or f"cannot start {item.agent.command[0]!r}"
        return FailTask(**ids, reason=_clip(reason), retryable=False, usage=usage)
    if result.outcome is Outcome.TIMED_OUT:
        return FailTask(
            **ids,
            reason=f"timed out after {item.timeout_s:g}s",
            output=result.output,
            exit_code=result.exit_code,
            retryable=False,
            timed_out=True,
            usage=usage,
        )
    if result.outcome is Outcome.CANCELLED:
        return FailTask(
            **ids,
            reason=_clip(f"killed: {result.cancel_reason or 'cancelled'}"),
            output=result.output,
            exit_code=result.exit_code,
            retryable=False,
            timed_out=coordinator_timed_out,
            usage=usage,
        )
    if result.exit_code == 0:
        return CompleteTask(**ids, output=result.output, exit_code=0, usage=usage)
    return FailTask(
        **ids,
        reason=_clip(exit_reason(result.exit_code, result.last_stderr_line)),
        output=result.output,
        exit_code=result.exit_code,
        retryable=True,
        usage=usage,
    )


def exit_reason(exit_code: int | None, last_stderr_line: str) -> str:
    """`exit code N: <last stderr line>`, or the signal that killed the command."""
    if exit_code is not None and exit_code < 0:
        try:
            what = f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            what = f"killed by signal {-exit_code}"
    else:
        what = f"exit code {exit_code}"
    return f"{what}: {last_stderr_line}" if last_stderr_line else what


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
