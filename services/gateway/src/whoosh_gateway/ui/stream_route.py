"""`GET /ui/stream`: the SSE endpoint the pages open (see live.py for the delivery).

Sign-in and the task id are checked in a dependency, before the response starts, so a
refusal is a plain 401/404 rather than a stream cut short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from whoosh_shared.contract.queries import MAX_EVENT_ID, GetTask, TaskView

from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.auth import LoginRequired, UiRefused, current_viewer
from whoosh_gateway.ui.live import stream_events

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass(frozen=True)
class StreamTarget:
    task_id: UUID | None
    after: int | None


async def stream_target(
    request: Request,
    task: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamTarget:
    """Who may listen, to what, from where. The browser's `Last-Event-ID` (its own
    reconnect) wins over `?last_event_id=` (a page's first open, or a reopen after the
    tab was hidden)."""
    await current_viewer(request)
    task_id = None
    if task:
        try:
            task_id = UUID(task)
        except ValueError:
            raise UiRefused(404, f"{task!r} is not a task id") from None
        await state_of(request).coordinator.ask(GetTask(task_id=task_id), TaskView)
    after = last_event_id
    if last_event_id_header and last_event_id_header.strip().isdigit():
        after = min(int(last_event_id_header), MAX_EVENT_ID)
    return StreamTarget(task_id, after)


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request, target: Annotated[StreamTarget, Depends(stream_target)]
) -> AsyncIterator[ServerSentEvent]:
    """Every stored event (no `task`), or one task's events and live output."""

    async def still_signed_in() -> bool:
        try:
            await current_viewer(request)
        except LoginRequired:
            return False
        return True

    state = state_of(request)
    async for event in stream_events(state, target.task_id, target.after, still_signed_in):
        if await request.is_disconnected():
            return
        yield event
