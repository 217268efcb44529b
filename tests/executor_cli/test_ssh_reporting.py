"""What a run over SSH reports: a failed transport is retryable, with its reason."""

from __future__ import annotations

from uuid import uuid4

from whoosh_executor_cli.reporting import result_command
from whoosh_executor_cli.run_result import Outcome, RunResult
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import FailTask
from whoosh_shared.contract.work import WorkItem

ITEM = WorkItem(
    task_id=uuid4(),
    attempt=1,
    agent=AgentSpec(name="remote", command=["claude", "-p"], host="ci@box"),
    prompt="p",
    timeout_s=60,
)


def result(outcome: Outcome, error: str | None) -> RunResult:
    return RunResult(
        outcome=outcome,
        exit_code=None,
        output="partial\n",
        output_truncated=False,
        last_stderr_line="",
        duration_s=2.0,
        lines=1,
        pid=77,
        error=error,
    )


def test_a_lost_connection_fails_the_attempt_retryably_with_its_reason() -> None:
    why = "ssh connection to ci@box:22 lost while the command ran (reset)"
    command = result_command(ITEM, result(Outcome.TRANSPORT_FAILED, why))
    assert isinstance(command, FailTask)
    assert command.retryable and command.reason == why
    assert command.output == "partial\n" and not command.timed_out


def test_a_refused_key_is_a_start_failure_that_is_not_retried() -> None:
    why = "ssh: authentication failed for ci@box:22 with ~/.ssh/id (Permission denied)"
    command = result_command(ITEM, result(Outcome.START_FAILED, why))
    assert isinstance(command, FailTask)
    assert not command.retryable and command.reason == why
