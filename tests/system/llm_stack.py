"""Helpers for end-to-end tests of LLM agents: register, submit, watch a task."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from executor_ollama.ollama_double import OllamaDouble
from harness import wait_for_status
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent, SubmitTask
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.queries import AgentView, GetAgent, TaskView
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.bus import Bus

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
MODEL = "llama3.2:1b"
REPLY = "The quick brown fox jumps over the lazy dog."

MakeDouble = Callable[..., OllamaDouble]


def hold_in_memory(*doubles: OllamaDouble) -> None:
    """Load MODEL on each server for an hour. Tests that rely on proficiency ordering use
    it: the executor's start-up probe round may see one agent and not another (it races
    the registrations), and a probed, cold server ranks behind an unprobed one."""
    for double in doubles:
        double.loaded[MODEL] = time.time() + 3600


async def register(
    bus: Bus,
    name: str,
    double: OllamaDouble,
    kind: AgentType = AgentType.OLLAMA,
    capabilities: dict[str, float] | None = None,
    **spec: object,
) -> None:
    agent = AgentSpec(
        name=name,
        type=kind,
        endpoint=double.url,
        model=spec.pop("model", MODEL),
        capabilities=capabilities or {"chat": 1.0},
        **spec,
    )
    reply = await bus.send(RegisterAgent(spec=agent))
    assert reply.accepted, reply.reason


async def submit(bus: Bus, prompt: str = "Say something.", **options: object) -> UUID:
    options.setdefault("capabilities", ["chat"])
    reply = await bus.send(SubmitTask(prompt=prompt, **options))
    assert reply.accepted, reply.reason
    return UUID(reply.ids["task_id"])


async def get_agent(bus: Bus, name: str) -> AgentView:
    reply = await bus.ask(GetAgent(name=name))
    assert reply.status == "ok", reply.reason
    return AgentView.model_validate(reply.result)


async def finished(bus: Bus, task_id: UUID, timeout: float = 15) -> TaskView:
    return await wait_for_status(
        bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED, timeout=timeout
    )


@contextlib.asynccontextmanager
async def progress_lines(bus: Bus) -> AsyncIterator[list[tuple[float, ProgressLine]]]:
    lines: list[tuple[float, ProgressLine]] = []

    async def on_line(msg) -> None:  # type: ignore[no-untyped-def]
        lines.append((time.monotonic(), ProgressLine.model_validate_json(msg.data)))

    sub = await bus.nc.subscribe(f"{subjects.PROGRESS_PREFIX}.>", cb=on_line)
    try:
        yield lines
    finally:
        await sub.unsubscribe()
