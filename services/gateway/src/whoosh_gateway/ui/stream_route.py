"""`GET /ui/stream`: the SSE endpoint the pages open (see live.py for the delivery)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from whoosh_shared.queries import MAX_EVENT_ID

from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.auth import LoginRequired, UiRefused, current_viewer
from whoosh_gateway.ui.live import stream_events

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request,
    task: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Every stored event (no `task`), or one task's events and live output. The
    browser's `Last-Event-ID` (its own reconnect) wins over `?last_event_id=` (a page's
    first open, or a reopen after the tab was hidden)."""
    await current_viewer(request)
    task_id = None
    if task:
        try:
            task_id = UUID(task)
        except ValueError:
            raise UiRefused(404, f"{task!r} is not a task id") from None
    after = last_event_id
    if last_event_id_header and last_event_id_header.strip().isdigit():
        after = min(int(last_event_id_header), MAX_EVENT_ID)

    async def still_signed_in() -> bool:
        try:
            await current_viewer(request)
        except LoginRequired:
            return False
        return True

    async for event in stream_events(state_of(request), task_id, after, still_signed_in):
        if await request.is_disconnected():
            return
        yield event
