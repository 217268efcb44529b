"""Stopping calls whose task ended elsewhere: cancelled by a user, or timed out by the
coordinator.

The coordinator's relay publishes every stored event; the executor listens (core NATS,
no durable state: a call that misses the event is stopped by its own timeout, and its
report is rejected anyway) to the two that end a task while it may still run here.
Stopping cancels the asyncio task streaming the call, which closes its HTTP connection,
so the server sees the client go away and stops generating.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from whoosh_shared import subjects
from whoosh_shared.events import EventEnvelope, TaskCancelled, TaskTimedOut

from whoosh_executor_ollama.running import RunningAttempts, StopCause

log = logging.getLogger(__name__)

SUBJECTS = (
    subjects.events_of_type("task", "TaskCancelled"),
    subjects.events_of_type("task", "TaskTimedOut"),
)


def stop_for_event(running: RunningAttempts, data: bytes) -> int:
    """Apply one relayed event to the calls here; returns how many it stopped."""
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
    else:
        return 0
    for run in runs:
        log.info(
            "stopping call: %s",
            reason,
            extra={"task_id": str(run.item.task_id), "attempt": run.item.attempt},
        )
        run.stop(cause, reason)
    return len(runs)
