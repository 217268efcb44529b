"""A mixed fleet end to end: an Ollama agent and a CLI agent offering the same capability,
each run by its own executor process. Capability work goes to both; pinning an agent type
keeps a task on that side."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from harness import eventually
from nats.js.errors import NotFoundError
from system.llm_stack import NO_CONFIG_FILE, REPLY, MakeDouble, finished, register, submit
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.runtime.bus import Bus

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def cli_executor(bus: Bus, spawn, nats_url: str, llm_system: object) -> AsyncIterator[None]:
    executor = spawn(
        "whoosh_executor_cli", "--nats", nats_url, "--executor-id", "cli-mixed", env=NO_CONFIG_FILE
    )
    await eventually(lambda: "executor ready" in executor.output(), timeout=20, what="executor")
    yield
    executor.stop()
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)


async def test_capability_work_runs_on_both_kinds_and_a_type_pin_holds(
    bus: Bus, cli_executor: None, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY)
    await register(bus, "llm-coder", double, capabilities={"code": 1.0}, max_concurrent=2)
    cli = AgentSpec(
        name="cli-coder",
        command=["sh", "-c", "cat >/dev/null; echo cli-done"],
        capabilities={"code": 1.0},
        max_concurrent=2,
    )
    assert (await bus.send(RegisterAgent(spec=cli))).accepted

    ran: Counter[str] = Counter()
    for _ in range(12):
        done = await finished(bus, await submit(bus, "write code", capabilities=["code"]))
        assert done.status is TaskStatus.COMPLETED, done.reason
        assert done.output == (REPLY if done.agent == "llm-coder" else "cli-done\n")
        ran[done.agent or ""] += 1
    assert set(ran) == {"llm-coder", "cli-coder"}

    for kind, agent in ((AgentType.CLI, "cli-coder"), (AgentType.OLLAMA, "llm-coder")):
        pinned = await finished(
            bus, await submit(bus, "write code", capabilities=["code"], agent_type=kind)
        )
        assert (pinned.status, pinned.agent) == (TaskStatus.COMPLETED, agent)
