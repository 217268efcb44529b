"""Workflows for MCP clients: list the stored workflows and read an execution (viewer);
start, cancel, retry an execution and decide its approvals (operator), as REST does. Runs
and reads take an optional bounded wait.

Why waits end at an approval too: an agent waiting on an execution that needs a human
would otherwise burn its whole wait; it gets the execution back with the steps that wait
for a decision, and a human answers on the CLI, REST or the dashboard. Step outputs are
cut to their tail (`gateway.mcp.tail_bytes`), like a task's: the whole output of a step
is its task's resource, whoosh://tasks/{task_id}/output."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call
from whoosh_gateway.mcp.models import tail
from whoosh_gateway.mcp.read_tools import READ_ONLY
from whoosh_gateway.mcp.waiting import awaiting_approval, wait_for_execution
from whoosh_gateway.mcp.write_tools import CANCEL, ENABLE, SUBMIT

VIEWER_WORKFLOW_TOOLS = ("whoosh_list_workflows", "whoosh_get_execution")
OPERATOR_WORKFLOW_TOOLS = (
    "whoosh_run_workflow",
    "whoosh_cancel_execution",
    "whoosh_retry_execution",
    "whoosh_decide_approval",
)
ExecutionId = Annotated[UUID, Field(description="the execution's id (a UUID)")]
SubmitWait = Annotated[
    float, Field(ge=0, le=3600, description="wait this long (at most 50 s) for it to end")
]


class ExecutionResult(BaseModel):
    execution: w.ExecutionView = Field(description="per-step status, agent, timing, usage")
    ended: bool = Field(description="the execution reached an end (succeeded, failed, ...)")
    awaiting_approval: list[str] = Field(
        description="approval steps waiting for a decision (whoosh_decide_approval, or a "
        "human on the CLI, REST or dashboard); a wait returns early when there are any"
    )
    truncated_steps: list[str] = Field(
        description="steps whose output is cut to its tail: the whole is the step task's "
        "resource whoosh://tasks/{task_id}/output"
    )
    waited_s: float = 0.0


def execution_result(view: w.ExecutionView, tail_bytes: int, waited_s: float) -> ExecutionResult:
    steps, truncated = [], []
    for step in view.steps:
        output, cut = tail(step.output, tail_bytes)
        steps.append(step.model_copy(update={"output": output}) if cut else step)
        if cut:
            truncated.append(step.id)
    return ExecutionResult(
        execution=view.model_copy(update={"steps": steps}),
        ended=view.status != "running",
        awaiting_approval=awaiting_approval(view),
        truncated_steps=truncated,
        waited_s=round(waited_s, 3),
    )


def register_workflow_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator
    mcp = state.settings.mcp

    async def waited(ctx: Context, execution_id: UUID, wait_s: float) -> ExecutionResult:
        async def report(progress: float, total: float, message: str) -> None:
            await ctx.report_progress(progress, total, message)

        view, _, seconds = await wait_for_execution(
            coordinator, state.hub, execution_id, wait_s, mcp.progress_interval_s, report
        )
        return execution_result(view, mcp.tail_bytes, seconds)

    @server.tool(annotations=READ_ONLY)
    async def whoosh_list_workflows(ctx: Context) -> w.WorkflowList:
        """Stored workflows: name, description, latest version, number of steps, origin
        (yaml, n8n, or the template it came from). Run one with whoosh_run_workflow."""
        async with tool_call(ctx, "whoosh_list_workflows", Role.VIEWER):
            return await coordinator.ask(w.ListWorkflows(), w.WorkflowList)

    @server.tool(annotations=SUBMIT)
    async def whoosh_run_workflow(
        ctx: Context,
        workflow: Annotated[str, Field(pattern=w.NAME_PATTERN, description="its name")],
        inputs: Annotated[dict[str, Any], Field(description="by name")] = {},  # noqa: B006
        version: Annotated[int | None, Field(ge=1, description="default: the latest")] = None,
        wait_s: SubmitWait = 0.0,
    ) -> ExecutionResult:
        """Start an execution of a stored workflow (inputs are checked against its typed
        inputs first). Returns at once, or after `wait_s` or its end or an approval;
        follow it with whoosh_get_execution. Ending a wait never cancels it."""
        async with tool_call(ctx, "whoosh_run_workflow", Role.OPERATOR) as caller:
            command = w.RunWorkflow(
                workflow=workflow, inputs=inputs, version=version, actor=caller.actor
            )
            reply = await coordinator.send(command)
            execution_id = UUID(reply.ids["execution_id"])
            return await waited(ctx, execution_id, min(wait_s, mcp.max_submit_wait_s))

    @server.tool(annotations=READ_ONLY)
    async def whoosh_get_execution(
        ctx: Context,
        execution_id: ExecutionId,
        wait_s: Annotated[
            float,
            Field(
                ge=0,
                le=3600,
                description="wait this long (at most gateway.mcp.max_wait_s, 240) for it to "
                "end or to need an approval",
            ),
        ] = 0.0,
    ) -> ExecutionResult:
        """An execution with each step's status, agent, attempts, timing, tokens, cost and
        the tail of its output; with `wait_s`, a bounded long poll that sends progress
        (the running steps and their latest output line) and never cancels anything."""
        async with tool_call(ctx, "whoosh_get_execution", Role.VIEWER):
            return await waited(ctx, execution_id, min(wait_s, mcp.max_wait_s))

    @server.tool(annotations=CANCEL)
    async def whoosh_cancel_execution(
        ctx: Context,
        execution_id: ExecutionId,
        reason: Annotated[str, Field(min_length=1, max_length=2000)] = "cancelled over MCP",
    ) -> ExecutionResult:
        """Cancel an execution: every running step is stopped (its process group killed,
        its stream closed) and the steps not yet run are skipped."""
        async with tool_call(ctx, "whoosh_cancel_execution", Role.OPERATOR) as caller:
            command = w.CancelExecution(
                execution_id=execution_id, reason=reason, actor=caller.actor
            )
            await coordinator.send(command)
            return await waited(ctx, execution_id, 0.0)

    @server.tool(annotations=SUBMIT)
    async def whoosh_retry_execution(
        ctx: Context,
        execution_id: ExecutionId,
        from_step: Annotated[
            str | None,
            Field(pattern=w.STEP_PATTERN, description="re-run this step and all after it"),
        ] = None,
        wait_s: SubmitWait = 0.0,
    ) -> ExecutionResult:
        """Run again the steps of an ended execution that did not succeed (or `from_step`
        and everything after it), keeping the outputs of the steps that succeeded."""
        async with tool_call(ctx, "whoosh_retry_execution", Role.OPERATOR) as caller:
            command = w.RetryExecution(
                execution_id=execution_id, from_step=from_step, actor=caller.actor
            )
            await coordinator.send(command)
            return await waited(ctx, execution_id, min(wait_s, mcp.max_submit_wait_s))

    @server.tool(annotations=ENABLE)
    async def whoosh_decide_approval(
        ctx: Context,
        execution_id: ExecutionId,
        step: Annotated[str, Field(pattern=w.STEP_PATTERN, description="the approval step")],
        approve: Annotated[bool, Field(description="true approves, false rejects")],
        comment: Annotated[str, Field(max_length=2000)] = "",
    ) -> ExecutionResult:
        """Approve or reject an approval step that waits (recorded with this key as the
        decider, as on REST and the CLI)."""
        async with tool_call(ctx, "whoosh_decide_approval", Role.OPERATOR) as caller:
            command = w.DecideApproval(
                execution_id=execution_id, step=step, approve=approve, comment=comment,
                actor=caller.actor,
            )  # fmt: skip
            await coordinator.send(command)
            return await waited(ctx, execution_id, 0.0)
