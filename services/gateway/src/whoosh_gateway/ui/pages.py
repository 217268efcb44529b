"""The dashboard's pages (GET): what the coordinator knows, rendered on the server.

Every read goes through the same coordinator queries as `/api/v1`, as the signed-in
key, so the dashboard can show nothing the key could not read over REST.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import (
    AgentList,
    AgentView,
    AlertList,
    ApiKeyList,
    EventPage,
    FleetStats,
    GetAgent,
    GetEvents,
    GetStats,
    GetTask,
    ListAgents,
    ListAlerts,
    ListApiKeys,
    ListTasks,
    TaskPage,
    TaskView,
)

from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.routes.tasks import whole_output
from whoosh_gateway.ui.auth import UiRefused, Viewer, current_viewer
from whoosh_gateway.ui.filters import parse_filters
from whoosh_gateway.ui.gpus import Gpu, fleet_gpus, gpus_of
from whoosh_gateway.ui.rendering import page
from whoosh_gateway.ui.views import actor_of, agent_state, best_decode_tps, summary_of, timeline

router = APIRouter(prefix="/ui", include_in_schema=False)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
FEED_EVENTS = 30
HISTORY_LIMIT = 1000


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, viewer: SignedIn) -> HTMLResponse:
    coordinator = state_of(request).coordinator
    stats = await coordinator.ask(GetStats(), FleetStats)
    agents = (await coordinator.ask(ListAgents(), AgentList)).agents
    firing = (await coordinator.ask(ListAlerts(status="firing"), AlertList)).alerts
    feed_after = max(0, stats.position - FEED_EVENTS)
    feed = await coordinator.ask(GetEvents(after=feed_after, limit=FEED_EVENTS), EventPage)
    gpus = await fleet_gpus(state_of(request).metrics)
    return page(
        request,
        "overview",
        viewer,
        stats=stats,
        statuses=list(TaskStatus),
        agents=_agent_rows(agents, gpus),
        gpus=gpus,
        firing=firing,
        feed=[_event_row(e) for e in reversed(feed.events)],
        last_event_id=max([stats.position, *[e.notification_id for e in feed.events]]),
    )


@router.get("/agents", response_class=HTMLResponse)
async def agents_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    agents = (await state_of(request).coordinator.ask(ListAgents(), AgentList)).agents
    gpus = await fleet_gpus(state_of(request).metrics)
    return page(request, "agents", viewer, agents=_agent_rows(agents, gpus), gpus=gpus)


@router.get("/agents/{name}", response_class=HTMLResponse)
async def agent_page(request: Request, name: str, viewer: SignedIn) -> HTMLResponse:
    coordinator = state_of(request).coordinator
    agent = await _agent_or_404(request, name)
    recent = await coordinator.ask(ListTasks(agent=agent.spec.name, limit=50), TaskPage)
    finished = [t for t in recent.tasks if t.finished_at and t.started_at]
    chart = {  # oldest first, for uPlot: time, decode tok/s, seconds per task
        "t": [t.finished_at.timestamp() for t in reversed(finished)],  # type: ignore[union-attr]
        "tps": [t.usage.decode_tps or None for t in reversed(finished)],
        "latency": [
            (t.finished_at - t.started_at).total_seconds()  # type: ignore[operator]
            for t in reversed(finished)
        ],
    }
    return page(
        request,
        "agent",
        viewer,
        agent=agent,
        state=agent_state(agent),
        tps=best_decode_tps(agent),
        recent=recent.tasks,
        chart=chart,
        gpus=gpus_of(agent, await fleet_gpus(state_of(request).metrics), socket.gethostname()),
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    filters = parse_filters(request.query_params)
    coordinator = state_of(request).coordinator
    try:
        result = await coordinator.ask(filters.query(), TaskPage)
    except ApiError as exc:
        if exc.status != 422:
            raise
        filters.notices.append(f"ignored the filters: {exc.message}")
        filters = parse_filters({})
        result = await coordinator.ask(filters.query(), TaskPage)
    stats = await coordinator.ask(GetStats(), FleetStats)
    return page(
        request,
        "tasks",
        viewer,
        filters=filters,
        tasks=result.tasks,
        next_cursor=result.next_cursor,
        statuses=list(TaskStatus),
        stats=stats,
        notices=filters.notices,
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, task_id: str, viewer: SignedIn) -> HTMLResponse:
    task = await _task_or_404(request, task_id)
    history = await state_of(request).coordinator.ask(
        GetEvents(aggregate_id=task.id, limit=HISTORY_LIMIT), EventPage
    )
    # One snapshot: the task's view and the history as of the same version. Events the
    # history holds beyond the view (the task moved on between the two queries) come with
    # the page's stream, which resumes after `last_event_id`; counting them in it would
    # leave the page showing the older status with no event left to refresh it.
    events = [e for e in history.events if not task.version or e.version <= task.version]
    return page(
        request,
        "task",
        viewer,
        task=task,
        events=[_event_row(e) for e in events],
        timeline=timeline(events, datetime.now(UTC)),
        last_event_id=max([0, *[e.notification_id for e in events]]),
    )


@router.get("/tasks/{task_id}/output.txt", response_class=PlainTextResponse)
async def task_output(request: Request, task_id: str, viewer: SignedIn) -> PlainTextResponse:
    """The whole stored output, for when the page keeps only its tail in view."""
    task = await _task_or_404(request, task_id)
    return PlainTextResponse(
        await whole_output(state_of(request), task),
        headers={"Content-Disposition": f'attachment; filename="task-{task.id}.txt"'},
    )


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    alerts = await state_of(request).coordinator.ask(ListAlerts(limit=200), AlertList)
    return page(request, "alerts", viewer, alerts=alerts.alerts)


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    _admin_only(viewer)
    keys = await state_of(request).coordinator.ask(ListApiKeys(), ApiKeyList)
    return page(request, "keys", viewer, keys=keys.keys, created=None)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, viewer: SignedIn, after: int = 0) -> HTMLResponse:
    _admin_only(viewer)
    stats = await state_of(request).coordinator.ask(GetStats(), FleetStats)
    start = after or max(0, stats.position - 200)
    events = await state_of(request).coordinator.ask(GetEvents(after=start, limit=200), EventPage)
    return page(
        request,
        "audit",
        viewer,
        events=[_event_row(e) for e in reversed(events.events)],
        next_cursor=events.next_cursor,
        earlier=max(0, start - 200) if start else None,
    )


def _admin_only(viewer: Viewer) -> None:
    if not viewer.caller.role.allows(Role.ADMIN):
        raise UiRefused(403, f"this page is for admins; your key is {viewer.role.value}")


async def _task_or_404(request: Request, task_id: str) -> TaskView:
    try:
        parsed = UUID(task_id)
    except ValueError:
        raise UiRefused(404, f"{task_id[:80]!r} is not a task id") from None
    return await state_of(request).coordinator.ask(GetTask(task_id=parsed), TaskView)


async def _agent_or_404(request: Request, name: str) -> AgentView:
    try:
        return await state_of(request).coordinator.ask(GetAgent(name=name), AgentView)
    except ApiError as exc:
        if exc.status == 422:
            raise UiRefused(404, f"{name[:80]!r} is not an agent name") from None
        raise


def _agent_rows(agents: list[AgentView], gpus: list[Gpu]) -> list[dict[str, object]]:
    here = socket.gethostname()
    return [
        {
            "view": a,
            "state": agent_state(a),
            "tps": best_decode_tps(a),
            "loaded": a.inventory.loaded if a.inventory else [],
            "gpus": gpus_of(a, gpus, here),
        }
        for a in sorted(agents, key=lambda a: a.spec.name)
    ]


def _event_row(envelope) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "id": envelope.notification_id,
        "at": envelope.timestamp,
        "aggregate": envelope.aggregate_type,
        "aggregate_id": str(envelope.aggregate_id),
        "type": envelope.type,
        "actor": actor_of(envelope.data),
        "summary": summary_of(envelope),
    }
