"""The coordinator's read model of alerts, folded from Alert events. Pure."""

from __future__ import annotations

from uuid import UUID

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.alerts import AlertStatus, AlertView, Severity, fingerprint
from whoosh_shared.contract.events import EventEnvelope

KEPT_RESOLVED = 1000  # resolved alerts listed; firing ones are always kept


class AlertProjection:
    def __init__(self) -> None:
        self.alerts: dict[UUID, AlertView] = {}

    def apply(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        at = envelope.timestamp
        match payload:
            case ev.AlertRaised():
                before = self.alerts.get(envelope.aggregate_id)
                self.alerts[envelope.aggregate_id] = AlertView(
                    id=envelope.aggregate_id,
                    fingerprint=fingerprint(payload.rule, payload.labels),
                    rule=payload.rule,
                    severity=Severity(payload.severity),
                    labels=payload.labels,
                    summary=payload.summary,
                    value=payload.value,
                    threshold=payload.threshold,
                    status="firing",
                    raised_at=at,
                    times_raised=(before.times_raised + 1) if before else 1,
                )
            case ev.AlertResolved(reason=reason):
                view = self.alerts.get(envelope.aggregate_id)
                if view is not None:
                    view.status, view.resolved_at, view.resolved_reason = "resolved", at, reason
                    self._trim()

    def _trim(self) -> None:
        resolved = [a for a in self.alerts.values() if a.status == "resolved"]
        if len(resolved) > KEPT_RESOLVED:
            resolved.sort(key=lambda a: a.resolved_at or a.raised_at)
            for old in resolved[: len(resolved) - KEPT_RESOLVED]:
                del self.alerts[old.id]

    def listed(self, status: AlertStatus | None, limit: int) -> list[AlertView]:
        """Firing first, then newest first."""
        chosen = [a for a in self.alerts.values() if status is None or a.status == status]
        chosen.sort(
            key=lambda a: (a.status != "firing", -(a.resolved_at or a.raised_at).timestamp())
        )
        return chosen[:limit]

    def firing_count(self) -> int:
        return sum(1 for a in self.alerts.values() if a.status == "firing")
