"""Command handling against real stores (SQLite file and PostgreSQL): accepted commands
land as events, rejected ones name the problem and leave the store untouched."""

from __future__ import annotations

import json
import time
from uuid import uuid4

import pytest
from coordinator.core import Core
from whoosh_coordinator.replay import rebuild
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec, AgentUpdate
from whoosh_shared.contract.enums import TaskStatus


def test_submitted_task_is_assigned_run_and_completed(core: Core) -> None:
    core.register("local", capabilities=["shell"], max_concurrent=2)
    task_id = core.submit(capabilities=["shell"])
    assert core.task(task_id).status is TaskStatus.ASSIGNED
    assert core.task(task_id).agent == "local"
    assert core.run_to_end(task_id).accepted
    view = core.task(task_id)
    assert view.status is TaskStatus.COMPLETED and view.output == "done"
    assert core.projection.agent_by_name("local").in_flight == []


def test_failed_task_is_retried_on_another_agent(core: Core) -> None:
    core.register("first", capabilities=["x"])
    core.register("second", capabilities=["x"])
    task_id = core.submit(capabilities=["x"], retry=c.RetryPolicy(max_attempts=2))
    first_agent = core.task(task_id).agent
    core.run_to_end(task_id, ok=False)
    view = core.task(task_id)
    assert view.status is TaskStatus.ASSIGNED and view.attempt == 2
    assert view.agent != first_agent and view.tried_agents == [first_agent]
    core.run_to_end(task_id, ok=False)
    view = core.task(task_id)
    assert view.status is TaskStatus.FAILED and "gave up after 2 attempt(s)" in view.reason


def test_queue_waits_for_a_free_slot_and_honours_priority(core: Core) -> None:
    core.register("one", max_concurrent=1)
    running = core.submit()
    low = core.submit(priority=2)
    high = core.submit(priority=9)
    assert core.task(low).status is TaskStatus.QUEUED
    core.run_to_end(running)
    assert core.task(high).status is TaskStatus.ASSIGNED
    assert core.task(low).status is TaskStatus.QUEUED


def test_cancel_releases_the_slot_for_the_next_task(core: Core) -> None:
    core.register("one")
    first = core.submit()
    second = core.submit()
    assert core.send(c.CancelTask(task_id=first)).accepted
    assert core.task(first).status is TaskStatus.CANCELLED
    assert core.task(second).status is TaskStatus.ASSIGNED


def test_overdue_task_is_timed_out_by_the_coordinator(core: Core) -> None:
    core.register("one")
    task_id = core.submit(timeout_s=0.001)
    time.sleep(0.01)
    assert core.assigner.time_out_overdue() == 1
    assert core.task(task_id).status is TaskStatus.TIMED_OUT
    assert core.projection.agent_by_name("one").in_flight == []


def test_executor_timeout_report_ends_timed_out_without_retry(core: Core) -> None:
    core.register("one")
    task_id = core.submit(retry=c.RetryPolicy(max_attempts=3))
    reply = core.send(
        c.FailTask(
            task_id=task_id, attempt=1, reason="timed out after 1s", timed_out=True,
            stderr="still compiling\n",
        )
    )  # fmt: skip
    assert reply.accepted and core.task(task_id).status is TaskStatus.TIMED_OUT
    assert core.task(task_id).stderr == "still compiling\n"  # kept with what it had done


def test_update_enable_disable_agent(core: Core) -> None:
    core.register("one", capabilities=["a"])
    changes = AgentUpdate(capabilities=["a", "b"], max_concurrent=3)
    assert core.send(c.UpdateAgent(name="one", changes=changes)).accepted
    assert core.send(c.DisableAgent(name="one")).accepted
    task_id = core.submit(capabilities=["b"])
    assert core.task(task_id).status is TaskStatus.QUEUED  # disabled: waits
    assert core.send(c.EnableAgent(name="one")).accepted
    assert core.task(task_id).status is TaskStatus.ASSIGNED
    assert core.projection.agent_by_name("one").spec.max_concurrent == 3


