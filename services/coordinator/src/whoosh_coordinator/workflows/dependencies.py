"""Plain task dependencies (`SubmitTask.depends_on`, `whoosh task submit --after ID`).

A task with dependencies waits, invisible to the scheduler (only queued tasks are
placed), until they all end. Then, in the same transaction as the end of the last one,
it is released to the queue, or skipped with the reason when one did not complete; a
skip ends the task, so what waits on it is skipped too, in the same save.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from whoosh_shared.contract.commands import RejectCode
from whoosh_shared.contract.enums import TaskStatus

from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.tasks.domain import Task

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler


class Dependencies:
    def __init__(self, handler: CommandHandler) -> None:
        self.handler = handler

    def at_submit(self, task: Task) -> list[Aggregate]:
        """Decide a new task at once when its dependencies have all ended already."""
        known: dict[str, str] = {}
        for dep in task.depends_on:
            known[dep] = self._status_of(dep)
        return self._decide(task, known)

    def on_task_end(self, ended: Task) -> list[Aggregate]:
        changed: dict[str, Task] = {str(ended.id): ended}
        todo = [ended]
        out: list[Aggregate] = []
        while todo:
            current = todo.pop()
            for view in self.handler.projection.with_status(TaskStatus.WAITING):
                waiting_id = str(view.id)
                if current.id not in view.depends_on or waiting_id in changed:
                    continue
                waiting = self.handler.load_task(view.id)
                if waiting.status != TaskStatus.WAITING.value:
                    continue
                statuses = {d: self._status_of(d, changed) for d in waiting.depends_on}
                if self._decide(waiting, statuses):
                    changed[waiting_id] = waiting
                    out.append(waiting)
                    if waiting.terminal:
                        todo.append(waiting)
        return out

    def _status_of(self, dep: str, changed: dict[str, Task] | None = None) -> str:
        if changed and dep in changed:
            return changed[dep].status
        view = self.handler.projection.tasks.get(UUID(dep))
        if view is not None:
            return view.status.value
        try:
            return self.handler.load_task(UUID(dep)).status
        except (Rejected, AggregateNotFoundError):
            raise Rejected(RejectCode.NOT_FOUND, f"depends on unknown task {dep}") from None

    @staticmethod
    def _decide(task: Task, statuses: dict[str, str]) -> list[Aggregate]:
        for dep, status in statuses.items():
            if TaskStatus(status).terminal and status != TaskStatus.COMPLETED.value:
                task.skip(reason=f"dependency {dep} {status.replace('_', ' ')}")
                return [task]
        if all(status == TaskStatus.COMPLETED.value for status in statuses.values()):
            task.release()
            return [task]
        return []
