"""The monitor end to end: real coordinator, executors and monitor processes over NATS.

A dead executor or a dead LLM server takes its agents out of rotation (health events
from the monitor), new work goes elsewhere or waits, a task stuck on the dead agent is
re-queued and completes, and the agents come back when their executor or server does.
The windows waited for are the configured detection window plus slack for a loaded
machine: the detection time itself is measured by benchmarks, not asserted here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from harness import ServiceProcess, eventually, stream_envelopes, wait_for_coordinator
from nats.js.errors import NotFoundError
from system.llm_stack import MakeDouble, finished, register
from system.llm_stack import submit as submit_llm
from system.monitor_stack import (
    FAST_HEARTBEATS,
    NO_CONFIG_FILE,
    SLACK_S,
    WINDOW_S,
    agent,
    start_monitor,
    wait_health,
)
from system.test_executor_cli import SHELL_AGENT, get_task, submit, wait_for_status
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.runtime.bus import Bus

DETECTED_WITHIN = WINDOW_S + SLACK_S


@pytest.fixture
async def cli_stack(bus: Bus, spawn, nats_url: str, sqlite_url: str) -> AsyncIterator[None]:
    spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )
    await wait_for_coordinator(bus)
    assert (await bus.send(RegisterAgent(spec=SHELL_AGENT))).accepted
    try:
        yield
    finally:
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)


async def start_cli_executor(spawn, nats_url: str, executor_id: str) -> ServiceProcess:
    env = {**NO_CONFIG_FILE, **FAST_HEARTBEATS, "WHOOSH__EXECUTOR__ACK_WAIT_S": "300"}
    proc: ServiceProcess = spawn(
        "whoosh_executor_cli", "--nats", nats_url, "--executor-id", executor_id, env=env
    )
    await eventually(lambda: "executor ready" in proc.output(), timeout=20, what=executor_id)
    return proc


async def test_a_dead_executor_takes_its_agents_out_until_one_returns_and_its_task_reruns(
    bus: Bus, spawn, nats_url: str, cli_stack: None
) -> None:
    first = await start_cli_executor(spawn, nats_url, "cli-a")
    monitor = await start_monitor(spawn, nats_url)
    await eventually(lambda: '"executor_id": "cli-a"' in monitor.output(), what="a heartbeat")
    warmup = await submit(bus, "echo warm")
    await wait_for_status(bus, warmup, TaskStatus.COMPLETED)
    stuck = await submit(bus, "sleep 600")
    await wait_for_status(bus, stuck, TaskStatus.RUNNING)

    first.kill()  # kill -9: no goodbye, its work message stays unacked (ack_wait 300 s)
    down = await wait_health(bus, "shell", healthy=False, timeout=DETECTED_WITHIN)
    assert "no heartbeat from any cli executor" in (down.health_reason or "")
    waiting = await submit(bus, "echo after")
    # the stuck attempt is failed by the monitor and the task queued again, not run
    requeued = await wait_for_status(bus, stuck, TaskStatus.QUEUED, timeout=DETECTED_WITHIN)
    assert "re-queued by the monitor" in (requeued.reason or "")
    assert (await get_task(bus, waiting)).status is TaskStatus.QUEUED

    await start_cli_executor(spawn, nats_url, "cli-b")
    await wait_health(bus, "shell", healthy=True, timeout=DETECTED_WITHIN)
    done = await wait_for_status(bus, waiting, TaskStatus.COMPLETED)
    assert done.executor_id == "cli-b"
    rerun = await wait_for_status(bus, stuck, TaskStatus.RUNNING)
    assert (rerun.attempt, rerun.executor_id) == (2, "cli-b")

    changes = [
        (e.data["healthy"], e.data["actor"])
        for e in await stream_envelopes(bus.js)
        if e.type == "AgentHealthChanged"
    ]
    assert changes == [(False, "monitor"), (True, "monitor")]
    assert "agent unhealthy" in monitor.output()


@pytest.fixture
def executor_env() -> dict[str, str]:
    return dict(FAST_HEARTBEATS)


async def test_a_dead_llm_server_is_out_of_rotation_and_its_work_goes_elsewhere(
    bus: Bus, spawn, nats_url: str, llm_system: ServiceProcess, make_double: MakeDouble
) -> None:
    gone, other = make_double(), make_double()
    await register(bus, "a", gone)
    await register(bus, "b", other)
    await start_monitor(spawn, nats_url)

    gone.stop()
    down = await wait_health(bus, "a", healthy=False, timeout=DETECTED_WITHIN)
    assert "server not answering" in (down.health_reason or "")
    for _ in range(3):
        task = await finished(bus, await submit_llm(bus))
        assert (task.status, task.agent) == (TaskStatus.COMPLETED, "b")

    gone.start()  # the same port again
    await wait_health(bus, "a", healthy=True, timeout=DETECTED_WITHIN)
    pinned = await finished(bus, await submit_llm(bus, agent="a"))
    assert (pinned.status, pinned.agent) == (TaskStatus.COMPLETED, "a")
    assert (await agent(bus, "b")).healthy
