"""Which active tasks to send back to the queue: pure, with an injected clock.

A task is stuck when the agent holding it is unhealthy, or when it runs on an executor
that stopped heartbeating (or, once the monitor has listened long enough, one it never
heard from). After `grace_s` of being stuck it is due: the monitor fails that attempt
as retryable (FailTask), the coordinator queues the task again and the scheduler
places it on a healthy agent. The coordinator rejects a stale attempt, so a late
decision here can never touch a retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

from whoosh_shared.contract.enums import TaskStatus


@dataclass(frozen=True)
class HeldTask:
    task_id: UUID
    attempt: int
    status: TaskStatus
    agent: str | None
    executor_id: str | None


@dataclass(frozen=True)
class Requeue:
    task_id: UUID
    attempt: int
    reason: str


@dataclass
class Requeuer:
    grace_s: float
    clock: Callable[[], float]
    _since: dict[tuple[UUID, int], float] = field(default_factory=dict)

    def due(
        self,
        tasks: Iterable[HeldTask],
        unhealthy: dict[str, str],
        dead_executors: set[str],
        live_executors: set[str],
        judge_unknown: bool,
    ) -> list[Requeue]:
        now = self.clock()
        stuck: dict[tuple[UUID, int], str] = {}
        for task in tasks:
            why = self._why_stuck(task, unhealthy, dead_executors, live_executors, judge_unknown)
            if why is not None:
                stuck[(task.task_id, task.attempt)] = why
        for key in list(self._since):
            if key not in stuck:
                del self._since[key]
        due = []
        for key, why in stuck.items():
            since = self._since.setdefault(key, now)
            if now - since >= self.grace_s:
                due.append(Requeue(key[0], key[1], why))
                self._since[key] = now  # if the FailTask is lost, ask again one grace later
        return due

    @staticmethod
    def _why_stuck(
        task: HeldTask,
        unhealthy: dict[str, str],
        dead: set[str],
        live: set[str],
        judge_unknown: bool,
    ) -> str | None:
        if task.agent is not None and task.agent in unhealthy:
            return f"agent '{task.agent}' is unhealthy: {unhealthy[task.agent]}"
        if task.status is TaskStatus.RUNNING and task.executor_id:
            if task.executor_id in dead:
                return f"executor '{task.executor_id}' stopped sending heartbeats"
            if judge_unknown and task.executor_id not in live:
                return f"executor '{task.executor_id}' sends no heartbeats"
        return None
