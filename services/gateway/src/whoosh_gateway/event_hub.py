"""One subscription per gateway to the event stream and live output, fanned out to sockets.

Each message from NATS is parsed and turned into its dashboard message (JSON) once, then
offered to every open WebSocket session; a session takes it only if it matches its
subscriptions, and only into its own bounded buffer (`offer` never waits). A slow
client therefore costs its own session, never the hub or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Protocol
from uuid import UUID

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from whoosh_shared.contract import events as ev
from whoosh_shared.contract import subjects
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import EventPage, GetEvents
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.reconnects import after_each_reconnect, last_relayed_id
from whoosh_shared.runtime.supervision import LoopHealth, supervise

from whoosh_gateway.dashboard_events import from_event, from_line
from whoosh_gateway.line_order import LineOrder
from whoosh_gateway.recent_lines import RecentLines

log = logging.getLogger(__name__)
CATCH_UP_PAGE = 500
CATCH_UP_TIMEOUT_S = 10.0
CATCH_UP_RETRY_FIRST_S = 0.25
CATCH_UP_RETRY_MAX_S = 5.0
LINES_FIRST_TURNS = 1000  # loop turns an event waits for earlier output lines, at most


class Listener(Protocol):
    """A session: takes what matches it. `text` is the dashboard message, as JSON, made
    once here for every session (None: an event with no dashboard message)."""

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None: ...

    def offer_line(self, line: ProgressLine, text: str) -> None: ...


class EventHub:
    """Also survives NATS restarts: events are numbered (notification ids) and relayed in
    order, so the hub keeps the last id it passed on, drops anything at or below it (a
    relay's overlap after a crash), and after a reconnect reads what it missed from the
    store through the coordinator while holding live events back, then releases those
    it did not read. Every session thus gets every event once, in order."""

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.agent_names: dict[UUID, str] = {}
        self.recent_lines = RecentLines()
        self.line_order = LineOrder(self._send_line)
        self._subs: list[Subscription] = []
        self._lines: Subscription | None = None
        self.last_id = 0
        self._held: list[EventEnvelope] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.health = LoopHealth()

    async def start(self, bus: Bus) -> None:
        nc = bus.nc
        self.bus = bus
        self.last_id = await last_relayed_id(bus.js)
        self._subs.append(await nc.subscribe(subjects.EVENTS_WILDCARD, cb=self._on_event))
        self._lines = await nc.subscribe(f"{subjects.PROGRESS_PREFIX}.*", cb=self._on_line)
        self._subs.append(self._lines)
        self._watch = asyncio.create_task(
            supervise(
                "gateway event fan-out",
                lambda: after_each_reconnect(nc, self.catch_up),
                self.health,
            )
        )

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def catch_up(self) -> None:
        """The events stored after the last one passed on, read from the store (the
        coordinator answers from it); live ones are held meanwhile, then released."""
        self._held = self._held if self._held is not None else []
        try:
            delay = CATCH_UP_RETRY_FIRST_S
            while True:
                try:
                    page = await self.bus.ask(
                        GetEvents(after=self.last_id, limit=CATCH_UP_PAGE), CATCH_UP_TIMEOUT_S
                    )
                except BusError as exc:
                    log.warning("catching up on events: %s; retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, CATCH_UP_RETRY_MAX_S)
                    continue
                if page.status != "ok" or page.result is None:
                    log.error("catching up on events: %s", page.reason)
                    await asyncio.sleep(delay)
                    continue
                events = EventPage.model_validate(page.result)
                for envelope in events.events:
                    self._pass_on(envelope)
                if events.next_cursor is None:
                    break
        finally:
            held, self._held = self._held or [], None
            for envelope in sorted(held, key=lambda e: e.notification_id):
                self._pass_on(envelope)

    def remember_agent(self, agent_id: UUID, name: str) -> None:
        self.agent_names[agent_id] = name

    async def _on_event(self, msg: Msg) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValidationError:
            return
        if self._held is not None:
            self._held.append(envelope)
            return
        await self._lines_first()
        self._pass_on(envelope)

    async def _lines_first(self) -> None:
        """Let the output lines that reached this gateway before the event go out first.

        The two subscriptions are served by two tasks, so a line already read off the
        socket can still wait in its queue while an event that came after it (a task's
        completion: the executor flushes its lines before reporting) is passed on. Lines
        are handled without awaiting, one per loop turn: a few turns empty the queue."""
        lines = self._lines
        for _ in range(LINES_FIRST_TURNS):
            if lines is None or not lines.pending_msgs:
                return
            await asyncio.sleep(0)

    def _pass_on(self, envelope: EventEnvelope) -> None:
        if envelope.notification_id <= self.last_id:
            return  # already passed on (a relay's overlap, or read while catching up)
        self.last_id = envelope.notification_id
        if envelope.type in ("AgentRegistered", "AgentReregistered"):
            with contextlib.suppress(KeyError, ValueError):
                payload = envelope.payload()
                if isinstance(payload, ev.AgentRegistered | ev.AgentReregistered):
                    self.remember_agent(envelope.aggregate_id, payload.spec.name)
        self.line_order.before_event(envelope.aggregate_id, envelope.type)
        self._send_event(envelope)
        if envelope.type == "TaskStarted":
            with contextlib.suppress(KeyError, ValueError):
                payload = envelope.payload()
                if isinstance(payload, ev.TaskStarted):
                    self.line_order.started(envelope.aggregate_id, payload.attempt)

    def _send_event(self, envelope: EventEnvelope) -> None:
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
        self.line_order.offer(line, json.dumps(from_line(line)))

    def _send_line(self, line: ProgressLine, text: str) -> None:
        """A line whose attempt's start has gone out (see line_order.py)."""
        self.recent_lines.add(line, text)
        for listener in list(self.listeners):
            try:
                listener.offer_line(line, text)
            except Exception:
                log.exception("output line not offered to a session")
