"""One WebSocket client: its subscriptions, its bounded buffer, resume without gaps.

Delivery: the hub offers every event and output line; the session keeps what matches
its subscriptions and puts it in its own queue (never waiting). A writer task drains
the queue to the socket. When the queue is full the client is too slow: the session
closes it (code 4008) with a reason saying to reconnect with its last event id.

Resume: `subscribe` with `last_event_id` replays, from the store, every event of that
scope after the id, while live events are held back; then the held ones follow, with
anything already replayed dropped. So the client sees each event once and none is
missed, whether it was stored before, during or after the replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any
from uuid import UUID

from fastapi import WebSocket
from pydantic import ValidationError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import AgentView, EventPage, GetAgent, GetEvents
from whoosh_shared.contract.work import ProgressLine

from whoosh_gateway.access import check_role
from whoosh_gateway.callers import Caller
from whoosh_gateway.dashboard_events import Message, from_event
from whoosh_gateway.errors import ApiError, describe_validation
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.routes.tasks import submit_command
from whoosh_gateway.ws_protocol import (
    BadMessage,
    Ping,
    Start,
    Stop,
    Subscribe,
    Unsubscribe,
    parse_client_message,
)

log = logging.getLogger(__name__)
MAX_SUBSCRIPTIONS = 1000  # tasks and agents one socket follows by id
SLOW_CLIENT_CLOSE = 4008
REPLAY_PAGE = 500
REPLAY_PUT_TIMEOUT_S = 10.0
SEEN_KEPT = 100_000


class SessionClosed(Exception):
    pass


class WsSession:
    def __init__(self, ws: WebSocket, state: GatewayState, caller: Caller) -> None:
        self.ws = ws
        self.state = state
        self.caller = caller
        self.limit = state.settings.ws_buffer_messages
        self.close_timeout_s = state.settings.ws_close_timeout_s
        self.queue: asyncio.Queue[str] = asyncio.Queue(self.limit)
        self.tasks: set[UUID] = set()
        self.threads: set[UUID] = set()  # scope "thread": a thread's own events
        self.agents: set[UUID] = set()
        self.agent_tasks: dict[UUID, UUID] = {}  # task -> followed agent it was given to
        self.executions: set[UUID] = set()
        self.execution_tasks: dict[UUID, UUID] = {}  # a followed execution's step tasks
        self.everything = False
        # live events and lines (envelope None) held back while a subscription replays
        self._held: list[tuple[EventEnvelope | None, str | None]] | None = None
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self.closing = False
        self._closed = asyncio.Event()  # set once close() has done what it could
        self.writer: asyncio.Task[None] | None = None

    # -- the hub's side (never waits) ---------------------------------------------------

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None:
        """While a subscription replays, every live event is held as it is and judged only
        on release, after what the replay followed: an execution's review thread (or an
        agent's task) is known from an event the replay may not have read yet, and a live
        vote judged on arrival was dropped for good (a WebSocket test saw a review's
        ThreadStarted but neither its votes nor its close)."""
        if not self.closing and not self._hold(envelope, text):
            self._judge(envelope, text)

    def _judge(self, envelope: EventEnvelope, text: str | None) -> None:
        """Follow what the event links to this subscription, then send it if it matches."""
        self._follow(envelope)
        if self._matches(envelope):
            self._deliver(envelope, text)

    def _hold(self, envelope: EventEnvelope | None, text: str | None) -> bool:
        """Keep it back if a replay is under way (True), to go out after what it replays."""
        if self._held is None:
            return False
        if len(self._held) >= self.limit:
            self._overflow()
        else:
            self._held.append((envelope, text))
        return True

    def offer_line(self, line: ProgressLine, text: str) -> None:
        if self.closing or not (
            self.everything
            or line.task_id in self.tasks
            or line.task_id in self.agent_tasks
            or line.task_id in self.execution_tasks
        ):
            return
        if not self._hold(None, text):
            self._enqueue(text)

    def _matches(self, envelope: EventEnvelope) -> bool:
        if envelope.aggregate_type == "apikey":
            return self.everything and self.caller.role is Role.ADMIN
        if self.everything:
            return True
        if envelope.aggregate_type == "task":
            return (
                envelope.aggregate_id in self.tasks
                or envelope.aggregate_id in self.agent_tasks
                or envelope.aggregate_id in self.execution_tasks
            )
        if envelope.aggregate_type == "execution":
            return envelope.aggregate_id in self.executions
        if envelope.aggregate_type == "thread":  # a followed execution's review steps too
            return (
                envelope.aggregate_id in self.threads
                or envelope.aggregate_id in self.execution_tasks
            )
        return envelope.aggregate_type == "agent" and envelope.aggregate_id in self.agents

    def _follow(self, envelope: EventEnvelope) -> None:
        """A followed agent's executions are followed too: its AgentSlotTaken names the task
        (stored just before the task's TaskAssigned, in the same transaction); a followed
        execution's step tasks (and its review steps' threads) likewise, from its
        ExecutionStepScheduled (stored with the task's TaskSubmitted)."""
        if envelope.type == "ExecutionStepScheduled" and envelope.aggregate_id in self.executions:
            with contextlib.suppress(KeyError, ValueError):
                task_id = UUID(str(envelope.data["task_id"]))
                self.execution_tasks[task_id] = envelope.aggregate_id
                if len(self.execution_tasks) > SEEN_KEPT:
                    del self.execution_tasks[next(iter(self.execution_tasks))]
            return
        if envelope.type != "AgentSlotTaken" or envelope.aggregate_id not in self.agents:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.agent_tasks[UUID(str(envelope.data["task_id"]))] = envelope.aggregate_id
            if len(self.agent_tasks) > SEEN_KEPT:
                del self.agent_tasks[next(iter(self.agent_tasks))]  # the oldest

    def _deliver(self, envelope: EventEnvelope, text: str | None) -> None:
        if envelope.notification_id in self._seen:
            return
        self._remember(envelope.notification_id)
        if text is not None:
            self._enqueue(text)

    def _remember(self, event_id: int) -> None:
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN_KEPT:
            self._seen.discard(self._seen_order.popleft())

    def _enqueue(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._overflow()

    def _overflow(self) -> None:
        if self.closing:
            return
        self.closing = True
        log.info("closing a slow WebSocket client (%s): buffer full", self.caller.actor)
        asyncio.get_running_loop().create_task(
            self.close(SLOW_CLIENT_CLOSE, "slow client: buffer full; reconnect with last_event_id")
        )

    # -- the socket's side ----------------------------------------------------------------

    def start_writer(self) -> None:
        self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while True:
            await self.ws.send_text(await self.queue.get())

    async def close(self, code: int, reason: str) -> None:
        self.closing = True
        if self.writer is not None:
            self.writer.cancel()
            await asyncio.gather(self.writer, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason), self.close_timeout_s)
        self._closed.set()

    async def receive(self) -> dict[str, Any] | None:
        """The client's next ASGI message; None once the session has closed. Why not just
        `ws.receive()`: a client that reads nothing cannot take the close frame either,
        and a handler left waiting on it would keep that connection open for ever; ending
        the handler lets the server drop the connection."""
        receiving = asyncio.ensure_future(self.ws.receive())
        closed = asyncio.ensure_future(self._closed.wait())
        await asyncio.wait({receiving, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if receiving.done():
            return receiving.result()
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
        return None

    async def send_now(self, message: Message) -> None:
        """A direct answer to the client's own request (through the queue, in order)."""
        try:
            text = json.dumps(message, default=str)
            await asyncio.wait_for(self.queue.put(text), REPLAY_PUT_TIMEOUT_S)
        except TimeoutError:
            self._overflow()
            raise SessionClosed from None

    async def error(self, code: str, message: str, request_id: str | None = None) -> None:
        body: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            body["request_id"] = request_id
        await self.send_now(body)

    # -- client actions -----------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        try:
            message = parse_client_message(text)
        except BadMessage as bad:
            await self.error(bad.code, bad.message, bad.request_id)
            return
        try:
            await self.state.limiter.check(self.caller)
            match message:
                case Subscribe():
                    await self._subscribe(message)
                case Unsubscribe():
                    await self._unsubscribe(message)
                case Start():
                    await self._start(message)
                case Stop():
                    await self._stop(message)
                case Ping():
                    await self.send_now({"type": "pong", "request_id": message.request_id})
        except ApiError as exc:
            await self.error(exc.code, exc.message, message.request_id)
        except ValidationError as exc:
            await self.error(
                "invalid", describe_validation(list(exc.errors()))[0], message.request_id
            )
        except SessionClosed:
            raise
        except Exception:  # a bug costs one answer, never the connection
            log.exception("WebSocket action %s failed", message.action)
            await self.error(
                "internal", "internal error; the gateway logged it", message.request_id
            )

    async def _scope_id(self, scope: str, ident: str | None) -> UUID | None:
        if scope == "all":
            return None
        if not ident:
            raise ApiError(422, "invalid", f"scope '{scope}' needs an 'id'")
        if scope in ("task", "execution", "thread"):
            try:
                return UUID(ident)
            except ValueError:
                raise ApiError(422, "invalid", f"{ident!r} is not a {scope} id") from None
        agent = await self.state.coordinator.ask(GetAgent(name=ident), AgentView)
        self.state.hub.remember_agent(agent.id, agent.spec.name)
        return agent.id

    async def _subscribe(self, message: Subscribe) -> None:
        check_role(self.caller, Role.VIEWER)
        if message.scope != "all" and len(self.tasks) + len(self.agents) >= MAX_SUBSCRIPTIONS:
            raise ApiError(
                429,
                "too_many_subscriptions",
                f"this socket already has {MAX_SUBSCRIPTIONS} subscriptions, the most one may "
                "have: unsubscribe first, or subscribe to scope 'all'",
            )
        target = await self._scope_id(message.scope, message.id)
        if message.last_event_id is None:
            self._add(message.scope, target)
            await self._confirm(message, replayed=0)
            return
        self._held = self._held if self._held is not None else []
        self._add(message.scope, target)
        # a task's lines that went by before this subscription (live ones are held from
        # here on): they follow the replayed events, before the held ones
        missed = (
            [text for _, text in self.state.hub.recent_lines.of(target)]
            if message.scope == "task" and target is not None
            else []
        )
        try:
            # An agent's scope spans its tasks' events too: replay reads the whole log after
            # the id (in order, so each AgentSlotTaken comes before its task's events).
            scan = None if message.scope in ("agent", "execution") else target
            replayed = await self._replay(scan, message.last_event_id)
        finally:  # a failed replay must not leave live events held back for ever
            held, self._held = self._held or [], None
            for text in missed:
                self._enqueue(text)
            for envelope, text in held:
                if envelope is None:
                    self._enqueue(text)  # type: ignore[arg-type]
                else:
                    self._judge(envelope, text)
        await self._confirm(message, replayed)

    async def _confirm(self, message: Subscribe, replayed: int) -> None:
        await self.send_now(
            {
                "type": "subscribed",
                "scope": message.scope,
                "id": message.id,
                "replayed": replayed,
                "request_id": message.request_id,
            }
        )

    def _add(self, scope: str, target: UUID | None) -> None:
        if scope == "all":
            self.everything = True
        elif scope == "task" and target is not None:
            self.tasks.add(target)
        elif scope == "execution" and target is not None:
            self.executions.add(target)
        elif scope == "thread" and target is not None:
            self.threads.add(target)
        elif target is not None:
            self.agents.add(target)

    async def _replay(self, target: UUID | None, after: int) -> int:
        """Stored events of the scope after `after`, into the queue (waiting for room)."""
        replayed = 0
        while True:
            page = await self.state.coordinator.ask(
                GetEvents(aggregate_id=target, after=after, limit=REPLAY_PAGE), EventPage
            )
            for envelope in page.events:
                self._follow(envelope)
                if envelope.notification_id in self._seen or not self._matches(envelope):
                    continue
                message = from_event(
                    envelope, self.state.hub.agent_names.get(envelope.aggregate_id)
                )
                self._remember(envelope.notification_id)
                if message is not None:
                    await self.send_now(message)
                    replayed += 1
            if page.next_cursor is None:
                return replayed
            after = page.next_cursor

    async def _unsubscribe(self, message: Unsubscribe) -> None:
        target = await self._scope_id(message.scope, message.id)
        if message.scope == "all":
            self.everything = False
        elif message.scope == "task":
            self.tasks.discard(target)  # type: ignore[arg-type]
        elif message.scope == "execution":
            self.executions.discard(target)  # type: ignore[arg-type]
            self.execution_tasks = {t: e for t, e in self.execution_tasks.items() if e != target}
        elif message.scope == "thread":
            self.threads.discard(target)  # type: ignore[arg-type]
        else:
            self.agents.discard(target)  # type: ignore[arg-type]
            self.agent_tasks = {t: a for t, a in self.agent_tasks.items() if a != target}
        await self.send_now(
            {"type": "unsubscribed", "scope": message.scope, "id": message.id,
             "request_id": message.request_id}
        )  # fmt: skip

    async def _start(self, message: Start) -> None:
        check_role(self.caller, Role.OPERATOR)
        reply = await self.state.coordinator.send(
            submit_command(self.state, message.task, self.caller, message.idempotency_key)
        )
        task_id = reply.ids["task_id"]
        await self.send_now(
            {"type": "accepted", "task_id": task_id, "request_id": message.request_id,
             "replayed": reply.ids.get("replayed") == "true"}
        )  # fmt: skip
        await self._subscribe(
            Subscribe(action="subscribe", scope="task", id=task_id, last_event_id=0)
        )

    async def _stop(self, message: Stop) -> None:
        check_role(self.caller, Role.OPERATOR)
        await self.state.coordinator.send(
            c.CancelTask(task_id=message.task_id, reason=message.reason, actor=self.caller.actor)
        )
        await self.send_now(
            {"type": "stop_accepted", "task_id": str(message.task_id),
             "request_id": message.request_id}
        )  # fmt: skip
