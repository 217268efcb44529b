"""What each way a run can end reports to the coordinator."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from whoosh_executor_cli.local_process import Outcome, RunResult
from whoosh_executor_cli.profiles import AgentRun, profile_for
from whoosh_executor_cli.reporting import exit_reason, result_command
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CompleteTask, FailTask
from whoosh_shared.contract.work import WorkItem

ITEM = WorkItem(
    task_id=uuid4(),
    attempt=2,
    agent=AgentSpec(name="local", command=["my-agent", "--yes"]),
    prompt="do it",
    timeout_s=90,
)


def result(outcome: Outcome, exit_code: int | None = None, **kw: object) -> RunResult:
    fields: dict[str, object] = {
        "output": "out\n",
        "output_truncated": False,
        "last_stderr_line": "",
        "duration_s": 1.5,
        "lines": 1,
        "pid": 123,
    }
    fields.update(kw)
    return RunResult(outcome=outcome, exit_code=exit_code, **fields)  # type: ignore[arg-type]


def test_exit_zero_completes_with_output_and_duration() -> None:
    command = result_command(ITEM, result(Outcome.EXITED, 0))
    assert isinstance(command, CompleteTask)
    assert (command.task_id, command.attempt) == (ITEM.task_id, 2)
    assert command.output == "out\n"
    assert command.exit_code == 0
    assert command.usage.duration_s == 1.5


def test_non_zero_exit_is_a_retryable_failure_naming_the_last_stderr_line() -> None:
    command = result_command(ITEM, result(Outcome.EXITED, 7, last_stderr_line="fatal: no repo"))
    assert isinstance(command, FailTask)
    assert command.reason == "exit code 7: fatal: no repo"
    assert command.exit_code == 7
    assert command.retryable
    assert command.output == "out\n"


def test_every_report_carries_the_stderr_tail() -> None:
    tail = "[... 10 bytes of stderr dropped ...]\nwarning: disk low\n"
    done = result_command(ITEM, result(Outcome.EXITED, 0, stderr=tail))
    failed = result_command(ITEM, result(Outcome.EXITED, 2, stderr=tail))
    timed_out = result_command(ITEM, result(Outcome.TIMED_OUT, None, stderr=tail))
    assert isinstance(done, CompleteTask) and isinstance(failed, FailTask)
    assert done.stderr == failed.stderr == timed_out.stderr == tail


def test_a_signal_is_named() -> None:
    assert exit_reason(-9, "") == "killed by signal SIGKILL"
    assert exit_reason(2, "") == "exit code 2"


def test_start_failure_is_not_retryable_and_keeps_the_os_error() -> None:
    error = "cannot start 'my-agent --yes': No such file or directory"
    command = result_command(ITEM, result(Outcome.START_FAILED, output="", error=error))
    assert isinstance(command, FailTask)
    assert command.reason == error
    assert not command.retryable


def test_timeout_is_reported_as_timed_out() -> None:
    command = result_command(ITEM, result(Outcome.TIMED_OUT, -15))
    assert isinstance(command, FailTask)
    assert command.timed_out
    assert not command.retryable
    assert command.reason == "timed out after 90s"


def test_a_kill_for_cancellation_is_a_final_failure() -> None:
    command = result_command(ITEM, result(Outcome.CANCELLED, -15, cancel_reason="task cancelled"))
    assert isinstance(command, FailTask)
    assert not command.retryable
    assert not command.timed_out
    assert command.reason == "killed: task cancelled"


def test_an_overlong_stderr_line_still_makes_a_valid_reason() -> None:
    command = result_command(ITEM, result(Outcome.EXITED, 1, last_stderr_line="e" * 5000))
    assert isinstance(command, FailTask)
    assert len(command.reason) <= 2000


def claude_reader_after(recording: str) -> AgentRun:
    """A Claude Code reader fed a recorded stream, as the executor feeds stdout lines."""
    reader = profile_for("claude").start()
    path = Path(__file__).parent / "recordings" / recording
    for line in path.read_text().splitlines():
        reader.feed(line)
    return reader


def test_a_lost_connection_after_tools_ran_is_not_retried_unless_disposable() -> None:
    lost = result(Outcome.TRANSPORT_FAILED, None, error="ssh connection to h lost")
    command = result_command(ITEM, lost, reader=claude_reader_after("claude_truncated.jsonl"))
    assert isinstance(command, FailTask) and command.retryable is False
    assert command.reason.startswith("ssh connection to h lost; not retried")
    disposable = ITEM.model_copy(update={"workspace_disposable": True})
    again = result_command(disposable, lost, reader=claude_reader_after("claude_truncated.jsonl"))
    assert isinstance(again, FailTask) and again.retryable is True
    assert again.reason == "ssh connection to h lost"


def test_a_vendor_cli_is_judged_by_its_terminal_event_not_its_exit_code() -> None:
    reader = claude_reader_after("claude_success.jsonl")
    command = result_command(ITEM, result(Outcome.EXITED, 1), reader=reader)
    assert isinstance(command, CompleteTask) and command.exit_code == 1
    assert command.output.startswith("Fixed: `add` in calc.py")
    assert command.usage.cost_usd > 0 and command.usage.duration_s == 1.5
