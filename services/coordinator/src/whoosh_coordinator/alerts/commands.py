"""RaiseAlert / ResolveAlert: the monitor's alerts as events on Alert aggregates.

Kept apart from commands.py (registered there in the dispatch table): load or create
the series' Alert, let it decide whether anything changes, save only when it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.application import AggregateNotFoundError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.alerts import alert_id
from whoosh_shared.contract.commands import CommandReply

from whoosh_coordinator.alerts.domain import Alert

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler


def _load(handler: CommandHandler, cmd: c.AlertCommand) -> Alert | None:
    try:
        alert = handler.aggregates.get(alert_id(cmd.rule, cmd.labels))
    except AggregateNotFoundError:
        return None
    assert isinstance(alert, Alert)
    return alert


def raise_alert(handler: CommandHandler, cmd: c.RaiseAlert) -> CommandReply:
    alert = _load(handler, cmd) or Alert(rule=cmd.rule, labels=dict(cmd.labels))
    fields = {
        "severity": cmd.severity.value,
        "summary": cmd.summary,
        "value": cmd.value,
        "threshold": cmd.threshold,
    }
    raised = alert.raise_(fields, actor=cmd.actor)
    if raised:
        handler.save(alert)  # type: ignore[arg-type]
    return CommandReply.accept(alert_id=str(alert.id), raised=str(raised).lower())


def resolve_alert(handler: CommandHandler, cmd: c.ResolveAlert) -> CommandReply:
    alert = _load(handler, cmd)
    resolved = alert is not None and alert.resolve(cmd.reason, actor=cmd.actor)
    if resolved:
        handler.save(alert)  # type: ignore[arg-type]
    ids = {"alert_id": str(alert_id(cmd.rule, cmd.labels)), "resolved": str(resolved).lower()}
    return CommandReply.accept(**ids)
