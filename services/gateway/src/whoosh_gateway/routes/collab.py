"""`/api/v1/threads`, `/api/v1/budgets`, `/api/v1/resolve` and the agents' A2A cards.

Threads are written by commands (operator; budgets: admin) and read from the
coordinator's projection; a thread's stored history comes from the store.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.agents import NAME_PATTERN, Strict
from whoosh_shared.contract.budgets import (
    SCOPE_PATTERN,
    BudgetList,
    BudgetView,
    ListBudgets,
    Period,
    SetBudget,
)
from whoosh_shared.contract.queries import AgentView, EventPage, GetAgent, GetEvents

from whoosh_gateway.access import Admin, Operator, Viewer
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES, ApiError
from whoosh_gateway.gateway_state import state_of

router = APIRouter(tags=["threads"], responses=ERROR_RESPONSES)
READ_BACK_TRIES = 20


class Post(Strict):
    body: str = Field(min_length=1, max_length=t.MAX_BODY)


class Decision(Strict):
    decision: str = Field(min_length=1, max_length=2000)
    reason: str = Field(default="", max_length=2000)


class Close(Strict):
    reason: str = Field(default="closed by user", min_length=1, max_length=2000)


class BudgetLimits(Strict):
    tokens: int | None = Field(default=None, ge=0)
    usd: float | None = Field(default=None, ge=0)
    period: Period = Period.NONE
    warn_at: float = Field(default=0.8, gt=0, le=1)
    on_exhausted: Literal["refuse", "stop"] = "refuse"


@router.post("/threads", status_code=201, response_model=t.ThreadView, summary="Start a thread")
async def start_thread(
    request: Request, body: t.StartThread, caller: Caller = Operator
) -> t.ThreadView:
    command = body.model_copy(update={"actor": caller.actor})
    reply = await state_of(request).coordinator.send(command)
    return await _read_back(request, UUID(reply.ids["thread_id"]))


@router.get("/threads", response_model=t.ThreadList, summary="Threads, newest first")
async def list_threads(
    request: Request,
    state: t.ThreadState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Viewer,
) -> t.ThreadList:
    query = t.ListThreads(state=state, limit=limit)
    return await state_of(request).coordinator.ask(query, t.ThreadList)


@router.get("/threads/{thread_id}", response_model=t.ThreadView, summary="One thread")
async def get_thread(request: Request, thread_id: UUID, caller: Caller = Viewer) -> t.ThreadView:
    return await state_of(request).coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)


@router.get("/threads/{thread_id}/events", response_model=EventPage, summary="Stored history")
async def thread_events(
    request: Request,
    thread_id: UUID,
    after: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Viewer,
) -> EventPage:
    await get_thread(request, thread_id, caller)  # 404 for a thread that does not exist
    query = GetEvents(aggregate_id=thread_id, after=after, limit=limit)
    return await state_of(request).coordinator.ask(query, EventPage)


@router.post("/threads/{thread_id}/messages", response_model=t.ThreadView, summary="Post")
async def post_message(
    request: Request, thread_id: UUID, body: Post, caller: Caller = Operator
) -> t.ThreadView:
    command = t.PostToThread(thread_id=thread_id, body=body.body, actor=caller.actor)
    await state_of(request).coordinator.send(command)
    return await _read_back(request, thread_id)


@router.post("/threads/{thread_id}/decision", response_model=t.ThreadView, summary="Decide")
async def decide(
    request: Request, thread_id: UUID, body: Decision, caller: Caller = Operator
) -> t.ThreadView:
    command = t.DecideThread(
        thread_id=thread_id, decision=body.decision, reason=body.reason, actor=caller.actor
    )
    await state_of(request).coordinator.send(command)
    return await _read_back(request, thread_id, closed=True)


@router.post("/threads/{thread_id}/close", response_model=t.ThreadView, summary="Close")
async def close(
    request: Request, thread_id: UUID, body: Close, caller: Caller = Operator
) -> t.ThreadView:
    command = t.CloseThread(thread_id=thread_id, reason=body.reason, actor=caller.actor)
    await state_of(request).coordinator.send(command)
    return await _read_back(request, thread_id, closed=True)


@router.get("/budgets", response_model=BudgetList, summary="Budgets: limits, use, reservations")
async def list_budgets(request: Request, caller: Caller = Viewer) -> BudgetList:
    return await state_of(request).coordinator.ask(ListBudgets(), BudgetList)


@router.get("/budgets/{scope}", response_model=BudgetView, summary="One budget and its use")
async def get_budget(
    request: Request,
    scope: Annotated[str, Path(pattern=SCOPE_PATTERN)],
    caller: Caller = Viewer,
) -> BudgetView:
    budgets = await state_of(request).coordinator.ask(ListBudgets(), BudgetList)
    view = next((b for b in budgets.budgets if b.scope == scope), None)
    if view is None:
        raise ApiError(404, "not_found", f"no budget for scope '{scope}'")
    return view


@router.put("/budgets/{scope}", response_model=BudgetView, summary="Set a budget (admin)")
async def set_budget(
    request: Request,
    body: BudgetLimits,
    scope: Annotated[str, Path(pattern=SCOPE_PATTERN)],
    caller: Caller = Admin,
) -> BudgetView:
    if body.tokens is None and body.usd is None:
        raise ApiError(422, "invalid", "give a limit: tokens and/or usd")
    command = SetBudget(scope=scope, actor=caller.actor, **body.model_dump())
    await state_of(request).coordinator.send(command)

    for _ in range(READ_BACK_TRIES):
        budgets = await state_of(request).coordinator.ask(ListBudgets(), BudgetList)
        view = next((b for b in budgets.budgets if b.scope == scope), None)
        if view is not None and _settings_of(view) == body.model_dump():
            return view
        await asyncio.sleep(0.05)
    raise ApiError(504, "timeout", f"budget '{scope}' was set but not yet readable")


@router.get("/resolve", response_model=t.Resolved, summary="Agents a semantic address names")
async def resolve(
    request: Request,
    address: Annotated[str, Query(min_length=1, max_length=300)],
    caller: Caller = Viewer,
) -> t.Resolved:
    return await state_of(request).coordinator.ask(t.ResolveAddress(address=address), t.Resolved)


@router.get("/agents/{name}/card", summary="The agent as an A2A AgentCard")
async def agent_card(
    request: Request,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    caller: Caller = Viewer,
) -> dict[str, Any]:
    view = await state_of(request).coordinator.ask(GetAgent(name=name), AgentView)
    return a2a_card(view, str(request.base_url).rstrip("/"))


def a2a_card(view: AgentView, base_url: str) -> dict[str, Any]:
    """The A2A protocol's AgentCard shape (name, description, url, skills from the
    agent's capabilities), so A2A-speaking tools can discover the fleet."""
    spec = view.spec
    skills = [
        {
            "id": capability,
            "name": capability,
            "description": f"{capability} (proficiency {proficiency:g})",
            "tags": [capability, *([spec.specialization] if spec.specialization else [])],
        }
        for capability, proficiency in sorted(spec.capabilities.items())
    ]
    description = spec.display_name or spec.specialization or f"{spec.type.value} agent"
    return {
        "protocolVersion": "0.3.0",
        "name": spec.name,
        "description": description,
        "url": f"{base_url}/api/v1/agents/{spec.name}",
        "version": "1",
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
    }


async def _read_back(request: Request, thread_id: UUID, closed: bool = False) -> t.ThreadView:
    """The thread after a write; with several coordinators the answering one may fold the
    write a moment later, so a miss (or a not-yet-closed state) is retried briefly."""
    coordinator = state_of(request).coordinator
    for _ in range(READ_BACK_TRIES - 1):
        try:
            view = await coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)
            if not closed or view.state is t.ThreadState.CLOSED:
                return view
        except ApiError as exc:
            if exc.code != "not_found":
                raise
        await asyncio.sleep(0.05)
    return await coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)


def _settings_of(view: BudgetView) -> dict[str, Any]:
    """A budget view's settings, in the shape of the PUT body (to tell a read-back
    that already shows this change from one that does not yet)."""
    return BudgetLimits(
        tokens=view.tokens,
        usd=view.usd,
        period=view.period,
        warn_at=view.warn_at,
        on_exhausted=view.on_exhausted,  # type: ignore[arg-type]
    ).model_dump()
