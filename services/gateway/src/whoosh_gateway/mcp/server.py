"""The MCP server object: WHOOSH's tools, resources and prompts, listed per role."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.types import Tool
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.budget_tools import VIEWER_BUDGET_TOOLS, register_budget_tools
from whoosh_gateway.mcp.calls import caller_of
from whoosh_gateway.mcp.collab_tools import (
    OPERATOR_COLLAB_TOOLS,
    VIEWER_COLLAB_TOOLS,
    register_collab_tools,
)
from whoosh_gateway.mcp.prompts import register_prompts
from whoosh_gateway.mcp.read_tools import VIEWER_TOOLS, register_read_tools
from whoosh_gateway.mcp.resources import register_resources
from whoosh_gateway.mcp.workflow_tools import (
    OPERATOR_WORKFLOW_TOOLS,
    VIEWER_WORKFLOW_TOOLS,
    register_workflow_tools,
)
from whoosh_gateway.mcp.write_tools import OPERATOR_TOOLS, register_write_tools

INSTRUCTIONS = """\
WHOOSH runs work on a fleet of AI agents (LLM servers and CLI agents such as Claude Code).
Long work is a handle, not a held call: whoosh_submit_task returns a task id at once (or
after a short wait_s); then call whoosh_wait_task with it, again while `ended` is false --
waiting is bounded, sends progress, and never cancels the task; only whoosh_cancel_task
does. Results carry the output's tail; the whole output is whoosh://tasks/{id}/output.
Use whoosh_find_agents before submitting to see which agents could run the work and why
others cannot. Pass an idempotency_key to whoosh_submit_task so that a retry cannot run
the work twice. Workflows (multi-step DAGs of agent steps) run with whoosh_run_workflow
and are followed the same way with whoosh_get_execution and its wait_s."""

TOOL_ROLES: dict[str, Role] = {
    **{name: Role.VIEWER for name in VIEWER_TOOLS},
    **{name: Role.OPERATOR for name in OPERATOR_TOOLS},
    **{name: Role.VIEWER for name in VIEWER_COLLAB_TOOLS},
    **{name: Role.OPERATOR for name in OPERATOR_COLLAB_TOOLS},
    **{name: Role.VIEWER for name in VIEWER_BUDGET_TOOLS},
    **{name: Role.VIEWER for name in VIEWER_WORKFLOW_TOOLS},
    **{name: Role.OPERATOR for name in OPERATOR_WORKFLOW_TOOLS},
}


class WhooshMcpServer(MCPServer[Any]):
    """tools/list shows each caller only the tools its role allows (the spec lets a list
    vary with the authorization on the request); each tool checks the role again."""

    async def list_tools(self) -> list[Tool]:
        caller = caller_of(None)
        tools = await super().list_tools()
        if caller is None:
            return []
        return [t for t in tools if caller.role.allows(TOOL_ROLES.get(t.name, Role.ADMIN))]


def build_server(state: GatewayState) -> WhooshMcpServer:
    server = WhooshMcpServer(
        "whoosh",
        title="WHOOSH fleet",
        instructions=INSTRUCTIONS,
        version="1",
        log_level="WARNING",
    )
    register_read_tools(server, state)
    register_write_tools(server, state)
    register_collab_tools(server, state)
    register_budget_tools(server, state)
    register_workflow_tools(server, state)
    register_resources(server, state)
    register_prompts(server)
    return server
