"""The LLM calls running on this executor: what cancellations and shutdown act on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from whoosh_shared.work import WorkItem

from whoosh_executor_ollama.stream import LlmStream


class StopCause(StrEnum):
    """Why a call was stopped from outside; decides what (if anything) is reported."""

    CANCELLED = "cancelled"  # the task was cancelled (TaskCancelled event)
    TIMED_OUT = "timed_out"  # the coordinator timed the task out (TaskTimedOut event)
    SHUTDOWN = "shutdown"  # this executor is stopping: nothing is reported, work redelivered


@dataclass
class LlmRun:
    """One attempt of one task on this executor, with the asyncio task streaming its call."""

    item: WorkItem
    stop_cause: StopCause | None = None
    stop_reason: str = ""
    call: asyncio.Task[object] | None = None
    stream: LlmStream | None = None
    chunks: int = field(default=0)

    @property
    def key(self) -> tuple[UUID, int]:
        return (self.item.task_id, self.item.attempt)

    @property
    def partial_text(self) -> str:
        return self.stream.text if self.stream is not None else ""

    def stop(self, cause: StopCause, reason: str) -> None:
        """Cancel the call (closing its HTTP stream at once), or keep it from starting.

        The first cause given is the one kept."""
        if self.stop_cause is None:
            self.stop_cause = cause
            self.stop_reason = reason
        if self.call is not None and not self.call.done():
            self.call.cancel()


class RunningAttempts:
    """Attempts in progress here, found by task id."""

    def __init__(self) -> None:
        self._runs: dict[tuple[UUID, int], LlmRun] = {}

    def add(self, run: LlmRun) -> bool:
        """Register a run; False if this attempt already runs here (a redelivered copy)."""
        if run.key in self._runs:
            return False
        self._runs[run.key] = run
        return True

    def remove(self, run: LlmRun) -> None:
        if self._runs.get(run.key) is run:
            del self._runs[run.key]

    def of_task(self, task_id: UUID, attempt: int | None = None) -> list[LlmRun]:
        """The runs of a task here (normally at most one), optionally of one attempt only."""
        return [
            run
            for (tid, att), run in self._runs.items()
            if tid == task_id and (attempt is None or att == attempt)
        ]

    def __iter__(self) -> Iterator[LlmRun]:
        return iter(list(self._runs.values()))

    def __len__(self) -> int:
        return len(self._runs)
