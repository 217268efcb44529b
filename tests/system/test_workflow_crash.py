"""Durability of executions with real processes: the coordinator is killed (-9) right after
every stored transaction of a 6-step diamond of shell steps, restarted each time, and the
run still ends with every step run exactly once (one line in its marker file).

Each coordinator incarnation kills itself right after its first or its second committed
transaction (WHOOSH_FAULT_KILL_AFTER_SAVES, alternating 1 and 2), so crashes land between
consecutive stored transactions all along the run, including between a step's end and the
next steps' tasks (saved together). Always 1 would livelock: a crash before every reply
makes the executor resend the same report for ever, a fault no real crash pattern has.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from uuid import UUID

import pytest
from harness import ServiceProcess, eventually, wait_for_coordinator
from nats.js.errors import NotFoundError
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.runtime.bus import Bus

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
STEPS = ("a", "b", "c", "d", "e", "f")


def diamond(marks: Path) -> str:
    def step(sid: str, needs: list[str]) -> str:
        command = f"echo {sid} >> {marks}/{sid}.log; echo out-{sid}"
        return f"  {sid}: {{type: shell, needs: {needs}, command: '{command}'}}\n"

    return (
        "whoosh: workflow/v1\nname: crash-diamond\nsettings: {max_parallel: 3}\nsteps:\n"
        + step("a", [])
        + step("b", ["a"])
        + step("c", ["a"])
        + step("d", ["a"])
        + step("e", ["b", "c", "d"])
        + step("f", ["e"])
    )


def execution_status(store_url: str, execution_id: UUID) -> str:
    store = open_store(store_url)
    try:
        view = rebuild(store).workflows.executions.get(execution_id)
        return view.status if view else "missing"
    finally:
        store.close()


@pytest.mark.timeout(1200)
async def test_kill_9_after_every_transaction_runs_each_step_exactly_once(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    serve = ("whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url)
    first = spawn(*serve, env=NO_CONFIG_FILE)
    await wait_for_coordinator(bus)
    spec = AgentSpec(name="shell", command=["sh", "-s"], capabilities=["shell"], max_concurrent=3)
    assert (await bus.send(RegisterAgent(spec=spec))).accepted
    assert (await bus.send(w.CreateWorkflow(source=diamond(marks)))).accepted
    executor: ServiceProcess = spawn(
        "whoosh_executor_cli", "--nats", nats_url, "--executor-id", "crash-test",
        env=NO_CONFIG_FILE,
    )  # fmt: skip
    await eventually(lambda: "executor ready" in executor.output(), timeout=30, what="executor")
    reply = await bus.send(w.RunWorkflow(workflow="crash-diamond"))
    assert reply.accepted, reply.reason
    execution_id = UUID(reply.ids["execution_id"])
    first.kill()

    incarnations = 0
    try:
        while execution_status(sqlite_url, execution_id) == "running":
            incarnations += 1
            assert incarnations < 120, "the execution made no progress"
            kill_after = str(1 + incarnations % 2)
            proc = spawn(
                *serve, env={**NO_CONFIG_FILE, "WHOOSH_FAULT_KILL_AFTER_SAVES": kill_after}
            )
            deadline = time.monotonic() + 60
            while proc.proc is not None and proc.proc.poll() is None:
                assert time.monotonic() < deadline, "a coordinator saved nothing for 60 s"
                time.sleep(0.05)
        assert incarnations >= len(STEPS)  # group commits join some saves; still many crashes

        spawn(*serve, env=NO_CONFIG_FILE)
        await wait_for_coordinator(bus)
        view = w.ExecutionView.model_validate(
            (await bus.ask(w.GetExecution(execution_id=execution_id))).result
        )
        assert view.status == "succeeded", view
        for step in view.steps:
            assert step.status == "succeeded" and step.output == f"out-{step.id}\n"
            assert step.attempts == 1, step
        for sid in STEPS:
            assert (marks / f"{sid}.log").read_text() == f"{sid}\n", sid
    finally:
        executor.stop()
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)
