"""whoosh_subscribe: the seeds' `bzzz_subscribe` for a stateless MCP server.

MCP over stateless HTTP has no channel that outlives a call (the 2026 revision removed
sessions), so a subscription is a cursor the client carries: each call returns the
stored events of its scope after `after`, in order, and waits up to `wait_s` when there
are none yet (a long poll, woken by the gateway's event hub, with progress
notifications meanwhile). The next call passes the returned `cursor`. Events are read
from the store, never only from the live stream, so a subscriber that was away misses
nothing and sees each event once, whichever gateway it calls.

Scopes: a thread, a task or an execution (that aggregate's history), an agent by name
or every agent a semantic address names (their own events: registration, health, slots
taken and released), or `all` (API key events only for admins).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.events import EVENT_TYPES, EventEnvelope
from whoosh_shared.contract.queries import (
    AgentList,
    EventPage,
    GetEvents,
    GetTask,
    ListAgents,
    TaskView,
)
from whoosh_shared.contract.work import ProgressLine

from whoosh_gateway.callers import Caller
from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.errors import ApiError
from whoosh_gateway.event_hub import EventHub

Scope = Literal["thread", "task", "execution", "agent", "address", "all"]
PAGE = 500
SCAN_PAGES = 10  # a log scan reads at most this many pages per call, then returns a cursor
POLL_S = 2.0  # the store is read again at least this often while waiting
Report = Callable[[float, float, str], Awaitable[None]]


class SubscribedEvent(BaseModel):
    event_id: int = Field(description="its position in the store's log")
    type: str = Field(description="e.g. ThreadVoteCast, TaskCompleted, AgentHealthChanged")
    aggregate_type: str
    aggregate_id: UUID
    timestamp: datetime
    actor: str | None = None
    data: dict[str, object]


class SubscriptionBatch(BaseModel):
    scope: Scope
    target: str | None
    events: list[SubscribedEvent]
    cursor: int = Field(description="pass as `after` in the next call to continue")
    waited_s: float
    more: bool = Field(description="more stored events wait: call again at once")


@dataclass(eq=False)  # hashable by identity: it sits in the hub's set of listeners
class Subscription:
    """What one call follows: an aggregate's own history (`aggregate`), or the log
    filtered to `aggregates` (None: everything the caller may see)."""

    scope: Scope
    target: str | None
    aggregate: UUID | None = None
    aggregates: set[UUID] | None = None
    types: set[str] = field(default_factory=set)
    admin: bool = False
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, envelope: EventEnvelope) -> bool:
        if self.types and envelope.type not in self.types:
            return False
        if envelope.aggregate_type == "apikey" and not self.admin:
            return False
        if self.aggregate is not None:
            return envelope.aggregate_id == self.aggregate
        return self.aggregates is None or envelope.aggregate_id in self.aggregates

    # the hub's listener protocol: wake the long poll on a matching event
    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None:
        if self.matches(envelope):
            self.woken.set()

    def offer_line(self, line: ProgressLine, text: str) -> None:
        return None


def check_types(names: list[str]) -> set[str]:
    """Event type names, each known, or a refusal naming the unknown one."""
    for name in names:
        if name not in EVENT_TYPES:
            close = difflib.get_close_matches(name, EVENT_TYPES, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ApiError(422, "invalid", f"unknown event type '{name}'{hint}")
    return set(names)


async def open_subscription(
    coordinator: CoordinatorClient,
    caller: Caller,
    scope: Scope,
    target: str | None,
    types: list[str],
) -> Subscription:
    """Check the scope's target (an unknown one is refused) and what it covers."""
    sub = Subscription(scope, target, types=check_types(types), admin=caller.role is Role.ADMIN)
    if scope == "all":
        return sub
    if not target:
        raise ApiError(422, "invalid", f"scope '{scope}' needs a target")
    if scope in ("thread", "task", "execution"):
        sub.aggregate = _uuid(target, scope)
        await _check_exists(coordinator, scope, sub.aggregate)
        return sub
    names = [target] if scope == "agent" else await _resolve(coordinator, target)
    fleet = await coordinator.ask(ListAgents(), AgentList)
    ids = {a.spec.name: a.id for a in fleet.agents}
    if scope == "agent" and target not in ids:
        raise ApiError(404, "not_found", f"unknown agent '{target}'")
    sub.aggregates = {ids[n] for n in names if n in ids}
    return sub


