"""The attempts running on this executor: what cancellations and shutdown act on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from whoosh_shared.work import WorkItem

from whoosh_executor_cli.local_process import LocalProcess


class StopCause(StrEnum):
    """Why a run was stopped from outside; decides what (if anything) is reported."""

    CANCELLED = "cancelled"  # the task was cancelled (TaskCancelled event)
    TIMED_OUT = "timed_out"  # the coordinator timed the task out (TaskTimedOut event)
    SHUTDOWN = "shutdown"  # this executor is stopping: nothing is reported, work redelivered


@dataclass
class AttemptRun:
    """One attempt of one task on this executor, with the process that runs it."""

    item: WorkItem
    process: LocalProcess
    stop_cause: StopCause | None = None

    @property
    def key(self) -> tuple[UUID, int]:
        return (self.item.task_id, self.item.attempt)

    def stop(self, cause: StopCause, reason: str) -> None:
        """Kill the run (or keep it from starting); the first cause given is the one kept."""
        if self.stop_cause is None:
            self.stop_cause = cause
        self.process.cancel(reason)


class RunningAttempts:
    """Attempts in progress here, found by task id."""

    def __init__(self) -> None:
        self._runs: dict[tuple[UUID, int], AttemptRun] = {}

    def add(self, run: AttemptRun) -> bool:
        """Register a run; False if this attempt already runs here (a redelivered copy)."""
        if run.key in self._runs:
            return False
        self._runs[run.key] = run
        return True

    def remove(self, run: AttemptRun) -> None:
        if self._runs.get(run.key) is run:
            del self._runs[run.key]

    def of_task(self, task_id: UUID, attempt: int | None = None) -> list[AttemptRun]:
        """The runs of a task here (normally at most one), optionally of one attempt only."""
        return [
            run
            for (tid, att), run in self._runs.items()
            if tid == task_id and (attempt is None or att == attempt)
        ]

    def __iter__(self) -> Iterator[AttemptRun]:
        return iter(list(self._runs.values()))

    def __len__(self) -> int:
        return len(self._runs)
