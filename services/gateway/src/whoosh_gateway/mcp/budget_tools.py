"""Budgets and usage for MCP clients (viewer): an agent can see how much of a budget is
left before it starts expensive work. Setting a budget stays with admins on REST, the
CLI and the dashboard: an agent should not raise its own limit."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.usage import GetUsage, UsageReport

from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call
from whoosh_gateway.mcp.read_tools import READ_ONLY

VIEWER_BUDGET_TOOLS = ("whoosh_usage",)  # whoosh_budgets is a collab tool


def register_budget_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator

    @server.tool(annotations=READ_ONLY)
    async def whoosh_usage(ctx: Context) -> UsageReport:
        """Tokens in and out, cost in USD and agent time per submitting key, agent and
        model, over every task that has ended since the store began."""
        async with tool_call(ctx, "whoosh_usage", Role.VIEWER):
            return await coordinator.ask(GetUsage(), UsageReport)
