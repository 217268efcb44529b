"""Thread and address tools in the seeds' spirit: whoosh_lookup (find agents by semantic
address), whoosh_get (a thread), whoosh_thread (start one), whoosh_post (post to one)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call

VIEWER_COLLAB_TOOLS = ("whoosh_lookup", "whoosh_get")
OPERATOR_COLLAB_TOOLS = ("whoosh_thread", "whoosh_post")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
ThreadId = Annotated[UUID, Field(description="the thread's id (a UUID)")]


def register_collab_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator

    @server.tool(annotations=READ_ONLY)
    async def whoosh_lookup(
        ctx: Context,
        address: Annotated[
            str,
            Field(min_length=1, max_length=300, description="whoosh://[agent][:role]@project"),
        ],
    ) -> t.Resolved:
        """The agents a semantic address names (bzzz:// too; * globs; a role matches an
        agent's specialization or a capability), enabled first, then by name."""
        async with tool_call(ctx, "whoosh_lookup", Role.VIEWER):
            return await coordinator.ask(t.ResolveAddress(address=address), t.Resolved)

    @server.tool(annotations=READ_ONLY)
    async def whoosh_get(ctx: Context, thread_id: ThreadId) -> t.ThreadView:
        """A thread: participants, rounds with their tallies, votes, messages, decision."""
        async with tool_call(ctx, "whoosh_get", Role.VIEWER):
            return await coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)

    @server.tool(annotations=WRITE)
    async def whoosh_thread(
        ctx: Context,
        topic: Annotated[str, Field(min_length=1, max_length=2000)],
        participants: Annotated[list[t.Participant], Field(max_length=50)] = [],  # noqa: B006
        address: Annotated[str | None, Field(max_length=300)] = None,
        kind: t.ThreadKind = t.ThreadKind.QUESTION,
        answer_type: t.AnswerType = t.AnswerType.TEXT,
        choices: Annotated[list[str], Field(max_length=50)] = [],  # noqa: B006
        protocol: t.Protocol | None = None,
        subject: Annotated[str | None, Field(max_length=t.MAX_BODY)] = None,
    ) -> t.ThreadView:
        """Start a thread: each participant answers in a task ending with one strict line
        (ANSWER: <value> / VERDICT: approve|request_changes|abstain); the coordinator
        tallies the votes. Returns the thread at once; read it again with whoosh_get."""
        async with tool_call(ctx, "whoosh_thread", Role.OPERATOR) as caller:
            command = t.StartThread(
                topic=topic, participants=participants, address=address, kind=kind,
                answer_type=answer_type, choices=choices, protocol=protocol or t.Protocol(),
                subject=subject, actor=caller.actor,
            )  # fmt: skip
            reply = await coordinator.send(command)
            thread_id = UUID(reply.ids["thread_id"])
            return await coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)

    @server.tool(annotations=WRITE)
    async def whoosh_post(
        ctx: Context,
        thread_id: ThreadId,
        body: Annotated[str, Field(min_length=1, max_length=t.MAX_BODY)],
    ) -> t.ThreadView:
        """Post a message to an open thread (refused once it is closed)."""
        async with tool_call(ctx, "whoosh_post", Role.OPERATOR) as caller:
            command = t.PostToThread(thread_id=thread_id, body=body, actor=caller.actor)
            await coordinator.send(command)
            return await coordinator.ask(t.GetThread(thread_id=thread_id), t.ThreadView)
