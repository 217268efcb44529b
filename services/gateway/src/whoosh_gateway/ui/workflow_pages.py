"""Workflow executions on the dashboard (read-only): the list, filtered by workflow and
status in the URL, and one run's steps with their live status, agent, task and output.

Added the way rendering.py describes: templates plus routes; the live stream already
carries executions' events (`fleet_event`), so the pages refresh from them.
"""

from __future__ import annotations

from typing import Annotated, get_args
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from whoosh_shared.contract import workflows as w

from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.auth import UiRefused, Viewer, current_viewer
from whoosh_gateway.ui.rendering import page

router = APIRouter(prefix="/ui", include_in_schema=False)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
STATUSES: tuple[str, ...] = get_args(w.ExecutionStatus)


@router.get("/executions", response_class=HTMLResponse)
async def executions_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    params = request.query_params
    notices: list[str] = []
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        notices.append(f"ignored status={status!r}: not one of {', '.join(STATUSES)}")
        status = None
    workflow = params.get("workflow") or None
    try:
        query = w.ListExecutions(workflow=workflow, status=status, limit=100)  # type: ignore[arg-type]
    except ValueError:
        notices.append(f"ignored workflow={workflow!r}: not a workflow name")
        query = w.ListExecutions(status=status, limit=100)  # type: ignore[arg-type]
    found = await state_of(request).coordinator.ask(query, w.ExecutionList)
    return page(
        request,
        "executions",
        viewer,
        executions=found.executions,
        statuses=STATUSES,
        status=query.status,
        workflow=query.workflow,
        notices=notices,
    )


@router.get("/executions/{execution_id}", response_class=HTMLResponse)
async def execution_page(request: Request, execution_id: str, viewer: SignedIn) -> HTMLResponse:
    try:
        parsed = UUID(execution_id)
    except ValueError:
        raise UiRefused(404, f"{execution_id[:80]!r} is not an execution id") from None
    view = await state_of(request).coordinator.ask(
        w.GetExecution(execution_id=parsed), w.ExecutionView
    )
    return page(request, "execution", viewer, execution=view)
