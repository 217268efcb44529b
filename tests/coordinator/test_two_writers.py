"""Two coordinators' handlers on one store: remembered aggregates may go stale, and every
decision taken on a stale copy is either refused by the store or confirmed from it."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import TaskStatus


def handler(store_url: str) -> CommandHandler:
    store = open_store(store_url)
    projection = FleetProjection()
    return CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)


@pytest.fixture
def pair(store_url: str) -> Iterator[tuple[CommandHandler, CommandHandler]]:
    a, b = handler(store_url), handler(store_url)
    yield a, b
    a.store.close()
    b.store.close()


def accepted(reply: c.CommandReply) -> c.CommandReply:
    assert reply.accepted, reply.reason
    return reply


def test_stale_agent_slot_is_not_given_twice(pair) -> None:
    a, b = pair
    accepted(a.handle(c.RegisterAgent(spec=AgentSpec(name="solo", command=["cat"]))))
    b.handle(c.DisableAgent(name="solo"))  # b now remembers the agent...
    b.handle(c.EnableAgent(name="solo"))
    first = accepted(a.handle(c.SubmitTask(prompt="one")))  # ...and a takes its only slot
    second = accepted(b.handle(c.SubmitTask(prompt="two")))
    Follower(b.store, b.projection).catch_up()
    assert b.projection.tasks[UUID(first.ids["task_id"])].status is TaskStatus.ASSIGNED
    assert b.projection.tasks[UUID(second.ids["task_id"])].status is TaskStatus.QUEUED
    assert len(b.projection.agent_by_name("solo").in_flight) == 1


def test_stale_accept_is_refused_by_the_store_and_stale_reject_is_confirmed(pair) -> None:
    a, b = pair
    accepted(a.handle(c.RegisterAgent(spec=AgentSpec(name="w", command=["cat"]))))
    task_id = UUID(accepted(a.handle(c.SubmitTask(prompt="x"))).ids["task_id"])
    accepted(b.handle(c.ReportProgress(task_id=task_id, attempt=1, message="b remembers it")))
    accepted(a.handle(c.CancelTask(task_id=task_id)))
    late = b.handle(c.StartTask(task_id=task_id, attempt=1, executor_id="e"))
    assert late.code == "bad_state" and "cancelled" in late.reason


def test_reject_on_stale_memory_is_rechecked_against_the_store(pair) -> None:
    a, b = pair
    accepted(a.handle(c.RegisterAgent(spec=AgentSpec(name="w", command=["cat"]))))
    task_id = UUID(accepted(a.handle(c.SubmitTask(prompt="x"))).ids["task_id"])
    accepted(b.handle(c.ReportProgress(task_id=task_id, attempt=1, message="b remembers it")))
    accepted(a.handle(c.FailTask(task_id=task_id, attempt=1, reason="boom")))  # back to queue
    a.handle(c.DisableAgent(name="w"))
    a.handle(c.EnableAgent(name="w"))
    Assigner(a, timeout_grace_s=0).assign_pending()  # attempt 2, known only to the store
    assert accepted(b.handle(c.StartTask(task_id=task_id, attempt=2, executor_id="e")))


def test_a_task_ended_on_a_stale_agent_copy_still_releases_its_slot(pair) -> None:
    a, b = pair
    spec = AgentSpec(name="duo", command=["cat"], max_concurrent=2)
    accepted(a.handle(c.RegisterAgent(spec=spec)))
    b.handle(c.DisableAgent(name="duo"))  # b remembers the agent with both slots free...
    b.handle(c.EnableAgent(name="duo"))
    task_id = UUID(accepted(a.handle(c.SubmitTask(prompt="x"))).ids["task_id"])  # ...a takes one
    accepted(b.handle(c.StartTask(task_id=task_id, attempt=1, executor_id="e")))
    accepted(b.handle(c.CompleteTask(task_id=task_id, attempt=1, output="done")))
    Follower(b.store, b.projection).catch_up()
    assert b.projection.tasks[task_id].status is TaskStatus.COMPLETED
    assert b.projection.agent_by_name("duo").in_flight == []  # the slot came back


def test_a_submit_that_keeps_losing_races_for_the_agent_is_queued_not_refused(
    pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Placing a task in its submit transaction is an optimisation: once the submit lost
    two races for the agent to another coordinator, the task is saved queued and the
    scheduling pass places it (under load, retrying the placement could exhaust the
    retries and refuse the submit itself: seen with two coordinators at 32 in flight)."""
    from eventsourcing.persistence import IntegrityError
    from whoosh_coordinator.agents.domain import Agent
    from whoosh_coordinator.assignment import Assigner

    a, _ = pair
    spec = AgentSpec(name="two", command=["cat"], max_concurrent=2)
    accepted(a.handle(c.RegisterAgent(spec=spec)))
    save, lost = a.store.save, []

    def rival_wins_the_agent(*aggregates, **kwargs):
        if any(isinstance(x, Agent) for x in aggregates) and len(lost) < 2:
            lost.append(1)
            raise IntegrityError("another coordinator saved this agent first")
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(a.store, "save", rival_wins_the_agent)
    task_id = UUID(accepted(a.handle(c.SubmitTask(prompt="x"))).ids["task_id"])
    assert len(lost) == 2
    assert a.projection.tasks[task_id].status is TaskStatus.QUEUED
    assert Assigner(a, timeout_grace_s=0).assign_pending() == 1
    assert a.projection.tasks[task_id].status is TaskStatus.ASSIGNED
