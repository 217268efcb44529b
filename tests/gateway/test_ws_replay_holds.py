"""A subscription's replay and the live events that arrive meanwhile.

Live events are held while the replay reads the store, and judged only on release, after
what the replay followed. An execution's review thread is known from the execution's
ExecutionStepScheduled; when that event is only in the replay, a live vote judged on
arrival was dropped for good (seen in a WebSocket test: a review's ThreadStarted but
neither its votes nor its close). Unit-level, with a coordinator that answers the
replay only when the test says so."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from whoosh_gateway.callers import Caller
from whoosh_gateway.recent_lines import RecentLines
from whoosh_gateway.ws_protocol import Subscribe
from whoosh_gateway.ws_session import WsSession
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import EventPage


def envelope(nid: int, kind: str, aggregate: UUID, type_: str, **data: Any) -> EventEnvelope:
    return EventEnvelope(
        notification_id=nid,
        aggregate_type=kind,  # type: ignore[arg-type]
        aggregate_id=aggregate,
        version=nid,
        type=type_,
        timestamp=datetime.now(UTC),
        data=data,
    )


class SlowCoordinator:
    """Answers the replay's GetEvents with `page`, once `answer` is set."""

    def __init__(self, page: list[EventEnvelope]) -> None:
        self.page = page
        self.answer = asyncio.Event()
        self.asked = asyncio.Event()

    async def ask(self, query: Any, model: Any) -> EventPage:
        self.asked.set()
        await self.answer.wait()
        return EventPage(events=self.page, next_cursor=None)


async def test_a_vote_held_during_the_replay_goes_out_once_the_replay_follows_its_thread() -> None:
    execution, thread = uuid4(), uuid4()
    scheduled = envelope(1, "execution", execution, "ExecutionStepScheduled",
                         step="review", task_id=str(thread))  # fmt: skip
    coordinator = SlowCoordinator([scheduled])
    settings = SimpleNamespace(ws_buffer_messages=100, ws_close_timeout_s=1.0)
    hub = SimpleNamespace(agent_names={}, recent_lines=RecentLines())
    state = SimpleNamespace(settings=settings, hub=hub, coordinator=coordinator)
    session = WsSession(None, state, Caller(actor="test", role=Role.VIEWER))  # type: ignore[arg-type]

    subscribing = asyncio.create_task(
        session._subscribe(
            Subscribe(action="subscribe", scope="execution", id=str(execution), last_event_id=0)
        )
    )
    # The step's ExecutionStepScheduled went by before the subscription (only the replay
    # has it); its thread's events come live while the replay is under way.
    await coordinator.asked.wait()
    session.offer_event(envelope(2, "thread", thread, "ThreadVoteCast", voter="a"), "vote")
    session.offer_event(envelope(3, "thread", uuid4(), "ThreadVoteCast", voter="b"), "other")
    session.offer_event(envelope(4, "execution", execution, "ExecutionFinished"), "finished")
    coordinator.answer.set()
    await asyncio.wait_for(subscribing, 5)

    sent = []
    while not session.queue.empty():
        sent.append(session.queue.get_nowait())
    live = [text for text in sent if not text.startswith("{")]
    assert live == ["vote", "finished"]  # the vote, in order; another thread's is not ours
