"""One subscription per gateway to the event stream and live output, fanned out to sockets.

Each message from NATS is parsed and turned into its dashboard message (JSON) once, then
offered to every open WebSocket session; a session takes it only if it matches its
subscriptions, and only into its own bounded buffer (`offer` never waits). A slow
client therefore costs its own session, never the hub or the other clients.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Protocol
from uuid import UUID

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from whoosh_shared import events as ev
from whoosh_shared import subjects
from whoosh_shared.bus import Bus
from whoosh_shared.events import EventEnvelope
from whoosh_shared.work import ProgressLine

from whoosh_gateway.dashboard_events import from_event, from_line

log = logging.getLogger(__name__)


class Listener(Protocol):
    """A session: takes what matches it. `text` is the dashboard message, as JSON, made
    once here for every session (None: an event with no dashboard message)."""

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None: ...

    def offer_line(self, line: ProgressLine, text: str) -> None: ...


class EventHub:
    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.agent_names: dict[UUID, str] = {}
        self._subs: list[Subscription] = []

    async def start(self, bus: Bus) -> None:
        nc = bus.nc
        self._subs.append(await nc.subscribe(subjects.EVENTS_WILDCARD, cb=self._on_event))
        self._subs.append(await nc.subscribe(f"{subjects.PROGRESS_PREFIX}.*", cb=self._on_line))

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    def remember_agent(self, agent_id: UUID, name: str) -> None:
        self.agent_names[agent_id] = name

    async def _on_event(self, msg: Msg) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValidationError:
            return
        if envelope.type in ("AgentRegistered", "AgentReregistered"):
            with contextlib.suppress(KeyError, ValueError):
                payload = envelope.payload()
                if isinstance(payload, ev.AgentRegistered | ev.AgentReregistered):
                    self.remember_agent(envelope.aggregate_id, payload.spec.name)
        if not self.listeners:
            return
        message = from_event(envelope, self.agent_names.get(envelope.aggregate_id))
        text = json.dumps(message, default=str) if message is not None else None
        for listener in list(self.listeners):
            try:
                listener.offer_event(envelope, text)
            except Exception:  # one session's bug must not stop the others' feed
                log.exception("event not offered to a session")

    async def _on_line(self, msg: Msg) -> None:
        if not self.listeners:
            return  # tokens flow all the time; parse them only for someone
        try:
            line = ProgressLine.model_validate_json(msg.data)
        except ValidationError:
            return
        text = json.dumps(from_line(line))
        for listener in list(self.listeners):
            try:
                listener.offer_line(line, text)
            except Exception:
                log.exception("output line not offered to a session")
