"""What the pages show, computed from the contract's views and events. Pure.

The attempt timeline is rebuilt from a task's stored history (not from the task view,
which keeps only the last attempt), so retries on other agents, the cancel or timeout
point and a resumed run all show as they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import AgentView

ENDS = {
    "TaskCompleted": "completed",
    "TaskFailed": "failed",
    "TaskCancelled": "cancelled",
    "TaskTimedOut": "timed out",
    "TaskAttemptFailed": "attempt failed",
}


@dataclass
class Attempt:
    number: int
    agent: str | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = "running"
    reason: str | None = None
    bar: dict[str, float] = field(default_factory=dict)  # left/width in % of the timeline


@dataclass
class Timeline:
    submitted_at: datetime | None
    ended_at: datetime | None
    attempts: list[Attempt]
    cancelled_at: datetime | None = None


def timeline(events: list[EventEnvelope], now: datetime) -> Timeline:
    """Attempts with their bars, on one time axis from submission to the end (or now)."""
    submitted = next((e.timestamp for e in events if e.type == "TaskSubmitted"), None)
    attempts: dict[int, Attempt] = {}
    ended: datetime | None = None
    cancelled: datetime | None = None
    current = 0
    for envelope in events:
        data = envelope.data
        number = int(data.get("attempt") or current or 1)
        if envelope.type == "TaskAssigned":
            current = number
            attempts[number] = Attempt(number, data.get("agent_name"), envelope.timestamp)
        elif envelope.type == "TaskStarted" and number in attempts:
            attempts[number].started_at = envelope.timestamp
        elif envelope.type in ENDS:
            attempt = attempts.get(number) or attempts.get(current)
            if attempt is not None and attempt.ended_at is None:
                attempt.ended_at = envelope.timestamp
                attempt.outcome = ENDS[envelope.type]
                attempt.reason = data.get("reason")
            if envelope.type != "TaskAttemptFailed":
                ended = envelope.timestamp
            if envelope.type == "TaskCancelled":
                cancelled = envelope.timestamp
    result = Timeline(submitted, ended, sorted(attempts.values(), key=lambda a: a.number))
    result.cancelled_at = cancelled
    _place_bars(result, now)
    return result


def _place_bars(line: Timeline, now: datetime) -> None:
    if line.submitted_at is None:
        return
    start, end = line.submitted_at, line.ended_at or now
    span = max((end - start).total_seconds(), 0.001)
    for attempt in line.attempts:
        first = attempt.assigned_at or start
        last = attempt.ended_at or line.ended_at or now
        left = (first - start).total_seconds() / span * 100
        width = max((last - first).total_seconds() / span * 100, 0.8)
        attempt.bar = {"left": round(min(left, 99.2), 2), "width": round(min(width, 100 - left), 2)}


def agent_state(agent: AgentView) -> str:
    """healthy / degraded / down / disabled, as the dashboard colours it."""
    if not agent.enabled:
        return "disabled"
    if not agent.healthy or not agent.reachable:
        return "down"
    if agent.missing_models:
        return "degraded"
    return "healthy"


def best_decode_tps(agent: AgentView) -> float:
    speeds = [s.decode_tps for s in agent.speeds.values() if s.decode_tps]
    return max(speeds) if speeds else 0.0


def actor_of(data: dict[str, Any]) -> str:
    """Who caused an event, when a person or program did (the audit trail's 'who')."""
    actor = data.get("actor") or data.get("created_by") or data.get("revoked_by")
    return str(actor) if actor else ""


def summary_of(envelope: EventEnvelope) -> str:
    """One short line about an event, for feeds and histories."""
    data = envelope.data
    for key in ("reason", "message", "agent_name", "name", "summary"):
        if data.get(key):
            return str(data[key])[:200]
    if envelope.type == "TaskSubmitted":
        return str(data.get("prompt", ""))[:120]
    return ""
