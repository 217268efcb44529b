"""`/api/v1/me`, `/stats`, `/alerts`, `/events`: who am I, fleet counts, what fires, and
the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from whoosh_shared.contract.alerts import AlertStatus
from whoosh_shared.contract.queries import (
    MAX_EVENT_ID,
    AlertList,
    EventPage,
    FleetStats,
    GetEvents,
    GetStats,
    ListAlerts,
)

from whoosh_gateway.access import Admin, Viewer
from whoosh_gateway.api_models import Me
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES
from whoosh_gateway.gateway_state import state_of

router = APIRouter(tags=["fleet"], responses=ERROR_RESPONSES)


@router.get("/me", response_model=Me, summary="The calling key and its role")
async def me(request: Request, caller: Caller = Viewer) -> Me:
    auth = "disabled" if state_of(request).settings.insecure_no_auth else "api_key"
    return Me(actor=caller.actor, role=caller.role, key_prefix=caller.prefix, auth=auth)


@router.get("/stats", response_model=FleetStats, summary="Task and agent counts")
async def stats(request: Request, caller: Caller = Viewer) -> FleetStats:
    return await state_of(request).coordinator.ask(GetStats(), FleetStats)


@router.get("/alerts", response_model=AlertList, summary="Alerts, newest first")
async def alerts(
    request: Request,
    status: Annotated[
        AlertStatus | None, Query(description="firing or resolved; unset: both")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    caller: Caller = Viewer,
) -> AlertList:
    query = ListAlerts(status=status, limit=limit)
    return await state_of(request).coordinator.ask(query, AlertList)


@router.get("/events", response_model=EventPage, summary="Every stored event: the audit trail")
async def events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="event id seen last")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Admin,
) -> EventPage:
    """Each event that a person or program caused names its `actor` (the key) in `data`."""
    return await state_of(request).coordinator.ask(GetEvents(after=after, limit=limit), EventPage)
