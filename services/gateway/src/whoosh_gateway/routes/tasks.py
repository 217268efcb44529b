"""`/api/v1/tasks`: submit, read, list, cancel; output and the full event history."""

from __future__ import annotations

import contextlib
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentName, CapabilityName
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.explain import ExplainTask, TaskExplanation
from whoosh_shared.contract.queries import (
    MAX_EVENT_ID,
    EventPage,
    GetEvents,
    GetTask,
    ListTasks,
    TaskPage,
    TaskView,
)
from whoosh_shared.runtime.blob_store import BlobMissing, BlobStore

from whoosh_gateway.access import Operator, Viewer
from whoosh_gateway.api_models import (
    CancelRequest,
    TaskAccepted,
    TaskList,
    TaskOutput,
    TaskSubmission,
)
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES, ApiError
from whoosh_gateway.gateway_state import GatewayState, state_of

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


def submit_command(
    state: GatewayState,
    body: TaskSubmission,
    caller: Caller,
    idempotency_key: str | None = None,
) -> c.SubmitTask:
    """SubmitTask with what only the gateway sets: who asked, and the key's task limit."""
    return c.SubmitTask(
        **body.model_dump(exclude_unset=True),
        actor=caller.actor,
        max_active_tasks=state.settings.rate_limits.concurrent_tasks,
        idempotency_key=idempotency_key,
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=c.IDEMPOTENCY_KEY_PATTERN,
        description="send the same key again (e.g. after a timeout or a 503) to get the task "
        "the first request created instead of a second one; kept per API key",
    ),
]


@router.post("", status_code=201, response_model=TaskAccepted, summary="Submit a task")
async def submit_task(
    request: Request,
    response: Response,
    body: TaskSubmission,
    idempotency_key: IdempotencyKey = None,
    caller: Caller = Operator,
) -> TaskAccepted:
    """201 for a new task; 200 with `Idempotent-Replayed: true` when the Idempotency-Key
    had already created it (nothing new is stored)."""
    state = state_of(request)
    reply = await state.coordinator.send(submit_command(state, body, caller, idempotency_key))
    task_id = UUID(reply.ids["task_id"])
    response.headers["Location"] = f"{request.url.path}/{task_id}"
    if reply.ids.get("replayed") == "true":
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return TaskAccepted(task_id=task_id)


@router.get("", response_model=TaskList, summary="Tasks, newest first, filtered")
async def list_tasks(
    request: Request,
    status: TaskStatus | None = None,
    agent: Annotated[AgentName | None, Query(description="ran (or tried) on this agent")] = None,
    capability: Annotated[CapabilityName | None, Query(description="required it")] = None,
    submitted_after: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
    submitted_before: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor")] = None,
    caller: Caller = Viewer,
) -> TaskList:
    if cursor is not None and not cursor.isdigit():
        raise ApiError(400, "invalid_cursor", f"invalid cursor {cursor!r}: use a next_cursor")
    query = ListTasks(
        status=status,
        agent=agent,
        capability=capability,
        submitted_after=submitted_after,
        submitted_before=submitted_before,
        limit=limit,
        after=cursor,
    )
    page = await state_of(request).coordinator.ask(query, TaskPage)
    return TaskList(items=page.tasks, next_cursor=page.next_cursor)


@router.get("/{task_id}", response_model=TaskView, summary="One task")
async def get_task(request: Request, task_id: UUID, caller: Caller = Viewer) -> TaskView:
    return await state_of(request).coordinator.ask(GetTask(task_id=task_id), TaskView)


@router.get(
    "/{task_id}/prompt",
    response_class=PlainTextResponse,
    summary="The task's whole prompt (views and lists carry a preview of a large one)",
)
async def get_prompt(request: Request, task_id: UUID, caller: Caller = Viewer) -> PlainTextResponse:
    state = state_of(request)
    view = await state.coordinator.ask(GetTask(task_id=task_id), TaskView)
    if view.prompt_ref is None:
        return PlainTextResponse(view.prompt)
    try:
        return PlainTextResponse(await BlobStore(state.bus.js).get_text(view.prompt_ref))
    except BlobMissing as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get(
    "/{task_id}/explain",
    response_model=TaskExplanation,
    summary="Why the scheduler places this task where it does (each agent's verdict)",
)
async def explain_task(request: Request, task_id: UUID, caller: Caller = Viewer) -> TaskExplanation:
    return await state_of(request).coordinator.ask(ExplainTask(task_id=task_id), TaskExplanation)


@router.post("/{task_id}/cancel", response_model=TaskView, summary="Cancel (stops a running task)")
async def cancel_task(
    request: Request,
    task_id: UUID,
    body: Annotated[CancelRequest | None, Body()] = None,
    caller: Caller = Operator,
) -> TaskView:
    reason = (body or CancelRequest()).reason
    coordinator = state_of(request).coordinator
    await coordinator.send(c.CancelTask(task_id=task_id, reason=reason, actor=caller.actor))
    return await coordinator.ask(GetTask(task_id=task_id), TaskView)


async def whole_output(state: GatewayState, view: TaskView) -> str:
    """The task's whole kept output: a long one is read from the blob store (the task's
    view carries only its head and tail), unless it is gone from there."""
    if view.output_ref is None:
        return view.output
    with contextlib.suppress(BlobMissing):  # gone: the head and tail are what is left
        return await BlobStore(state.bus.js).get_text(view.output_ref)
    return view.output


@router.get("/{task_id}/output", response_model=TaskOutput, summary="A task's output and usage")
async def get_output(request: Request, task_id: UUID, caller: Caller = Viewer) -> TaskOutput:
    """The whole kept output: a long one is read from the blob store (the task's view
    carries only its head and tail)."""
    state = state_of(request)
    view = await state.coordinator.ask(GetTask(task_id=task_id), TaskView)
    return TaskOutput(
        task_id=view.id,
        status=view.status,
        output=await whole_output(state, view),
        exit_code=view.exit_code,
        reason=view.reason,
        stderr=view.stderr,
        usage=view.usage,
    )


@router.get("/{task_id}/events", response_model=EventPage, summary="The task's stored history")
async def get_events(
    request: Request,
    task_id: UUID,
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_ID, description="event id (notification id) seen last")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Viewer,
) -> EventPage:
    coordinator = state_of(request).coordinator
    await coordinator.ask(GetTask(task_id=task_id), TaskView)  # 404 for an unknown task
    return await coordinator.ask(
        GetEvents(aggregate_id=task_id, after=after, limit=limit), EventPage
    )
