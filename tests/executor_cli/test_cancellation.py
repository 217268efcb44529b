"""Relayed TaskCancelled / TaskTimedOut events stop the matching runs here, and only those."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from whoosh_executor_cli.local_process import LocalProcess
from whoosh_executor_cli.running import AttemptRun
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.running_attempts import RunningAttempts, StopCause, stop_for_event


def run_of(task_id: UUID, attempt: int = 1) -> AttemptRun:
    item = WorkItem(
        task_id=task_id,
        attempt=attempt,
        agent=AgentSpec(name="local", command=["true"]),
        prompt="p",
        timeout_s=10,
    )
    return AttemptRun(item, LocalProcess(item.agent.command))


def envelope(task_id: UUID, type_: str, data: dict[str, object]) -> bytes:
    return (
        EventEnvelope(
            notification_id=7,
            aggregate_type="task",
            aggregate_id=task_id,
            version=5,
            type=type_,
            timestamp=datetime.now(UTC),
            data=data,
        )
        .model_dump_json()
        .encode()
    )


def test_cancelled_event_stops_every_attempt_of_its_task_only() -> None:
    running = RunningAttempts()
    mine, other = run_of(uuid4()), run_of(uuid4())
    assert running.add(mine) and running.add(other)
    stopped = stop_for_event(
        running, envelope(mine.item.task_id, "TaskCancelled", {"reason": "user changed mind"})
    )
    assert stopped == 1
    assert mine.stop_cause is StopCause.CANCELLED
    assert mine.process.cancelled
    assert other.stop_cause is None and not other.process.cancelled


def test_timed_out_event_stops_only_its_attempt() -> None:
    running = RunningAttempts()
    task_id = uuid4()
    old, current = run_of(task_id, 1), run_of(task_id, 2)
    running.add(old)
    running.add(current)
    stop_for_event(running, envelope(task_id, "TaskTimedOut", {"attempt": 2, "reason": "late"}))
    assert current.stop_cause is StopCause.TIMED_OUT
    assert old.stop_cause is None


def test_an_attempt_failed_elsewhere_stops_that_attempt_only() -> None:
    # The monitor re-queued attempt 2 (its agent went unhealthy): the run here is wasted.
    running = RunningAttempts()
    task_id = uuid4()
    old, current = run_of(task_id, 1), run_of(task_id, 2)
    running.add(old)
    running.add(current)
    data = {"attempt": 2, "reason": "agent unhealthy: no heartbeat", "agent_name": "local"}
    assert stop_for_event(running, envelope(task_id, "TaskAttemptFailed", data)) == 1
    assert current.stop_cause is StopCause.SUPERSEDED and current.process.cancelled
    assert old.stop_cause is None


def test_other_events_and_garbage_are_ignored() -> None:
    running = RunningAttempts()
    run = run_of(uuid4())
    running.add(run)
    assert (
        stop_for_event(
            running, envelope(run.item.task_id, "TaskProgressed", {"attempt": 1, "message": "m"})
        )
        == 0
    )
    assert stop_for_event(running, b"not json") == 0
    assert stop_for_event(running, envelope(run.item.task_id, "NoSuchEvent", {})) == 0
    assert run.stop_cause is None


def test_the_same_attempt_is_registered_once() -> None:
    running = RunningAttempts()
    task_id = uuid4()
    first, copy = run_of(task_id), run_of(task_id)
    assert running.add(first)
    assert not running.add(copy)
    running.remove(copy)  # removing a copy that was never registered leaves the original
    assert running.of_task(task_id) == [first]
