"""`/api/v1/workflows` and `/api/v1/executions`: store (or import n8n), list, read, run
workflows; read, cancel, retry and approve executions, with per-step status and usage."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import Field, model_validator
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.queries import MAX_EVENT_ID, EventPage, GetEvents
from whoosh_shared.contract.workflow_templates import list_templates

from whoosh_gateway.access import Operator, Viewer
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES
from whoosh_gateway.gateway_state import state_of

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)


class WorkflowSubmission(Strict):
    """Native YAML (`whoosh: workflow/v1`) or an n8n export as text, or a template's name."""

    source: str | None = Field(default=None, max_length=w.MAX_SOURCE_CHARS)
    template: str | None = Field(default=None, pattern=w.NAME_PATTERN)
    name: str | None = Field(default=None, pattern=w.NAME_PATTERN, description="overrides")
    format: Literal["auto", "yaml", "n8n"] = "auto"
    filename: str = Field(default="workflow", max_length=300)

    @model_validator(mode="after")
    def _one_source(self) -> WorkflowSubmission:
        if (self.source is None) == (self.template is None):
            raise ValueError("give exactly one of 'source' and 'template'")
        return self


class WorkflowStored(Strict):
    workflow_id: UUID
    name: str
    version: int


class RunRequest(Strict):
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1)


class ExecutionStarted(Strict):
    execution_id: UUID


class CancelExecutionRequest(Strict):
    reason: str = Field(default="cancelled by user", min_length=1, max_length=2000)


class RetryRequest(Strict):
    from_step: str | None = Field(default=None, pattern=w.STEP_PATTERN)


class DecisionRequest(Strict):
    step: str = Field(pattern=w.STEP_PATTERN)
    comment: str = Field(default="", max_length=2000)


class TemplateList(Strict):
    templates: list[w.TemplateInfo]


@router.get("/workflows", response_model=w.WorkflowList, summary="Stored workflows")
async def list_workflows(request: Request, caller: Caller = Viewer) -> w.WorkflowList:
    return await state_of(request).coordinator.ask(w.ListWorkflows(), w.WorkflowList)


@router.post(
    "/workflows", status_code=201, response_model=WorkflowStored, summary="Store or import"
)
async def create_workflow(
    request: Request, response: Response, body: WorkflowSubmission, caller: Caller = Operator
) -> WorkflowStored:
    """A new workflow or a new version of one; refused (422, every problem listed) when
    it does not check, and then nothing is stored."""
    command = w.CreateWorkflow(**body.model_dump(exclude_unset=True), actor=caller.actor)
    reply = await state_of(request).coordinator.send(command)
    response.headers["Location"] = f"{request.url.path}/{reply.ids['name']}"
    return WorkflowStored(
        workflow_id=UUID(reply.ids["workflow_id"]),
        name=reply.ids["name"],
        version=int(reply.ids["version"]),
    )


@router.get("/workflows/templates", response_model=TemplateList, summary="Shipped templates")
async def templates(caller: Caller = Viewer) -> TemplateList:
    return TemplateList(templates=list_templates())


@router.get("/workflows/{name}", response_model=w.WorkflowView, summary="One workflow")
async def get_workflow(
    request: Request,
    name: Annotated[str, Path(pattern=w.NAME_PATTERN)],
    version: Annotated[int | None, Query(ge=1)] = None,
    caller: Caller = Viewer,
) -> w.WorkflowView:
    query = w.GetWorkflow(name=name, version=version)
    return await state_of(request).coordinator.ask(query, w.WorkflowView)


