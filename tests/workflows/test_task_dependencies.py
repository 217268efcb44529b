"""Plain task dependencies: a task waits, invisible to the scheduler, until what it
depends on ends; then it is queued, or skipped with the reason (and so is what waits on
it), all in the transaction of the dependency's end."""

from __future__ import annotations

from uuid import uuid4

from coordinator.core import Core
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.enums import TaskStatus


def test_a_task_waits_then_queues_when_its_dependencies_complete(core: Core) -> None:
    core.register("a1", max_concurrent=4)
    first = core.submit(prompt="one")
    second = core.submit(prompt="two")
    after = core.submit(prompt="three", depends_on=[first, second])
    assert core.task(after).status is TaskStatus.WAITING
    assert core.task(after).depends_on == [first, second]
    assert core.projection.count(TaskStatus.QUEUED) == 0  # the scheduler sees nothing
    core.run_to_end(first)
    assert core.task(after).status is TaskStatus.WAITING
    core.run_to_end(second)
    assert core.task(after).status is TaskStatus.ASSIGNED
    core.run_to_end(after)
    assert core.task(after).status is TaskStatus.COMPLETED


def test_a_failed_dependency_skips_the_chain_with_the_reason(core: Core) -> None:
    core.register("a1", max_concurrent=4)
    first = core.submit(prompt="one", retry=c.RetryPolicy(max_attempts=1))
    middle = core.submit(prompt="two", depends_on=[first])
    last = core.submit(prompt="three", depends_on=[middle])
    other = core.submit(prompt="four")
    core.run_to_end(first, ok=False)
    assert core.task(middle).status is TaskStatus.SKIPPED
    assert core.task(middle).reason == f"dependency {first} failed"
    assert core.task(last).status is TaskStatus.SKIPPED
    assert core.task(last).reason == f"dependency {middle} skipped"
    assert core.task(other).status is TaskStatus.ASSIGNED


def test_dependencies_already_ended_decide_at_submit(core: Core) -> None:
    core.register("a1", max_concurrent=4)
    done = core.submit(prompt="one")
    core.run_to_end(done)
    now = core.submit(prompt="two", depends_on=[done])
    assert core.task(now).status is TaskStatus.ASSIGNED
    cancelled = core.submit(prompt="three")
    assert core.send(c.CancelTask(task_id=cancelled)).accepted
    never = core.submit(prompt="four", depends_on=[cancelled])
    assert core.task(never).status is TaskStatus.SKIPPED
    assert core.task(never).reason == f"dependency {cancelled} cancelled"
    unknown = uuid4()
    reply = core.send(c.SubmitTask(prompt="five", depends_on=[unknown]))
    assert reply.code == "not_found" and str(unknown) in (reply.reason or "")


def test_a_waiting_task_can_be_cancelled(core: Core) -> None:
    core.register("a1")
    first = core.submit(prompt="one")
    waiting = core.submit(prompt="two", depends_on=[first])
    assert core.send(c.CancelTask(task_id=waiting)).accepted
    assert core.task(waiting).status is TaskStatus.CANCELLED
    core.run_to_end(first)
    assert core.task(waiting).status is TaskStatus.CANCELLED
