"""The attempts running on one executor, and stopping them when their task ends elsewhere.

Every executor keeps the same registry (what cancellations and shutdown act on); only
what "a run" is differs (a process group, an HTTP stream), so a run is anything with
an `item` and a `stop(cause, reason)`.

The coordinator's relay publishes every stored event; executors listen (core NATS,
no durable state; after a NATS reconnect `recheck_runs` asks the coordinator about every
run, since events published meanwhile were missed) to the events that end an attempt
while it may still run here: the task cancelled or timed out, or the attempt failed
elsewhere (the monitor re-queued it because its agent went unhealthy; the run here would
only be rejected).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from pydantic import ValidationError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.events import (
    EventEnvelope,
    TaskAttemptFailed,
    TaskCancelled,
    TaskTimedOut,
)
from whoosh_shared.contract.queries import GetTask
from whoosh_shared.contract.work import WorkItem

log = logging.getLogger(__name__)

STOP_EVENT_SUBJECTS = (
    subjects.events_of_type("task", "TaskCancelled"),
    subjects.events_of_type("task", "TaskTimedOut"),
    subjects.events_of_type("task", "TaskAttemptFailed"),
)


class StopCause(StrEnum):
    """Why a run was stopped from outside; decides what (if anything) is reported."""

    CANCELLED = "cancelled"  # the task was cancelled (TaskCancelled event)
    TIMED_OUT = "timed_out"  # the coordinator timed the task out (TaskTimedOut event)
    SUPERSEDED = "superseded"  # the attempt was failed elsewhere and re-queued
    SHUTDOWN = "shutdown"  # this executor is stopping: nothing is reported, work redelivered


class Run(Protocol):
    item: WorkItem

    def stop(self, cause: StopCause, reason: str) -> None: ...


RunT = TypeVar("RunT", bound=Run)


class RunningAttempts(Generic[RunT]):
    """Attempts in progress here, found by task id."""

    def __init__(self) -> None:
        self._runs: dict[tuple[UUID, int], RunT] = {}

    @staticmethod
    def _key(run: Run) -> tuple[UUID, int]:
        return (run.item.task_id, run.item.attempt)

    def add(self, run: RunT) -> bool:
        """Register a run; False if this attempt already runs here (a redelivered copy)."""
        if self._key(run) in self._runs:
            return False
        self._runs[self._key(run)] = run
        return True

    def remove(self, run: RunT) -> None:
        if self._runs.get(self._key(run)) is run:
            del self._runs[self._key(run)]

    def of_task(self, task_id: UUID, attempt: int | None = None) -> list[RunT]:
        """The runs of a task here (normally at most one), optionally of one attempt only."""
        return [
            run
            for (tid, att), run in self._runs.items()
            if tid == task_id and (attempt is None or att == attempt)
        ]

    def __iter__(self) -> Iterator[RunT]:
        return iter(list(self._runs.values()))

    def __len__(self) -> int:
        return len(self._runs)


def stop_for_event(running: RunningAttempts[RunT], data: bytes) -> int:
    """Apply one relayed event to the runs here; returns how many runs it stopped."""
    try:
        envelope = EventEnvelope.model_validate_json(data)
        payload = envelope.payload()
    except (ValidationError, KeyError) as exc:
        log.warning("ignoring a malformed task event: %s", exc)
        return 0
    if isinstance(payload, TaskCancelled):
        runs = running.of_task(envelope.aggregate_id)
        cause, reason = StopCause.CANCELLED, f"task cancelled ({payload.reason})"
    elif isinstance(payload, TaskTimedOut):
        runs = running.of_task(envelope.aggregate_id, payload.attempt)
        cause, reason = StopCause.TIMED_OUT, f"task timed out ({payload.reason})"
    elif isinstance(payload, TaskAttemptFailed):
        # Usually this executor's own report of a run that has ended; stopping it is a
        # no-op then. Otherwise someone else gave up on the attempt: stop wasting it.
        runs = running.of_task(envelope.aggregate_id, payload.attempt)
        cause, reason = StopCause.SUPERSEDED, f"attempt failed elsewhere ({payload.reason})"
    else:
        return 0
    for run in runs:
        log.info(
            "stopping run: %s",
            reason,
            extra={"task_id": str(run.item.task_id), "attempt": run.item.attempt},
        )
        run.stop(cause, reason)
    return len(runs)


async def recheck_runs(running: RunningAttempts[RunT], ask: Callable[[Any], Awaitable[Any]]) -> int:
    """After a reconnect: cancellations and time-outs published while this executor was
    away from NATS were never seen, so ask the coordinator about every run here and stop
    those whose attempt is over. `ask` is `Bus.ask`. Returns how many runs it stopped."""
    stopped = 0
    for run in list(running):
        reply = await ask(GetTask(task_id=run.item.task_id))
        if reply.status != "ok" or reply.result is None:
            continue
        status, attempt = TaskStatus(reply.result["status"]), int(reply.result["attempt"])
        if status is TaskStatus.CANCELLED:
            cause, reason = StopCause.CANCELLED, "task cancelled (seen after a reconnect)"
        elif status is TaskStatus.TIMED_OUT:
            cause, reason = StopCause.TIMED_OUT, "task timed out (seen after a reconnect)"
        elif attempt != run.item.attempt or status.terminal:
            cause, reason = StopCause.SUPERSEDED, "attempt over elsewhere (seen after a reconnect)"
        else:
            continue
        log.info("stopping run: %s", reason, extra={"task_id": str(run.item.task_id),
                                                     "attempt": run.item.attempt})  # fmt: skip
        run.stop(cause, reason)
        stopped += 1
    return stopped
