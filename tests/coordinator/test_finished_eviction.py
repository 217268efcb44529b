"""Finished tasks leave the coordinator's memory past a bound, and stay answerable.

What the coordinator keeps must follow the work in hand, not the work ever done (issue
11: memory at 100k finished tasks within 2x of memory at 1k). The views of the oldest
finished tasks leave the projection, finished Task aggregates leave the working set, and
a query for such a task is answered from the store with the same view the projection
had. Replay with the same bound still equals the live projection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coordinator.core import Core
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import queries as q

KEPT = 5


@pytest.fixture
def small(store_url: str) -> Iterator[Core]:
    """A core whose projection keeps only KEPT finished tasks."""
    store = open_store(store_url)
    projection = FleetProjection(finished_kept=KEPT)
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    yield Core(store_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()


def test_oldest_finished_views_leave_memory_and_are_served_from_the_store(small: Core) -> None:
    small.register("a", max_concurrent=2)
    queries = QueryHandler(small.projection, small.store)
    done = []
    for _ in range(12):
        task_id = small.submit(agent="a")
        small.run_to_end(task_id)
        done.append(task_id)
    waiting = [small.submit(agent="a") for _ in range(3)]  # 2 assigned, 1 queued

    assert set(small.projection.tasks) == {*done[-KEPT:], *waiting}
    stats = small.projection.stats().tasks_by_status
    assert (stats["completed"], stats["assigned"], stats["queued"]) == (12, 2, 1)
    assert not any(t in small.handler.aggregates._memory for t in done)

    kept = queries.handle_raw(q.GetTask.SUBJECT, q.GetTask(task_id=done[-1]).model_dump_json())
    evicted = queries.handle_raw(q.GetTask.SUBJECT, q.GetTask(task_id=done[0]).model_dump_json())
    assert evicted.status == "ok" and kept.status == "ok"
    old = q.TaskView.model_validate(evicted.result)
    assert (old.id, old.status.value, old.output, old.agent) == (done[0], "completed", "done", "a")
    assert old.model_dump().keys() == q.TaskView.model_validate(kept.result).model_dump().keys()


def test_an_evicted_task_still_refuses_commands_and_keeps_a_late_report(small: Core) -> None:
    small.register("a", max_concurrent=1)
    task_id = small.submit(agent="a")
    attempt = small.task(task_id).attempt
    assert small.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t")).accepted
    assert small.send(c.CancelTask(task_id=task_id, reason="stop")).accepted
    for _ in range(KEPT + 1):  # push the cancelled task out of memory
        small.run_to_end(small.submit(agent="a"))
    assert task_id not in small.projection.tasks

    late = small.send(c.CompleteTask(task_id=task_id, attempt=attempt, output="late words"))
    assert late.accepted  # the executor's late report is kept on the stored task
    again = small.send(c.CancelTask(task_id=task_id))
    assert again.code == "bad_state"
    view = QueryHandler(small.projection, small.store)._stored_task(task_id)
    assert view is not None and (view.status.value, view.output) == ("cancelled", "late words")


def test_replay_with_the_same_bound_equals_the_live_projection(small: Core) -> None:
    for name in ("a", "b"):
        small.register(name, capabilities=["x"], max_concurrent=2)
    for i in range(30):
        small.submit(capabilities=["x"], retry=c.RetryPolicy(max_attempts=1 + i % 2))
        for view in small.projection.active():
            small.run_to_end(view.id, ok=i % 3 != 0)
    for _ in range(6):  # some in flight, some queued
        small.submit(capabilities=["x"])
    live = small.projection
    rebuilt = rebuild(small.store, finished_kept=KEPT)
    assert rebuilt.tasks == live.tasks
    assert rebuilt.stats() == live.stats()
    assert rebuilt.agents == live.agents
    assert len([t for t in live.tasks.values() if t.status.terminal]) == KEPT
    ended = live.stats().tasks_by_status
    assert ended["completed"] + ended["failed"] == 30 > KEPT


def test_the_queue_keeps_scheduling_order_as_tasks_come_back(small: Core) -> None:
    """Kept in order as tasks come and go (no sort per pass): higher priority first, then
    submission order, and a retried task goes back to its original place."""
    small.register("one", max_concurrent=1)
    first = small.submit(agent="one", retry=c.RetryPolicy(max_attempts=2))  # assigned
    low = [small.submit(agent="one", priority=2) for _ in range(2)]
    high = small.submit(agent="one", priority=9)
    assert [t.id for t in small.projection.queued()] == [high, *low]
    small.run_to_end(first, ok=False)  # retried: queued again, ahead of later submissions
    # the freed slot went to the head of the queue; the retry waits in its own place
    assert small.task(high).status.value == "assigned"
    assert [t.id for t in small.projection.queued()] == [first, *low]
    assert [t.id for t in small.projection.queued()] == [
        t.id for t in rebuild(small.store, finished_kept=KEPT).queued()
    ]
