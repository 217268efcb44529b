"""Alerts the coordinator raised itself (a thread's escalation, a budget's warning or
exhaustion) sent to the webhook once, however many monitors run.

Why a shared durable consumer and not each monitor's event subscription: every monitor
sees every relayed event, so each would POST the same alert (the duplicate this module
removes). All monitors bind one durable pull consumer on the event stream, filtered to
AlertRaised; JetStream hands each message to one of them, which acks it only after
its delivery ended (delivered, refused, or failed after its retries). A monitor killed
mid-delivery leaves the message unacked, and another monitor sends it after `ack_wait`
(at least once, then; never once per monitor). The consumer starts at the events
relayed after it was first created, so a new cluster does not replay old alerts.

Alerts the monitor raised itself are notified by the monitor whose RaiseAlert changed
the alert's state (the coordinator's reply says which), so they are skipped here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.alerts import WebhookSettings
from whoosh_shared.contract.events import EventEnvelope

log = logging.getLogger(__name__)

DURABLE = "whoosh-monitor-alert-notices"
FILTER = subjects.event("alert", "*", "AlertRaised")
FETCH_TIMEOUT_S = 2.0
RETRY_AFTER_ERROR_S = 1.0
ACK_MARGIN_S = 30.0
Deliver = Callable[[dict[str, Any]], Awaitable[str]]


def ack_wait_s(hook: WebhookSettings) -> float:
    """Longer than one delivery can take (every try timing out, with its backoffs), so a
    living monitor's message is never handed to another one mid-delivery."""
    backoffs = sum(hook.backoff_s * 2**i for i in range(hook.retries))
    return hook.timeout_s * (hook.retries + 1) + backoffs + ACK_MARGIN_S


def consumer_config(hook: WebhookSettings) -> ConsumerConfig:
    return ConsumerConfig(
        name=DURABLE,
        durable_name=DURABLE,
        filter_subject=FILTER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s(hook),
        deliver_policy=DeliverPolicy.NEW,
        max_deliver=-1,
        max_ack_pending=1000,
    )


def notice(envelope: EventEnvelope, cluster: str, own_actor: str) -> dict[str, Any] | None:
    """The webhook body for an AlertRaised event; None for the monitor's own alerts."""
    fields = envelope.data
    if envelope.type != "AlertRaised" or fields.get("actor") == own_actor:
        return None
    alert = {"id": str(envelope.aggregate_id), "rule": fields.get("rule"),
             "labels": fields.get("labels"), "severity": fields.get("severity"),
             "summary": fields.get("summary"), "value": fields.get("value"),
             "threshold": fields.get("threshold")}  # fmt: skip
    return {"status": "firing", "cluster": cluster, "alert": alert}


class AlertNotices:
    """Fetch one alert at a time from the shared consumer, deliver it, then ack it."""

    def __init__(
        self,
        js: JetStreamContext,
        hook: WebhookSettings,
        deliver: Deliver,
        on_outcome: Callable[[str], None],
        cluster: str,
        own_actor: str,
    ) -> None:
        self.js = js
        self.hook = hook
        self.deliver = deliver
        self.on_outcome = on_outcome
        self.cluster = cluster
        self.own_actor = own_actor
        self._sub: JetStreamContext.PullSubscription | None = None

    async def bind(self) -> None:
        await self.js.add_consumer(subjects.EVENTS_STREAM, consumer_config(self.hook))
        self._sub = await self.js.pull_subscribe_bind(DURABLE, subjects.EVENTS_STREAM)

    async def run(self) -> None:
        """Until cancelled; a lost server or consumer is bound again after a pause."""
        while True:
            try:
                if self._sub is None:
                    await self.bind()
                assert self._sub is not None
                messages = await self._sub.fetch(batch=1, timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                continue
            except (nats.errors.Error, OSError) as exc:
                log.debug("alert notices: fetch failed, binding again: %r", exc)
                self._sub = None
                await asyncio.sleep(RETRY_AFTER_ERROR_S)
                continue
            for msg in messages:
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValidationError:
            log.warning("alert notices: an unreadable event was skipped")
            await msg.ack()
            return
        body = notice(envelope, self.cluster, self.own_actor)
        if body is not None:
            self.on_outcome(await self.deliver(body))
        await msg.ack()
