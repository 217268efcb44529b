"""The last output lines of the tasks that sent some most recently, kept by the event hub.

Why: live output is ephemeral (core NATS), and a subscriber often learns a task's id only
after the task has started printing -- a WebSocket `start` subscribes once the submit is
answered, an MCP wait on an execution learns each step's task as it is placed. Under load
the executor's first lines can cross that moment. Keeping the end of each recent task's
output lets the subscriber begin with what it just missed. Bounded both ways (tasks and
lines per task), so a token flood costs a fixed amount of memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from uuid import UUID

from whoosh_shared.contract.work import ProgressLine

RECENT_TASKS = 256
LINES_PER_TASK = 200


class RecentLines:
    def __init__(self, tasks: int = RECENT_TASKS, per_task: int = LINES_PER_TASK) -> None:
        self._tasks: OrderedDict[UUID, deque[tuple[ProgressLine, str]]] = OrderedDict()
        self._max_tasks = tasks
        self._per_task = per_task

    def add(self, line: ProgressLine, text: str) -> None:
        """One line and its dashboard message (JSON)."""
        kept = self._tasks.get(line.task_id)
        if kept is None:
            kept = self._tasks[line.task_id] = deque(maxlen=self._per_task)
            if len(self._tasks) > self._max_tasks:
                self._tasks.popitem(last=False)
        else:
            self._tasks.move_to_end(line.task_id)
        kept.append((line, text))

    def of(self, task_id: UUID) -> list[tuple[ProgressLine, str]]:
        """The task's kept lines, oldest first (none if it sent none lately)."""
        return list(self._tasks.get(task_id, ()))
