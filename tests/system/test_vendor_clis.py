"""Vendor coding CLIs end to end: fake `claude`, `codex` and `gemini` executables (replaying
recorded streams shaped as each CLI documents them) run on a real sshd host, through a
real coordinator and CLI executor. The task's events carry the CLI's verdict, usage and
cost, and a run that already used tools is not retried unless its workspace is disposable.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from executor_cli.sshd_server import SshdFactory, sshd_factory_fixture
from harness import ServiceProcess
from system.llm_stack import finished
from whoosh_shared.contract.commands import RegisterAgent, RetryPolicy, SubmitTask
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import TaskView
from whoosh_shared.runtime.bus import Bus

__all__ = ["sshd_factory_fixture"]  # the fixture, found here by pytest

pytestmark = pytest.mark.timeout(90)

FAKE_CLIS = Path(__file__).resolve().parent.parent / "executor_cli" / "fake_clis"


async def run_on(
    bus: Bus, sshd_factory: SshdFactory, cli: str, recording: str, **retry: object
) -> TaskView:
    """Register an agent running the fake `cli` that replays `recording`, run one task."""
    server = sshd_factory()
    name = f"{cli}-{recording.replace('_', '-')}"
    spec = server.agent(
        name, [str(FAKE_CLIS / cli)], cli=cli, env={"FAKE_CLI_RECORDING": recording}
    )
    assert (await bus.send(RegisterAgent(spec=spec))).accepted
    reply = await bus.send(
        SubmitTask(prompt="Fix the add bug in calc.py", agent=name, retry=RetryPolicy(**retry))
    )
    assert reply.accepted, reply.reason
    return await finished(bus, UUID(reply.ids["task_id"]), timeout=60)


async def test_claude_code_success_reports_its_answer_usage_and_cost(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(bus, sshd_factory, "claude", "success")
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output.startswith("Fixed: `add` in calc.py subtracted")
    usage = done.usage
    assert (usage.tokens_in, usage.tokens_out) == (12 + 2148 + 52110, 412)
    assert usage.cost_usd == pytest.approx(0.0421837) and usage.duration_s > 0


async def test_codex_success_answer_is_its_last_agent_message(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(bus, sshd_factory, "codex", "success")
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output == "Fixed `add` in calc.py (it subtracted); both tests pass now."
    assert (done.usage.tokens_in, done.usage.tokens_out) == (24763, 122)


async def test_a_run_that_used_tools_is_not_retried_and_says_why(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(bus, sshd_factory, "claude", "error_max_turns", max_attempts=3)
    assert done.status is TaskStatus.FAILED and done.attempt == 1
    assert "error_max_turns" in (done.reason or "")
    assert "not retried: the agent already ran" in (done.reason or "")
    assert done.usage.cost_usd == pytest.approx(0.0184512)


async def test_a_disposable_workspace_allows_the_retry(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(
        bus, sshd_factory, "claude", "error_max_turns", max_attempts=2, workspace_disposable=True
    )
    assert done.status is TaskStatus.FAILED and done.attempt == 2
    assert "gave up after 2 attempt(s)" in (done.reason or "")


async def test_a_failed_turn_without_side_effects_is_retried(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(bus, sshd_factory, "codex", "turn_failed", max_attempts=2)
    assert done.status is TaskStatus.FAILED and done.attempt == 2
    assert "turn failed: unexpected status 401 Unauthorized" in (done.reason or "")


async def test_without_a_terminal_event_the_exit_code_decides(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    done = await run_on(bus, sshd_factory, "gemini", "turn_limit", max_attempts=1)
    assert done.status is TaskStatus.FAILED and done.exit_code == 53
    assert "exit code 53 (turn limit exceeded)" in (done.reason or "")
