"""The operator's tools: submit, cancel, register an agent, enable or disable one.

Each sends the same command REST sends, with the caller's key as `actor` (the audit
trail) and the key's task limit, so MCP is not a side door around either.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentName, AgentSpec, CapabilityName, Weight
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.commands import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MAX_PROMPT_CHARS,
    MIN_PRIORITY,
    LlmOptions,
)
from whoosh_shared.contract.connectivity import FAILED_TEST_CODE
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.queries import AgentView, GetAgent, GetTask, TaskView

from whoosh_gateway.connectivity_probe import probe_connectivity
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call
from whoosh_gateway.mcp.models import AgentWriteResult, Submitted, TaskSummary, agent_summary
from whoosh_gateway.mcp.models import task_summary as summarise
from whoosh_gateway.mcp.read_tools import wait_result

OPERATOR_TOOLS = (
    "whoosh_submit_task",
    "whoosh_cancel_task",
    "whoosh_register_agent",
    "whoosh_set_agent_enabled",
    "whoosh_set_agent_weight",
)
SUBMIT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
CANCEL = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
REGISTER = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
)
ENABLE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def register_write_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator
    mcp = state.settings.mcp

    @server.tool(annotations=SUBMIT)
    async def whoosh_submit_task(
        ctx: Context,
        prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)],
        capabilities: Annotated[list[CapabilityName], Field(default_factory=list, max_length=100)],
        agent: Annotated[AgentName | None, Field(description="pin it to this agent")] = None,
        agent_type: AgentType | None = None,
        model: Annotated[str | None, Field(max_length=200)] = None,
        priority: Annotated[int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)] = DEFAULT_PRIORITY,
        timeout_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 600.0,
        llm: Annotated[LlmOptions | None, Field(description="LLM agents: system, options")] = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                pattern=c.IDEMPOTENCY_KEY_PATTERN,
                description="send the same key again (after a timeout) to get the same task, "
                "not a second one",
            ),
        ] = None,
        depends_on: Annotated[
            list[UUID] | None,
            Field(
                max_length=100,
                description="task ids it waits for; skipped if one does not complete",
            ),
        ] = None,
        wait_s: Annotated[
            float, Field(ge=0, le=3600, description="wait this long for the end (at most 50)")
        ] = 0.0,
    ) -> Submitted:
        """Queue a task on the fleet and return its id at once (or after a short wait_s).
        For longer work, call whoosh_wait_task with the id."""
        async with tool_call(ctx, "whoosh_submit_task", Role.OPERATOR) as caller:
            fields: dict[str, Any] = {
                "prompt": prompt,
                "capabilities": capabilities,
                "agent": agent,
                "agent_type": agent_type,
                "model": model,
                "priority": priority,
                "timeout_s": timeout_s,
                "llm": llm,
                "depends_on": depends_on or None,
            }
            if idempotency_key is not None:
                fields["idempotency_key"] = idempotency_key
            reply = await coordinator.send(
                c.SubmitTask(
                    **{k: v for k, v in fields.items() if v is not None},
                    actor=caller.actor,
                    max_active_tasks=state.settings.rate_limits.concurrent_tasks,
                )
            )
            task_id = UUID(reply.ids["task_id"])
            result = Submitted(task_id=task_id, replayed=reply.ids.get("replayed") == "true")
            wait = min(wait_s, mcp.max_submit_wait_s)
            if wait > 0:
                waited = await wait_result(state, ctx, task_id, wait)
                result.task, result.ended = waited.task, waited.ended
            return result

    @server.tool(annotations=CANCEL)
    async def whoosh_cancel_task(
        ctx: Context,
        task_id: Annotated[UUID, Field(description="the task's id")],
        reason: Annotated[str, Field(min_length=1, max_length=2000)] = "cancelled over MCP",
    ) -> TaskSummary:
        """Cancel a task; a running one is stopped (its process group is killed)."""
        async with tool_call(ctx, "whoosh_cancel_task", Role.OPERATOR) as caller:
            await coordinator.send(c.CancelTask(task_id=task_id, reason=reason, actor=caller.actor))
            view = await coordinator.ask(GetTask(task_id=task_id), TaskView)
            return summarise(view, mcp.tail_bytes)

    @server.tool(annotations=REGISTER)
    async def whoosh_register_agent(
        ctx: Context,
        spec: AgentSpec,
        test_connectivity: Annotated[
            bool, Field(description="CLI agents on a host: reach it and find the CLI first")
        ] = True,
    ) -> AgentWriteResult:
        """Register an agent (or change a registered one), under the same rules as REST."""
        async with tool_call(ctx, "whoosh_register_agent", Role.OPERATOR) as caller:
            tested = "not_tested"
            if test_connectivity:  # the coordinator's rules first: a refused agent is not tried
                await coordinator.send(
                    c.RegisterAgent(
                        spec=spec, actor=caller.actor, role=caller.role, check_only=True
                    )
                )
                result = await probe_connectivity(state.bus, spec)
                if result.ok is False:
                    raise ToolError(
                        f"{FAILED_TEST_CODE}: agent '{spec.name}' cannot be reached: "
                        f"{result.detail}"
                    )
                tested = "ok" if result.ok else "not_tested"
            await coordinator.send(c.RegisterAgent(spec=spec, actor=caller.actor, role=caller.role))
            view = await read_back(state, spec.name)
            return AgentWriteResult(agent=agent_summary(view), connectivity=tested)

    @server.tool(annotations=ENABLE)
    async def whoosh_set_agent_enabled(
        ctx: Context,
        name: Annotated[AgentName, Field(description="the agent's name")],
        enabled: Annotated[bool, Field(description="false: no new work; running work ends")],
    ) -> AgentWriteResult:
        """Give an agent work again, or stop giving it new work at once."""
        async with tool_call(ctx, "whoosh_set_agent_enabled", Role.OPERATOR) as caller:
            command: c.Command = (
                c.EnableAgent(name=name, actor=caller.actor)
                if enabled
                else c.DisableAgent(name=name, actor=caller.actor)
            )
            await coordinator.send(command)
            return AgentWriteResult(agent=agent_summary(await read_back(state, name)))

    @server.tool(annotations=ENABLE)
    async def whoosh_set_agent_weight(
        ctx: Context,
        name: Annotated[AgentName, Field(description="the agent's name")],
        weight: Annotated[Weight, Field(description="0..100; 0 drains it (no new work)")],
    ) -> AgentWriteResult:
        """Set an agent's traffic weight: its share of new work among free eligible agents
        (a rollout step, or 0 to drain it while running work finishes)."""
        async with tool_call(ctx, "whoosh_set_agent_weight", Role.OPERATOR) as caller:
            await coordinator.send(c.SetAgentWeight(name=name, weight=weight, actor=caller.actor))
            return AgentWriteResult(agent=agent_summary(await read_back(state, name)))


async def read_back(state: GatewayState, name: str) -> AgentView:
    """The agent after a write (a second coordinator may fold it a moment later)."""
    for _ in range(19):
        try:
            return await state.coordinator.ask(GetAgent(name=name), AgentView)
        except ApiError as exc:
            if exc.code != "not_found":
                raise
        await asyncio.sleep(0.05)
    return await state.coordinator.ask(GetAgent(name=name), AgentView)
