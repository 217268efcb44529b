"""Threads on the dashboard (read-only): the list by state, and one thread's rounds,
votes, messages and decision. A template plus routes, as rendering.py describes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from whoosh_shared.contract import threads as t

from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.auth import UiRefused, Viewer, current_viewer
from whoosh_gateway.ui.rendering import page

router = APIRouter(prefix="/ui", include_in_schema=False)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
STATES: tuple[str, ...] = tuple(s.value for s in t.ThreadState)


@router.get("/threads", response_class=HTMLResponse)
async def threads_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    state = request.query_params.get("state") or None
    notices = []
    if state is not None and state not in STATES:
        notices.append(f"ignored state={state!r}: not one of {', '.join(STATES)}")
        state = None
    found = await state_of(request).coordinator.ask(
        t.ListThreads(state=state),
        t.ThreadList,  # type: ignore[arg-type]
    )
    return page(
        request, "threads", viewer, threads=found.threads, states=STATES, state=state,
        notices=notices,
    )  # fmt: skip


@router.get("/threads/{thread_id}", response_class=HTMLResponse)
async def thread_page(request: Request, thread_id: str, viewer: SignedIn) -> HTMLResponse:
    try:
        parsed = UUID(thread_id)
    except ValueError:
        raise UiRefused(404, f"{thread_id[:80]!r} is not a thread id") from None
    view = await state_of(request).coordinator.ask(t.GetThread(thread_id=parsed), t.ThreadView)
    return page(request, "thread", viewer, thread=view)
