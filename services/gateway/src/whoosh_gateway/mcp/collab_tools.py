"""Thread and address tools in the seeds' spirit: whoosh_lookup (find agents by semantic
address), whoosh_get (a thread), whoosh_subscribe (follow events by cursor),
whoosh_budgets (limits and use), whoosh_thread (start one), whoosh_post (post to one)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.budgets import BudgetList, ListBudgets

from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import tool_call
from whoosh_gateway.mcp.read_tools import READ_ONLY, short_data
from whoosh_gateway.mcp.subscribe import (
    Scope,
    SubscriptionBatch,
    item,
    open_subscription,
    subscribe,
)
from whoosh_gateway.mcp.write_tools import SUBMIT

VIEWER_COLLAB_TOOLS = ("whoosh_lookup", "whoosh_get", "whoosh_subscribe", "whoosh_budgets")
OPERATOR_COLLAB_TOOLS = ("whoosh_thread", "whoosh_post")
ThreadId = Annotated[UUID, Field(description="the thread's id (a UUID)")]


def register_collab_tools(server: MCPServer[Any], state: GatewayState) -> None:
    coordinator = state.coordinator
    mcp = state.settings.mcp

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

    @server.tool(annotations=READ_ONLY)
    async def whoosh_subscribe(
        ctx: Context,
        scope: Annotated[Scope, Field(description="what to follow")],
        target: Annotated[
            str | None,
            Field(
                max_length=300,
                description="thread/task/execution id, agent name, or whoosh:// address "
                "(none for scope all)",
            ),
        ] = None,
        event_types: Annotated[
            list[str], Field(max_length=50, description="only these, e.g. ThreadVoteCast")
        ] = [],  # noqa: B006
        after: Annotated[
            int, Field(ge=-1, description="the cursor of the last call; 0 the start; -1 now")
        ] = 0,
        wait_s: Annotated[
            float, Field(ge=0, le=3600, description="wait this long for a first event")
        ] = 0.0,
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
    ) -> SubscriptionBatch:
        """Follow events: those stored after `after`, in order; with none yet, wait up to
        `wait_s` (at most gateway.mcp.max_wait_s) for the next, with progress meanwhile.
        Call again with the returned `cursor` to continue: nothing is missed or repeated,
        through any gateway. Scopes: thread, task, execution, agent (name), address
        (every agent it names), all."""
        async with tool_call(ctx, "whoosh_subscribe", Role.VIEWER) as caller:
            sub = await open_subscription(coordinator, caller, scope, target, event_types)

            async def report(progress: float, total: float, message: str) -> None:
                await ctx.report_progress(progress, total, message)

            events, cursor, more, waited = await subscribe(
                coordinator, state.hub, sub, after, limit,
                min(wait_s, mcp.max_wait_s), mcp.progress_interval_s, report,
            )  # fmt: skip
            return SubscriptionBatch(
                scope=scope,
                target=target,
                events=[item(e, lambda d: short_data(d, mcp.tail_bytes)) for e in events],
                cursor=cursor,
                waited_s=round(waited, 3),
                more=more,
            )

    @server.tool(annotations=READ_ONLY)
    async def whoosh_budgets(ctx: Context) -> BudgetList:
        """Every budget: its limits (tokens, USD), period, use and reservations in the
        current period, the share used, whether it warned or is exhausted, and what
        happens then (refuse new work, or stop running work too)."""
        async with tool_call(ctx, "whoosh_budgets", Role.VIEWER):
            return await coordinator.ask(ListBudgets(), BudgetList)

    @server.tool(annotations=SUBMIT)
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

    @server.tool(annotations=SUBMIT)
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
