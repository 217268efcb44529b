"""`task_end_listeners`: what a task's end causes is stored with the task's last event."""

from __future__ import annotations

from coordinator.core import Core
from whoosh_coordinator.tasks.domain import Task
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.enums import TaskStatus


def _follow_up(ended: list[Task]):
    def listener(task: Task) -> list[Task]:
        ended.append(task)
        if task.origin:  # a follow-up's own end causes nothing more
            return []
        follow = Task(
            prompt=f"after {task.id}",
            priority=5,
            capabilities=[],
            agent_type=None,
            model=None,
            agent=None,
            timeout_s=60.0,
            retry={},
            actor="system",
            origin={"kind": "test", "id": str(task.id)},
        )
        return [follow]

    return listener


def test_a_listener_saves_its_aggregates_in_the_ending_commit(core: Core) -> None:
    ended: list[Task] = []
    core.handler.task_end_listeners.append(_follow_up(ended))
    core.register("local", max_concurrent=1)
    task_id = core.submit(retry=c.RetryPolicy(max_attempts=2))
    core.run_to_end(task_id, ok=False)  # retried: not an end, the listener is not called
    assert ended == [] and core.task(task_id).status is TaskStatus.ASSIGNED
    core.run_to_end(task_id)
    assert [t.id for t in ended] == [task_id]
    follow_ups = [t for t in core.projection.tasks.values() if t.origin]
    assert len(follow_ups) == 1 and follow_ups[0].origin == {"kind": "test", "id": str(task_id)}


def test_a_failing_listener_leaves_the_task_unended(core: Core) -> None:
    """Atomic: if what the end causes cannot be decided, the end is not stored either."""

    def broken(task: Task) -> list[Task]:
        raise RuntimeError("cannot decide")

    core.handler.task_end_listeners.append(broken)
    core.register("local", max_concurrent=1)
    task_id = core.submit()
    before = core.events()
    reply = core.run_to_end(task_id)
    assert not reply.accepted and reply.code == c.RejectCode.INTERNAL
    assert core.events() == before + 1  # only StartTask's event
    assert core.task(task_id).status is TaskStatus.RUNNING
