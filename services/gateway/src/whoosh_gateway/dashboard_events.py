"""Stored events and live output lines, as the messages agent dashboards expect.

`execution_started`, `agent_event` (kind `progress` / `message` / `step`),
`execution_completed`, `execution_error`, `execution_stopped`, and `agent_status` for
changes of an agent. Every message made from a stored event carries `event_id` (its
notification id): a client that reconnects with the last one it saw gets exactly what
it missed. Output lines (`kind: message`) are ephemeral and carry `seq` instead. Pure.
"""

from __future__ import annotations

from typing import Any

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.work import ProgressLine

Message = dict[str, Any]

STEPS = {
    "TaskSubmitted": "submitted",
    "TaskAssigned": "assigned",
    "TaskAttemptFailed": "attempt_failed",
    "TaskOutputKept": "output_kept",
}


def from_line(line: ProgressLine) -> Message:
    return {
        "type": "agent_event",
        "kind": "message",
        "task_id": str(line.task_id),
        "attempt": line.attempt,
        "seq": line.seq,
        "stream": line.stream,
        "text": line.line,
    }


def from_event(envelope: EventEnvelope, agent_name: str | None = None) -> Message | None:
    """The dashboard message for one stored event (None for a type this contract lacks)."""
    try:
        payload = envelope.payload()
    except (KeyError, ValueError):
        return None
    base: Message = {
        "event_id": envelope.notification_id,
        "timestamp": envelope.timestamp.isoformat(),
    }
    if envelope.aggregate_type == "agent":
        return {
            "type": "agent_status",
            **base,
            "agent_id": str(envelope.aggregate_id),
            "agent": agent_name,
            "change": envelope.type,
            "data": envelope.data,
        }
    if envelope.aggregate_type == "apikey":
        return {"type": "key_event", **base, "change": envelope.type, "data": _no_hash(envelope)}
    if envelope.aggregate_type != "task":  # alerts, and aggregates added later
        return {
            "type": "fleet_event",
            **base,
            "aggregate": envelope.aggregate_type,
            "aggregate_id": str(envelope.aggregate_id),
            "change": envelope.type,
            "data": envelope.data,
        }
    task = {**base, "task_id": str(envelope.aggregate_id)}
    match payload:
        case ev.TaskStarted(attempt=attempt, executor_id=executor_id):
            return {
                "type": "execution_started",
                **task,
                "attempt": attempt,
                "executor_id": executor_id,
            }
        case ev.TaskProgressed(attempt=attempt, message=text):
            return {
                "type": "agent_event",
                "kind": "progress",
                **task,
                "attempt": attempt,
                "text": text,
            }
        case ev.TaskCompleted():
            return {
                "type": "execution_completed",
                **task,
                "attempt": payload.attempt,
                "output": payload.output,
                "exit_code": payload.exit_code,
                "usage": payload.usage.model_dump(mode="json"),
            }
        case ev.TaskFailed():
            return {
                "type": "execution_error",
                **task,
                "attempt": payload.attempt,
                "reason": payload.reason,
                "exit_code": payload.exit_code,
                "output": payload.output,
                "usage": payload.usage.model_dump(mode="json"),
                "timed_out": False,
            }
        case ev.TaskTimedOut(attempt=attempt, reason=reason):
            return {
                "type": "execution_error",
                **task,
                "attempt": attempt,
                "reason": reason,
                "timed_out": True,
            }
        case ev.TaskCancelled(reason=reason, actor=actor):
            return {"type": "execution_stopped", **task, "reason": reason, "actor": actor}
        case ev.TaskSkipped(reason=reason):  # a dependency did not complete
            return {"type": "execution_stopped", **task, "reason": reason, "skipped": True}
    step = STEPS.get(envelope.type)
    if step is None:
        return None
    return {"type": "agent_event", "kind": "step", **task, "step": step, "data": envelope.data}


def _no_hash(envelope: EventEnvelope) -> dict[str, Any]:
    return {k: v for k, v in envelope.data.items() if k != "key_hash"}