BAD_COMMANDS = [
    (lambda: c.EnableAgent(name="ghost"), "not_found", "unknown agent 'ghost'"),
    (lambda: c.SubmitTask(prompt="x", agent="ghost"), "not_found", "unknown agent 'ghost'"),
    (
        lambda: c.SubmitTask(prompt="x", capabilities=["gpu"]),
        "no_capable_agent",
        "unknown capability 'gpu'",
    ),
    (lambda: c.SubmitTask(prompt="x", model="llama3"), "no_capable_agent", "model=llama3"),
    (lambda: c.StartTask(task_id=uuid4(), attempt=1, executor_id="e"), "not_found", "unknown task"),
    (lambda: c.CancelTask(task_id=uuid4()), "not_found", "unknown task"),
    (
        lambda: c.RegisterAgent(spec=AgentSpec(name="local", command=["cat"])),
        "duplicate",
        "agent 'local' already exists",
    ),
    (lambda: c.UpdateAgent(name="local", changes=AgentUpdate()), "invalid", "no field"),
]


@pytest.mark.parametrize(("make", "code", "reason"), BAD_COMMANDS)
def test_bad_commands_are_rejected_and_write_nothing(core: Core, make, code, reason) -> None:
    core.register("local", capabilities=["shell"])
    before = core.events()
    reply = core.send(make())
    assert (reply.status, reply.code) == ("rejected", code)
    assert reason in reply.reason
    assert core.events() == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x", "priority": 11}, "priority: Input should be less than or equal to 10"),
        ({"prompt": "x", "priority": 0}, "priority"),
        ({"prompt": "x", "timeout_s": -1}, "timeout_s"),
        ({"prompt": "x", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"prompt": 5}, "prompt: Input should be a valid string"),
    ],
)
def test_malformed_submissions_are_rejected_with_the_field_named(
    core: Core, body: dict, reason: str
) -> None:
    core.register("local")
    before = core.events()
    reply = core.handler.handle_raw(c.SubmitTask.SUBJECT, json.dumps(body).encode())
    assert reply.code == "invalid" and reason in reply.reason
    assert core.events() == before


def test_non_json_and_unknown_subject_are_rejected(core: Core) -> None:
    assert "Invalid JSON" in core.handler.handle_raw(c.SubmitTask.SUBJECT, b"{nope").reason
    assert "unknown command" in core.handler.handle_raw("whoosh.cmd.nope", b"{}").reason


def test_cancel_of_finished_task_is_rejected(core: Core) -> None:
    core.register("local")
    task_id = core.submit()
    core.run_to_end(task_id)
    before = core.events()
    reply = core.send(c.CancelTask(task_id=task_id))
    assert reply.code == "bad_state" and "already completed" in reply.reason
    assert core.events() == before


def test_replay_rebuilds_projections_equal_to_live_ones(core: Core) -> None:
    for name in ("a", "b", "c"):
        core.register(name, capabilities=["x", name], max_concurrent=4)
    outcome = {core.submit(capabilities=["x"], priority=1 + i % 10): i % 6 for i in range(300)}
    while active := core.projection.active():
        for view in active:
            if outcome[view.id] == 0:
                core.send(c.CancelTask(task_id=view.id))
            else:
                core.run_to_end(view.id, ok=outcome[view.id] != 1)
    for _ in range(5):  # leave some work in flight and queued
        core.submit(capabilities=["a"])
    live = core.projection
    rebuilt = rebuild(core.store)
    assert rebuilt.position == live.position > 1000
    assert rebuilt.stats() == live.stats()
    assert rebuilt.tasks == live.tasks
    assert rebuilt.agents == live.agents
    assert sum(view.stderr == "oops\n" for view in rebuilt.tasks.values()) == 50
    statuses = live.stats().tasks_by_status
    assert statuses == {
        "waiting": 0,
        "queued": 1,
        "assigned": 4,
        "running": 0,
        "completed": 200,
        "failed": 50,
        "cancelled": 50,
        "timed_out": 0,
        "skipped": 0,
    }


def test_agent_with_an_endpoint_that_is_not_a_url_is_rejected(core: Core) -> None:
    body = {"spec": {"name": "gpu", "type": "ollama", "endpoint": "gpu1:11434", "model": "m"}}
    reply = core.handler.handle_raw(c.RegisterAgent.SUBJECT, json.dumps(body).encode())
    assert reply.code == "invalid" and "is not an http(s) URL" in reply.reason
    assert core.events() == 0
