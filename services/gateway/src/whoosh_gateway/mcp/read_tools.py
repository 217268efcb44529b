"""The viewer's tools: read the fleet, find agents, read and wait for tasks."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import AwareDatetime, Field
from whoosh_shared.contract.agents import AgentName, CapabilityName
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.explain import ExplainTask, TaskExplanation
from whoosh_shared.contract.queries import (
    AgentList,
    AgentView,
    EventPage,
    FleetStats,
    GetAgent,
    GetEvents,
    GetStats,
    GetTask,
    ListAgents,
    ListTasks,
    TaskPage,
    TaskView,
)

from whoosh_gateway.api_models import AgentStatus, agent_status
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call
from whoosh_gateway.mcp.finder import find_agents
from whoosh_gateway.mcp.models import (
    AgentListResult,
    AgentSummary,
    ClusterStatus,
    EventItem,
    EventsResult,
    FindAgentsResult,
    TaskListItem,
    TaskListResult,
    TaskSummary,
    WaitResult,
    agent_summary,
    task_summary,
)
from whoosh_gateway.mcp.waiting import wait_for_task

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
TaskId = Annotated[UUID, Field(description="the task's id (a UUID)")]
AgentNameArg = Annotated[AgentName, Field(description="the agent's name")]
Capabilities = Annotated[
    list[CapabilityName], Field(default_factory=list, max_length=100, description="all needed")
]

VIEWER_TOOLS = (
    "whoosh_list_agents",
    "whoosh_get_agent",
    "whoosh_find_agents",
    "whoosh_get_task",
    "whoosh_list_tasks",
    "whoosh_wait_task",
    "whoosh_get_task_events",
    "whoosh_cluster_status",
    "whoosh_explain_task",
)


def register_read_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator
    mcp = state.settings.mcp

    @server.tool(annotations=READ_ONLY)
    async def whoosh_list_agents(
        ctx: Context,
        status: Annotated[AgentStatus | None, Field(description="only agents in it")] = None,
        capability: Annotated[CapabilityName | None, Field(description="offering it")] = None,
        agent_type: AgentType | None = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
        cursor: Annotated[AgentName | None, Field(description="next_cursor of a page")] = None,
    ) -> AgentListResult:
        """The fleet's agents with status and load, by name; never their secrets."""
        async with tool_call(ctx, "whoosh_list_agents", Role.VIEWER):
            fleet = await coordinator.ask(ListAgents(), AgentList)
            agents = [
                a
                for a in sorted(fleet.agents, key=lambda a: a.spec.name)
                if _agent_matches(a, status, capability, agent_type)
                and (cursor is None or a.spec.name > cursor)
            ]
            page = agents[:limit]
            more = len(agents) > limit
            return AgentListResult(
                agents=[agent_summary(a) for a in page],
                next_cursor=page[-1].spec.name if more and page else None,
            )

    @server.tool(annotations=READ_ONLY)
    async def whoosh_get_agent(ctx: Context, name: AgentNameArg) -> AgentSummary:
        """One agent: its skills, status, load and counts."""
        async with tool_call(ctx, "whoosh_get_agent", Role.VIEWER):
            return agent_summary(await coordinator.ask(GetAgent(name=name), AgentView))

    @server.tool(annotations=READ_ONLY)
    async def whoosh_find_agents(
        ctx: Context,
        capabilities: Capabilities,
        agent_type: AgentType | None = None,
        model: Annotated[str | None, Field(max_length=200)] = None,
        agent: Annotated[AgentName | None, Field(description="pinned to this agent")] = None,
        prompt: Annotated[
            str, Field(max_length=1_000_000, description="the prompt, to check context length")
        ] = "",
    ) -> FindAgentsResult:
        """Which agents could run a task with these needs: a dry run of the scheduler,
        best first, and for every other agent the reason it is not eligible."""
        async with tool_call(ctx, "whoosh_find_agents", Role.VIEWER):
            return await find_agents(coordinator, capabilities, agent_type, model, agent, prompt)

    @server.tool(annotations=READ_ONLY)
    async def whoosh_get_task(ctx: Context, task_id: TaskId) -> TaskSummary:
        """A task's status, agent, attempts, usage and the tail of its output (the whole
        output is the resource whoosh://tasks/{task_id}/output)."""
        async with tool_call(ctx, "whoosh_get_task", Role.VIEWER):
            view = await coordinator.ask(GetTask(task_id=task_id), TaskView)
            return task_summary(view, mcp.tail_bytes)

    @server.tool(annotations=READ_ONLY)
    async def whoosh_list_tasks(
        ctx: Context,
        status: TaskStatus | None = None,
        agent: Annotated[AgentName | None, Field(description="ran or tried on it")] = None,
        capability: Annotated[CapabilityName | None, Field(description="required it")] = None,
        submitted_after: AwareDatetime | None = None,
        submitted_before: AwareDatetime | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
        cursor: Annotated[
            str | None, Field(pattern=r"^[0-9]{1,30}$", description="next_cursor of a page")
        ] = None,
    ) -> TaskListResult:
        """Tasks, newest first, filtered; page on with `cursor`."""
        async with tool_call(ctx, "whoosh_list_tasks", Role.VIEWER):
            page = await coordinator.ask(
                ListTasks(
                    status=status,
                    agent=agent,
                    capability=capability,
                    submitted_after=submitted_after,
                    submitted_before=submitted_before,
                    limit=limit,
                    after=cursor,
                ),
                TaskPage,
            )
            return TaskListResult(
                tasks=[_list_item(t) for t in page.tasks], next_cursor=page.next_cursor
            )

    @server.tool(annotations=READ_ONLY)
    async def whoosh_wait_task(
        ctx: Context,
        task_id: TaskId,
        timeout_s: Annotated[
            float, Field(gt=0, le=3600, description="at most gateway.mcp.max_wait_s (240)")
        ] = 120.0,
    ) -> WaitResult:
        """Wait until the task ends or `timeout_s` passes, with progress notifications
        (the latest output line) meanwhile. Ending the wait never cancels the task: if it
        has not ended, call this again."""
        async with tool_call(ctx, "whoosh_wait_task", Role.VIEWER):
            return await wait_result(state, ctx, task_id, min(timeout_s, mcp.max_wait_s))

    @server.tool(annotations=READ_ONLY)
    async def whoosh_get_task_events(
        ctx: Context,
        task_id: TaskId,
        after: Annotated[int, Field(ge=0, description="event_id seen last")] = 0,
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
    ) -> EventsResult:
        """The task's stored history: submitted, assigned, started, attempts, end; who."""
        async with tool_call(ctx, "whoosh_get_task_events", Role.VIEWER):
            await coordinator.ask(GetTask(task_id=task_id), TaskView)  # not_found first
            page = await coordinator.ask(
                GetEvents(aggregate_id=task_id, after=after, limit=limit), EventPage
            )
            return EventsResult(
                task_id=task_id,
                events=[
                    EventItem(
                        event_id=e.notification_id,
                        type=e.type,
                        timestamp=e.timestamp,
                        actor=e.data.get("actor"),
                        data=short_data(e.data, mcp.tail_bytes),
                    )
                    for e in page.events
                ],
                next_cursor=page.next_cursor,
            )

    @server.tool(annotations=READ_ONLY)
    async def whoosh_cluster_status(ctx: Context) -> ClusterStatus:
        """Fleet counts: agents by status, tasks by status, work in flight."""
        async with tool_call(ctx, "whoosh_cluster_status", Role.VIEWER):
            return await cluster_status(state)

    @server.tool(annotations=READ_ONLY)
    async def whoosh_explain_task(ctx: Context, task_id: TaskId) -> TaskExplanation:
        """Why the scheduler places (or would place) this task where it does: every agent
        with its verdict, load, weight and estimate, and one line saying what decides."""
        async with tool_call(ctx, "whoosh_explain_task", Role.VIEWER):
            return await coordinator.ask(ExplainTask(task_id=task_id), TaskExplanation)