@router.post(
    "/workflows/{name}/run", status_code=201, response_model=ExecutionStarted, summary="Run"
)
async def run_workflow(
    request: Request,
    response: Response,
    name: Annotated[str, Path(pattern=w.NAME_PATTERN)],
    body: Annotated[RunRequest | None, Body()] = None,
    caller: Caller = Operator,
) -> ExecutionStarted:
    run = body or RunRequest()
    command = w.RunWorkflow(
        workflow=name, inputs=run.inputs, version=run.version, actor=caller.actor
    )
    reply = await state_of(request).coordinator.send(command)
    execution_id = UUID(reply.ids["execution_id"])
    response.headers["Location"] = f"/api/v1/executions/{execution_id}"
    return ExecutionStarted(execution_id=execution_id)


@router.get("/executions", response_model=w.ExecutionList, summary="Executions, newest first")
async def list_executions(
    request: Request,
    workflow: Annotated[str | None, Query(pattern=w.NAME_PATTERN)] = None,
    status: w.ExecutionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    caller: Caller = Viewer,
) -> w.ExecutionList:
    query = w.ListExecutions(workflow=workflow, status=status, limit=limit)
    return await state_of(request).coordinator.ask(query, w.ExecutionList)


@router.get("/executions/{execution_id}", response_model=w.ExecutionView, summary="One run")
async def get_execution(
    request: Request, execution_id: UUID, caller: Caller = Viewer
) -> w.ExecutionView:
    query = w.GetExecution(execution_id=execution_id)
    return await state_of(request).coordinator.ask(query, w.ExecutionView)


async def _then_view(request: Request, command: w.ExecutionCommand) -> w.ExecutionView:
    coordinator = state_of(request).coordinator
    await coordinator.send(command)
    query = w.GetExecution(execution_id=command.execution_id)
    return await coordinator.ask(query, w.ExecutionView)


@router.post("/executions/{execution_id}/cancel", response_model=w.ExecutionView, summary="Cancel")
async def cancel_execution(
    request: Request,
    execution_id: UUID,
    body: Annotated[CancelExecutionRequest | None, Body()] = None,
    caller: Caller = Operator,
) -> w.ExecutionView:
    reason = (body or CancelExecutionRequest()).reason
    command = w.CancelExecution(execution_id=execution_id, reason=reason, actor=caller.actor)
    return await _then_view(request, command)


@router.post(
    "/executions/{execution_id}/retry",
    response_model=w.ExecutionView,
    summary="Run the failed steps (or from_step and after) again, keeping the others",
)
async def retry_execution(
    request: Request,
    execution_id: UUID,
    body: Annotated[RetryRequest | None, Body()] = None,
    caller: Caller = Operator,
) -> w.ExecutionView:
    from_step = (body or RetryRequest()).from_step
    command = w.RetryExecution(execution_id=execution_id, from_step=from_step, actor=caller.actor)
    return await _then_view(request, command)


@router.post(
    "/executions/{execution_id}/approve", response_model=w.ExecutionView, summary="Approve"
)
async def approve(
    request: Request, execution_id: UUID, body: DecisionRequest, caller: Caller = Operator
) -> w.ExecutionView:
    command = w.DecideApproval(
        execution_id=execution_id, step=body.step, approve=True, comment=body.comment,
        actor=caller.actor,
    )  # fmt: skip
    return await _then_view(request, command)


@router.post("/executions/{execution_id}/reject", response_model=w.ExecutionView, summary="Reject")
async def reject(
    request: Request, execution_id: UUID, body: DecisionRequest, caller: Caller = Operator
) -> w.ExecutionView:
    command = w.DecideApproval(
        execution_id=execution_id, step=body.step, approve=False, comment=body.comment,
        actor=caller.actor,
    )  # fmt: skip
    return await _then_view(request, command)


@router.get("/executions/{execution_id}/events", response_model=EventPage, summary="Stored history")
async def execution_events(
    request: Request,
    execution_id: UUID,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Viewer,
) -> EventPage:
    coordinator = state_of(request).coordinator
    await coordinator.ask(w.GetExecution(execution_id=execution_id), w.ExecutionView)
    query = GetEvents(aggregate_id=execution_id, after=after, limit=limit)
    return await coordinator.ask(query, EventPage)
