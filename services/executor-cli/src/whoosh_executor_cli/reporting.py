"""What a finished run tells the coordinator, and getting that said.

The result is the one message that must not be lost: the work message is acked
only after the coordinator answered it, so the report is retried through any
bus outage for as long as the executor lives (and the work message is kept
alive meanwhile by its heartbeat).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS, CompleteTask, FailTask, Usage
from whoosh_shared.contract.work import WorkItem

from whoosh_executor_cli.local_process import Outcome, RunResult
from whoosh_executor_cli.profiles import AgentRun, Verdict

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


def result_command(
    item: WorkItem,
    result: RunResult,
    *,
    reader: AgentRun | None = None,
    coordinator_timed_out: bool = False,
) -> CompleteTask | FailTask:
    """The CompleteTask or FailTask that reports `result`.

    Only a non-zero exit or a failed transport (an SSH host unreachable, a connection
    lost mid-run) is retryable: a command that cannot start, a timeout or a kill would
    go the same way on the next attempt. A vendor CLI (`reader`) is judged by its
    terminal event rather than its exit code, its usage and cost are reported, and once
    it has run tools it is not retried unless the task's workspace is disposable. Every
    report carries the bounded tail of the command's stderr.
    """
    # the end of stderr says why a run failed (or what it warned about); workflows read it
    # as `steps.X.stderr`
    ids = {"task_id": item.task_id, "attempt": item.attempt, "stderr": result.stderr}
    verdict = reader.finish(result.exit_code) if reader is not None else None
    usage = verdict.to_usage(result.duration_s) if verdict else Usage(duration_s=result.duration_s)
    if result.outcome is Outcome.START_FAILED:
        reason = result.error or f"cannot start {item.agent.command[0]!r}"
        return FailTask(**ids, reason=_clip(reason), retryable=False, usage=usage)
    if result.outcome is Outcome.TRANSPORT_FAILED:
        reason = result.error or "the connection to the agent's host failed"
        retryable, reason = _retry_after_side_effects(item, verdict, reason)
        return FailTask(
            **ids,
            reason=_clip(reason),
            output=result.output,
            exit_code=result.exit_code,
            retryable=retryable,
            usage=usage,
        )
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
    if verdict is not None:
        return _judged(ids, item, result, verdict, usage)
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


def _judged(
    ids: dict[str, Any], item: WorkItem, result: RunResult, verdict: Verdict, usage: Usage
) -> CompleteTask | FailTask:
    """A vendor CLI that exited by itself: its own terminal event says how it went."""
    output = _tail(verdict.text) if verdict.text else result.output
    if verdict.success:
        return CompleteTask(**ids, output=output, exit_code=result.exit_code, usage=usage)
    retryable, reason = _retry_after_side_effects(item, verdict, verdict.reason)
    return FailTask(
        **ids,
        reason=_clip(reason),
        output=output,
        exit_code=result.exit_code,
        retryable=retryable,
        usage=usage,
    )


def _retry_after_side_effects(
    item: WorkItem, verdict: Verdict | None, reason: str
) -> tuple[bool, str]:
    """Retryable unless the agent already ran tools on a workspace that is not disposable;
    then the reason says why it was not retried, so the task's events do too."""
    if verdict is None or verdict.retryable(workspace_disposable=item.workspace_disposable):
        return True, reason
    return False, (
        f"{reason}; not retried: the agent already ran {verdict.tool_calls} tool call(s) that "
        "may have changed its workspace (submit with retry.workspace_disposable to allow)"
    )


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else text[-MAX_OUTPUT_CHARS:]


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