async def wait_result(
    state: GatewayState, ctx: Context, task_id: UUID, timeout_s: float
) -> WaitResult:
    async def report(progress: float, total: float, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    view, ended, waited = await wait_for_task(
        state.coordinator,
        state.hub,
        task_id,
        timeout_s,
        state.settings.mcp.progress_interval_s,
        report,
    )
    return WaitResult(
        task=task_summary(view, state.settings.mcp.tail_bytes),
        waited_s=round(waited, 3),
        ended=ended,
    )


async def cluster_status(state: GatewayState) -> ClusterStatus:
    stats = await state.coordinator.ask(GetStats(), FleetStats)
    fleet = await state.coordinator.ask(ListAgents(), AgentList)
    return ClusterStatus(
        agents=stats.agents,
        agents_enabled=stats.agents_enabled,
        agents_by_status=dict(Counter(agent_status(a) for a in fleet.agents)),
        tasks_by_status=stats.tasks_by_status,
        in_flight=stats.in_flight,
    )


def _agent_matches(
    agent: AgentView,
    status: str | None,
    capability: str | None,
    agent_type: AgentType | None,
) -> bool:
    if status is not None and agent_status(agent) != status:
        return False
    if capability is not None and capability not in agent.spec.capabilities:
        return False
    return agent_type is None or agent.spec.type is agent_type


def _list_item(view: TaskView) -> TaskListItem:
    return TaskListItem(
        task_id=view.id,
        status=view.status,
        agent=view.agent,
        priority=view.priority,
        capabilities=view.capabilities,
        prompt_head=view.prompt[:200],
        submitted_at=view.submitted_at,
        finished_at=view.finished_at,
    )


def short_data(data: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """Event data with long strings (prompts, outputs) cut to their tail."""
    return {
        key: (
            f"...{value[-max_chars:]}"
            if isinstance(value, str) and len(value) > max_chars
            else value
        )
        for key, value in data.items()
    }
