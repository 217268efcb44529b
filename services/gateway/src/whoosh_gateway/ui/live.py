"""`GET /ui/stream`: the dashboard's live updates as server-sent events.

Each stored event goes out with `id: <notification id>`, so the browser's automatic
reconnect (header `Last-Event-ID`) or a reopened stream (`?last_event_id=`, after a
hidden tab closed it) resumes exactly after the last event it saw: the stream first
listens to the gateway's hub and holds what arrives, replays the store after that id,
then releases the held events, dropping any already replayed (the WebSocket's scheme).
Output lines are ephemeral, carry no id, and are sent only on a task's stream.

A full buffer ends the stream (the browser reconnects and replays what it missed) rather
than growing; the key is verified again with every heartbeat, so a revoked key's stream
ends with a `logout` event within one heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

from fastapi.sse import ServerSentEvent
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import EventPage, GetEvents
from whoosh_shared.contract.work import ProgressLine

from whoosh_gateway.dashboard_events import from_event
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.ui.views import actor_of, summary_of

BUFFER = 5000
REPLAY_PAGE = 500
HEARTBEAT_S = 15.0
SEEN_KEPT = 20_000


class Overflow(Exception):
    pass


class LiveStream:
    """One browser tab's stream: a hub listener with its own bounded queue."""

    def __init__(self, state: GatewayState, task_id: UUID | None) -> None:
        self.state = state
        self.task_id = task_id
        self.queue: asyncio.Queue[ServerSentEvent] = asyncio.Queue(BUFFER)
        self.held: list[tuple[EventEnvelope, str | None]] | None = []
        self.seen: set[int] = set()
        self.seen_order: deque[int] = deque()
        self.overflowed = False

    def matches(self, envelope: EventEnvelope) -> bool:
        return self.task_id is None or envelope.aggregate_id == self.task_id

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None:
        if not self.matches(envelope):
            return
        if self.held is not None:
            self.held.append((envelope, text))
            return
        self._deliver(envelope, text)

    def offer_line(self, line: ProgressLine, text: str) -> None:
        if self.task_id is not None and line.task_id == self.task_id:
            self._put(ServerSentEvent(raw_data=text, event="line"))

    def _deliver(self, envelope: EventEnvelope, text: str | None) -> None:
        nid = envelope.notification_id
        if nid in self.seen:
            return
        self._remember(nid)
        if text is not None:
            message = self._page_message(envelope, text)
            self._put(ServerSentEvent(raw_data=message, event="evt", id=str(nid)))

    def _page_message(self, envelope: EventEnvelope, text: str) -> str:
        """The WebSocket's message plus what the pages' tables show: the stored event's
        type, who caused it, and a one-line summary."""
        message = json.loads(text)
        message.update(
            stored_type=envelope.type,
            actor=actor_of(envelope.data),
            summary=summary_of(envelope),
            aggregate=envelope.aggregate_type,
            aggregate_id=str(envelope.aggregate_id),
        )
        return json.dumps(message, default=str)

    def _remember(self, nid: int) -> None:
        self.seen.add(nid)
        self.seen_order.append(nid)
        if len(self.seen_order) > SEEN_KEPT:
            self.seen.discard(self.seen_order.popleft())

    def _put(self, event: ServerSentEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def replay(self, after: int) -> None:
        """Stored events after `after`, then the ones held meanwhile (each once)."""
        try:
            while True:
                page = await self.state.coordinator.ask(
                    GetEvents(aggregate_id=self.task_id, after=after, limit=REPLAY_PAGE),
                    EventPage,
                )
                for envelope in page.events:
                    if self.matches(envelope):
                        message = from_event(
                            envelope, self.state.hub.agent_names.get(envelope.aggregate_id)
                        )
                        text = json.dumps(message, default=str) if message else None
                        self._deliver(envelope, text)
                if page.next_cursor is None:
                    return
                after = page.next_cursor
        finally:
            held, self.held = self.held or [], None
            for envelope, text in held:
                self._deliver(envelope, text)


async def stream_events(
    state: GatewayState,
    task_id: UUID | None,
    after: int | None,
    still_signed_in: Callable[[], Awaitable[bool]],
) -> AsyncIterator[ServerSentEvent]:
    """The SSE body: `ready`, then events; ends on overflow, logout or disconnect."""
    live = LiveStream(state, task_id)
    state.hub.listeners.add(live)
    try:
        if after is not None:
            await live.replay(after)
        else:
            live.held = None
        yield ServerSentEvent(raw_data="{}", event="ready", retry=2000)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + HEARTBEAT_S
        while True:
            event: ServerSentEvent | None = None
            with contextlib.suppress(TimeoutError):
                left = max(0.0, next_check - loop.time())
                event = await asyncio.wait_for(live.queue.get(), left)
            if loop.time() >= next_check:  # even while events flow: revocation ends it
                if not await still_signed_in():
                    yield ServerSentEvent(raw_data='{"why": "session ended"}', event="logout")
                    return
                next_check = loop.time() + HEARTBEAT_S
                if event is None:
                    yield ServerSentEvent(comment="heartbeat")
            if event is not None:
                yield event
                if live.overflowed and live.queue.empty():
                    return  # the browser reconnects with Last-Event-ID and replays the rest
    except ApiError:
        yield ServerSentEvent(raw_data='{"why": "replay failed"}', event="retry")
    finally:
        with contextlib.suppress(KeyError):
            state.hub.listeners.remove(live)
