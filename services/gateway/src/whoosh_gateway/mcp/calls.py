"""Who is calling a tool, may they, and what came of it.

The HTTP endpoint authenticates every request and leaves the `Caller` in the request's
ASGI state (and in a contextvar, for in-process clients); each tool call checks the
caller's role again (a client may call a tool it was not shown) and is logged with its
tool, actor, outcome and duration. The error split follows the MCP spec: what the model
could correct (a bad argument, an unknown id, a refused command, a missing role) is a
tool error it can read; a coordinator that does not answer is a protocol error.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ApiError

log = logging.getLogger("whoosh_gateway.mcp.audit")
CALLER_STATE_KEY = "whoosh_caller"
CURRENT_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "whoosh_mcp_caller", default=None
)


def caller_of(ctx: Context[Any, Any] | None) -> Caller | None:
    """The caller of this MCP request: from its HTTP request, else the contextvar."""
    request = None
    if ctx is not None:
        try:
            request = ctx.request_context.request
        except ValueError:  # no request context (called outside a request)
            request = None
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    if isinstance(state, dict) and isinstance(state.get(CALLER_STATE_KEY), Caller):
        return state[CALLER_STATE_KEY]  # type: ignore[no-any-return]
    return CURRENT_CALLER.get()


def protocol_error(exc: ApiError) -> MCPError:
    return MCPError(code=INTERNAL_ERROR, message=f"{exc.code}: {exc.message}")


def tool_error(exc: ApiError) -> ToolError:
    return ToolError(f"{exc.code}: {exc.message}")


def is_protocol_failure(exc: ApiError) -> bool:
    """The gateway or coordinator failed (5xx): nothing the model could do better."""
    return exc.status >= 500


@asynccontextmanager
async def tool_call(ctx: Context[Any, Any], tool: str, needed: Role) -> AsyncIterator[Caller]:
    """Check the role, turn gateway errors into the MCP error split, log the call."""
    started = time.monotonic()
    caller = caller_of(ctx)
    actor = caller.actor if caller else "unauthenticated"
    outcome = "ok"
    try:
        if caller is None:
            outcome = "denied"
            raise MCPError(code=INTERNAL_ERROR, message="no authenticated caller for this call")
        if not caller.role.allows(needed):
            outcome = "denied"
            raise ToolError(
                f"forbidden: {tool} needs the {needed.value} role; this key is {caller.role.value}"
            )
        try:
            yield caller
        except ApiError as exc:
            if is_protocol_failure(exc):
                raise protocol_error(exc) from None
            raise tool_error(exc) from None
    except MCPError:
        outcome = outcome if outcome == "denied" else "protocol_error"
        raise
    except BaseException as exc:
        if outcome == "ok":
            outcome = "tool_error" if isinstance(exc, ToolError | ValueError) else "aborted"
        raise
    finally:
        log.info(
            "mcp tool=%s actor=%r outcome=%s duration_ms=%d",
            tool,
            actor,
            outcome,
            round((time.monotonic() - started) * 1000),
        )
