"""Which held tasks go back to the queue, and when: pure, on a hand-moved clock."""

from __future__ import annotations

from uuid import uuid4

from monitor.clock import FakeClock
from whoosh_monitor.requeue import HeldTask, Requeue, Requeuer
from whoosh_shared.contract.enums import TaskStatus

T1, T2 = uuid4(), uuid4()


def held(task_id=T1, attempt=1, status=TaskStatus.RUNNING, agent="a", executor="cli-1"):
    return HeldTask(task_id, attempt, status, agent, executor)


def test_a_task_on_an_unhealthy_agent_is_due_after_the_grace_period_only() -> None:
    clock = FakeClock()
    requeuer = Requeuer(grace_s=10, clock=clock)
    sick = {"a": "no heartbeat"}
    assert requeuer.due([held()], sick, set(), {"cli-1"}, judge_unknown=True) == []
    clock.advance(9.9)
    assert requeuer.due([held()], sick, set(), {"cli-1"}, judge_unknown=True) == []
    clock.advance(0.1)
    assert requeuer.due([held()], sick, set(), {"cli-1"}, judge_unknown=True) == [
        Requeue(T1, 1, "agent 'a' is unhealthy: no heartbeat")
    ]
    assert requeuer.due([held()], sick, set(), {"cli-1"}, judge_unknown=True) == []  # asked


def test_recovery_within_the_grace_period_resets_it() -> None:
    clock = FakeClock()
    requeuer = Requeuer(grace_s=10, clock=clock)
    requeuer.due([held()], {"a": "x"}, set(), set(), judge_unknown=False)
    clock.advance(8)
    assert requeuer.due([held()], {}, set(), {"cli-1"}, judge_unknown=True) == []
    clock.advance(8)
    assert requeuer.due([held()], {"a": "x"}, set(), set(), judge_unknown=False) == []


def test_a_running_task_on_a_dead_or_silent_executor_is_due() -> None:
    clock = FakeClock()
    requeuer = Requeuer(grace_s=0, clock=clock)
    tasks = [held(T1, executor="gone"), held(T2, executor="never-heard")]
    due = requeuer.due(tasks, {}, {"gone"}, {"cli-1"}, judge_unknown=True)
    assert [(d.task_id, d.reason) for d in due] == [
        (T1, "executor 'gone' stopped sending heartbeats"),
        (T2, "executor 'never-heard' sends no heartbeats"),
    ]


def test_unknown_executors_are_not_judged_before_the_monitor_listened_long_enough() -> None:
    requeuer = Requeuer(grace_s=0, clock=FakeClock())
    assert requeuer.due([held(executor="x")], {}, set(), set(), judge_unknown=False) == []


def test_an_assigned_task_waits_for_its_agent_not_for_an_executor() -> None:
    requeuer = Requeuer(grace_s=0, clock=FakeClock())
    task = held(status=TaskStatus.ASSIGNED, executor=None)
    assert requeuer.due([task], {}, {"cli-1"}, set(), judge_unknown=True) == []
