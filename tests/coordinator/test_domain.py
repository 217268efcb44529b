"""Aggregate rules, without any store: what each command may do in each state."""

from __future__ import annotations

import pytest
from coordinator.factories import NOW, new_agent, new_task
from whoosh_coordinator.rejection import Rejected
from whoosh_shared.contract.commands import RejectCode


def event_names(aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_happy_lifecycle_records_each_step() -> None:
    task, agent = new_task(), new_agent()
    task.assign(agent.id, agent.name)
    agent.take_slot(task.id, task.attempt)
    task.start(1, "exec-1")
    task.progress(1, "half way")
    task.complete(1, "out", 0, {"duration_s": 0.1})
    agent.release_slot(task.id)
    assert task.status == "completed"
    assert event_names(task) == [
        "Submitted",
        "Assigned",
        "Started",
        "Progressed",
        "Completed",
    ]
    assert event_names(agent) == ["Registered", "SlotTaken", "SlotReleased"]


def test_agent_never_gives_more_slots_than_max_concurrent() -> None:
    agent = new_agent(max_concurrent=2)
    first, second, third = new_task(), new_task(), new_task()
    agent.take_slot(first.id, 1)
    agent.take_slot(second.id, 1)
    with pytest.raises(Rejected) as info:
        agent.take_slot(third.id, 1)
    assert "max_concurrent=2" in info.value.reason


def test_disabled_agent_takes_no_work_and_release_is_idempotent() -> None:
    agent = new_agent()
    agent.disable("ops")
    with pytest.raises(Rejected, match="disabled"):
        agent.take_slot(new_task().id, 1)
    agent.release_slot(new_task().id)  # not held: records nothing
    assert event_names(agent) == ["Registered", "Disabled"]


def test_failed_attempt_requeues_until_the_policy_is_spent() -> None:
    task, agent = new_task(max_attempts=2), new_agent()
    task.assign(agent.id, agent.name)
    assert task.fail(1, "boom", "", 1, {}, retryable=True, now=NOW) is True
    assert task.status == "queued" and task.tried_agents == ["a1"]
    task.assign(agent.id, agent.name)
    assert task.attempt == 2
    assert task.fail(2, "boom", "", 1, {}, retryable=True, now=NOW) is False
    assert task.status == "failed"


def test_non_retryable_failure_is_final_at_once() -> None:
    task, agent = new_task(max_attempts=5), new_agent()
    task.assign(agent.id, agent.name)
    assert task.fail(1, "bad input", "", 2, {}, retryable=False, now=NOW) is False
    assert task.status == "failed"


def test_stale_attempt_report_is_rejected() -> None:
    task, agent = new_task(max_attempts=3), new_agent()
    task.assign(agent.id, agent.name)
    task.fail(1, "x", "", 1, {}, retryable=True, now=NOW)
    task.assign(agent.id, agent.name)
    with pytest.raises(Rejected) as info:
        task.complete(1, "late", 0, {})
    assert info.value.code is RejectCode.BAD_STATE
    assert "attempt 1 is stale" in info.value.reason


def test_cancel_of_finished_task_is_rejected_and_records_nothing() -> None:
    task, agent = new_task(), new_agent()
    task.assign(agent.id, agent.name)
    task.complete(1, "", 0, {})
    task.collect_events()
    with pytest.raises(Rejected, match="already completed"):
        task.cancel("too late", "me")
    assert task.collect_events() == []


def test_start_on_unassigned_task_is_rejected() -> None:
    with pytest.raises(Rejected, match="is queued"):
        new_task().start(1, "e")


def test_redelivered_attempt_may_start_again() -> None:
    task, agent = new_task(), new_agent()
    task.assign(agent.id, agent.name)
    task.start(1, "exec-a")
    task.start(1, "exec-b")
    assert task.status == "running"