def _uuid(text: str, scope: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ApiError(422, "invalid", f"{text!r} is not a {scope} id") from None


async def _check_exists(coordinator: CoordinatorClient, scope: str, ident: UUID) -> None:
    if scope == "thread":
        await coordinator.ask(t.GetThread(thread_id=ident), t.ThreadView)
    elif scope == "task":
        await coordinator.ask(GetTask(task_id=ident), TaskView)
    else:  # an execution: its history starts with ExecutionStarted, or there is none
        page = await coordinator.ask(GetEvents(aggregate_id=ident, limit=1), EventPage)
        if not page.events or page.events[0].aggregate_type != "execution":
            raise ApiError(404, "not_found", f"unknown execution {ident}")


async def _resolve(coordinator: CoordinatorClient, address: str) -> list[str]:
    resolved = await coordinator.ask(t.ResolveAddress(address=address), t.Resolved)
    return resolved.agents


async def read_batch(
    coordinator: CoordinatorClient, sub: Subscription, after: int, limit: int
) -> tuple[list[EventEnvelope], int, bool]:
    """(matching stored events after `after`, the cursor, whether more are stored). A
    log scan advances the cursor over what it read even when nothing matched."""
    found: list[EventEnvelope] = []
    cursor = after
    for _ in range(1 if sub.aggregate is not None else SCAN_PAGES):
        query = GetEvents(aggregate_id=sub.aggregate, after=cursor, limit=PAGE)
        page = await coordinator.ask(query, EventPage)
        for envelope in page.events:
            if sub.matches(envelope):
                if len(found) == limit:
                    return found, cursor, True
                found.append(envelope)
            cursor = envelope.notification_id
        if page.next_cursor is None:
            return found, cursor, False
        if found:
            return found, cursor, True
    return found, cursor, True


async def subscribe(
    coordinator: CoordinatorClient,
    hub: EventHub,
    sub: Subscription,
    after: int,
    limit: int,
    wait_s: float,
    interval_s: float,
    report: Report,
) -> tuple[list[EventEnvelope], int, bool, float]:
    """The long poll: stored events now, else wait (bounded) until one comes."""
    started = time.monotonic()
    if after < 0:  # from now on: nothing stored before this moment
        after = hub.last_id
    hub.listeners.add(sub)
    try:
        events, cursor, more = await read_batch(coordinator, sub, after, limit)
        last_report = -interval_s
        while not events and not more:
            now = time.monotonic() - started
            if now >= wait_s:
                break
            if now - last_report >= interval_s:
                last_report = now
                await report(now, wait_s, f"waiting for events of {sub.scope} {sub.target or ''}")
            wake_in = min(POLL_S, wait_s - now, interval_s - (now - last_report))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.woken.wait(), max(0.01, wake_in))
            sub.woken.clear()
            events, cursor, more = await read_batch(coordinator, sub, cursor, limit)
        return events, cursor, more, time.monotonic() - started
    finally:
        hub.listeners.discard(sub)


def item(
    envelope: EventEnvelope, short: Callable[[dict[str, Any]], dict[str, Any]]
) -> SubscribedEvent:
    return SubscribedEvent(
        event_id=envelope.notification_id,
        type=envelope.type,
        aggregate_type=envelope.aggregate_type,
        aggregate_id=envelope.aggregate_id,
        timestamp=envelope.timestamp,
        actor=envelope.data.get("actor"),
        data=short(envelope.data),
    )
