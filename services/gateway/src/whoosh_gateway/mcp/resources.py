"""Resources: what a host may attach to a conversation, whole (a task's entire output
lives here; tools return its tail). An unknown id is the spec's resource-not-found."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from whoosh_shared.contract.queries import (
    AgentList,
    AgentView,
    EventPage,
    GetAgent,
    GetEvents,
    GetTask,
    ListAgents,
    TaskView,
)

from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.models import agent_summary, task_summary
from whoosh_gateway.mcp.read_tools import cluster_status

JSON = "application/json"
MAX_EVENTS = 1000


def _json(model: Any) -> str:
    return json.dumps(model, default=str, indent=1)


def _task_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ResourceNotFoundError(f"no task '{text}': task ids are UUIDs") from None


async def _answer(coro: Any, what: str) -> Any:
    try:
        return await coro
    except ApiError as exc:
        if exc.status == 404:  # an unknown id, or metrics not configured
            raise ResourceNotFoundError(f"{what}: {exc.message}") from None
        raise ResourceError(f"{exc.code}: {exc.message}") from None


def register_resources(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator

    @server.resource("whoosh://fleet/status", mime_type=JSON, name="fleet_status")
    async def fleet_status() -> str:
        """Agent and task counts."""
        return (await _answer(cluster_status(state), "fleet")).model_dump_json(indent=1)

    @server.resource("whoosh://agents", mime_type=JSON, name="agents")
    async def agents() -> str:
        """Every agent with status and load (no secrets)."""
        fleet = await _answer(coordinator.ask(ListAgents(), AgentList), "agents")
        return _json([agent_summary(a).model_dump(mode="json") for a in fleet.agents])

    @server.resource("whoosh://agents/{name}", mime_type=JSON, name="agent")
    async def agent(name: str) -> str:
        """One agent."""
        if len(name) > 63:
            raise ResourceNotFoundError(f"no agent '{name[:63]}...'")
        try:
            query = GetAgent(name=name)
        except ValueError:
            raise ResourceNotFoundError(f"no agent '{name}': not an agent name") from None
        view = await _answer(coordinator.ask(query, AgentView), f"agent '{name}'")
        return agent_summary(view).model_dump_json(indent=1)

    @server.resource("whoosh://tasks/{task_id}", mime_type=JSON, name="task")
    async def task(task_id: str) -> str:
        """A task's state (its output's tail; the whole output is .../output)."""
        tid = _task_id(task_id)
        view = await _answer(coordinator.ask(GetTask(task_id=tid), TaskView), f"task {tid}")
        return task_summary(view, state.settings.mcp.tail_bytes).model_dump_json(indent=1)

    @server.resource("whoosh://tasks/{task_id}/output", mime_type="text/plain", name="task_output")
    async def task_output(task_id: str) -> str:
        """A task's whole output (as stored: the end of very long output)."""
        tid = _task_id(task_id)
        view = await _answer(coordinator.ask(GetTask(task_id=tid), TaskView), f"task {tid}")
        return view.output

    @server.resource("whoosh://tasks/{task_id}/events", mime_type=JSON, name="task_events")
    async def task_events(task_id: str) -> str:
        """A task's stored history (the first 1000 events)."""
        tid = _task_id(task_id)
        await _answer(coordinator.ask(GetTask(task_id=tid), TaskView), f"task {tid}")
        page = await _answer(
            coordinator.ask(GetEvents(aggregate_id=tid, limit=MAX_EVENTS), EventPage), "events"
        )
        return _json([e.model_dump(mode="json") for e in page.events])

    @server.resource("whoosh://metrics", mime_type="text/plain", name="metrics")
    async def metrics() -> str:
        """The monitor's Prometheus metrics (when gateway.monitor_metrics_url is set)."""
        page = await _answer(state.metrics.fetch("text/plain"), "metrics")
        return page.body.decode(errors="replace")
