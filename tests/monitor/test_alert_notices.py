"""The shared consumer's pure parts: which events become a webhook notice, and an
ack_wait longer than any one delivery (so a living monitor's notice is never handed to
a second monitor mid-delivery and sent twice)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from whoosh_monitor.alert_notices import ack_wait_s, consumer_config, notice
from whoosh_shared.contract import subjects
from whoosh_shared.contract.alerts import WebhookSettings
from whoosh_shared.contract.events import EventEnvelope


def raised(actor: str) -> EventEnvelope:
    return EventEnvelope(
        notification_id=7,
        aggregate_type="alert",
        aggregate_id=uuid4(),
        version=2,
        type="AlertRaised",
        timestamp=datetime.now(UTC),
        data={"rule": "BudgetExhausted", "labels": {"scope": "global"}, "severity": "critical",
              "summary": "budget 'global' at 100% of its limit", "value": 1.0,
              "threshold": 1.0, "actor": actor},
    )  # fmt: skip


def test_coordinator_alerts_become_notices_and_the_monitors_own_do_not() -> None:
    body = notice(raised("coordinator"), "lab", own_actor="monitor")
    assert body is not None and body["status"] == "firing" and body["cluster"] == "lab"
    assert body["alert"]["rule"] == "BudgetExhausted"
    assert body["alert"]["labels"] == {"scope": "global"}
    assert notice(raised("monitor"), "lab", own_actor="monitor") is None


def test_ack_wait_outlasts_the_slowest_delivery_and_the_consumer_is_shared() -> None:
    hook = WebhookSettings(url="http://127.0.0.1:9/hook", timeout_s=5, retries=3, backoff_s=1)
    slowest = 5 * 4 + (1 + 2 + 4)
    assert ack_wait_s(hook) > slowest
    config = consumer_config(hook)
    assert config.durable_name == "whoosh-monitor-alert-notices"
    assert config.filter_subject == subjects.event("alert", "*", "AlertRaised")
    assert config.deliver_policy.value == "new"
