"""Threads, budgets and addresses over either transport (the gateway, or NATS with
`--nats`), answering with the shared contract's models whichever way is used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from whoosh_shared.contract import threads as t
from whoosh_shared.contract.budgets import BudgetList, ListBudgets, SetBudget
from whoosh_shared.contract.commands import Command
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import EventPage, GetEvents
from whoosh_shared.contract.usage import GetUsage, UsageReport

from whoosh_cli.context import CliContext
from whoosh_cli.errors import CliError
from whoosh_cli.fleet_gateway import stored_events

ACTOR = "cli"


class GatewayCollab:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def start(self, command: t.StartThread) -> UUID:
        body = command.model_dump(mode="json", exclude={"actor"}, exclude_defaults=True)
        body.setdefault("topic", command.topic)
        answer = await self._call("POST", "/threads", json=body)
        return UUID(answer["id"])

    async def thread(self, thread_id: UUID) -> t.ThreadView:
        return await self.session.get(f"/threads/{thread_id}", t.ThreadView)

    async def threads(self, query: t.ListThreads) -> t.ThreadList:
        state = query.state.value if query.state else None
        return await self.session.get("/threads", t.ThreadList, state=state, limit=query.limit)

    async def post(self, thread_id: UUID, body: str) -> None:
        await self._call("POST", f"/threads/{thread_id}/messages", json={"body": body})

    async def decide(self, thread_id: UUID, decision: str, reason: str) -> None:
        body = {"decision": decision, "reason": reason}
        await self._call("POST", f"/threads/{thread_id}/decision", json=body)

    async def close(self, thread_id: UUID, reason: str) -> None:
        await self._call("POST", f"/threads/{thread_id}/close", json={"reason": reason})

    async def events(self, thread_id: UUID) -> list[EventEnvelope]:
        return await stored_events(self.session, f"/threads/{thread_id}/events")

    async def set_budget(self, command: SetBudget) -> None:
        body = command.model_dump(mode="json", exclude={"actor", "scope"})
        await self._call("PUT", f"/budgets/{command.scope}", json=body)

    async def budgets(self) -> BudgetList:
        return await self.session.get("/budgets", BudgetList)

    async def usage(self) -> UsageReport:
        return await self.session.get("/usage", UsageReport)

    async def resolve(self, address: str) -> t.Resolved:
        return await self.session.get("/resolve", t.Resolved, address=address)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        from whoosh_cli.gateway_session import GatewayRejected, raise_for_usage

        try:
            return await self.session.call(method, path, **kwargs)
        except GatewayRejected as rejected:
            raise_for_usage(rejected)
            raise CliError(f"rejected ({rejected.code}): {rejected.reason}") from None


class BusCollab:
    def __init__(self, bus: Any) -> None:
        self.bus = bus

    async def start(self, command: t.StartThread) -> UUID:
        reply = await self._send(command.model_copy(update={"actor": ACTOR}))
        return UUID(reply["thread_id"])

    async def thread(self, thread_id: UUID) -> t.ThreadView:
        return await self._ask(t.GetThread(thread_id=thread_id), t.ThreadView)

    async def threads(self, query: t.ListThreads) -> t.ThreadList:
        return await self._ask(query, t.ThreadList)

    async def post(self, thread_id: UUID, body: str) -> None:
        await self._send(t.PostToThread(thread_id=thread_id, body=body, actor=ACTOR))

    async def decide(self, thread_id: UUID, decision: str, reason: str) -> None:
        command = t.DecideThread(thread_id=thread_id, decision=decision, reason=reason, actor=ACTOR)
        await self._send(command)

    async def close(self, thread_id: UUID, reason: str) -> None:
        await self._send(t.CloseThread(thread_id=thread_id, reason=reason, actor=ACTOR))

    async def events(self, thread_id: UUID) -> list[EventEnvelope]:
        await self.thread(thread_id)  # not_found for an unknown thread
        found: list[EventEnvelope] = []
        after = 0
        while True:
            query = GetEvents(aggregate_id=thread_id, after=after)
            page = await self._ask(query, EventPage)
            found += page.events
            if page.next_cursor is None:
                return found
            after = page.next_cursor

    async def set_budget(self, command: SetBudget) -> None:
        await self._send(command.model_copy(update={"actor": ACTOR}))

    async def budgets(self) -> BudgetList:
        return await self._ask(ListBudgets(), BudgetList)

    async def usage(self) -> UsageReport:
        return await self._ask(GetUsage(), UsageReport)

    async def resolve(self, address: str) -> t.Resolved:
        return await self._ask(t.ResolveAddress(address=address), t.Resolved)

    async def _send(self, command: Command) -> dict[str, str]:
        from whoosh_cli.bus_session import send

        reply = await send(self.bus, command)
        if not reply.accepted:
            raise CliError(f"rejected ({reply.code}): {reply.reason}")
        return reply.ids

    async def _ask(self, query: Any, model: Any) -> Any:
        from whoosh_cli.bus_session import ask

        return await ask(self.bus, query, model)


@asynccontextmanager
async def open_collab(ctx: CliContext) -> AsyncIterator[GatewayCollab | BusCollab]:
    if ctx.uses_gateway:
        from whoosh_cli.gateway_session import gateway_session

        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            yield GatewayCollab(session)
    else:
        from whoosh_cli.bus_session import bus_session

        async with bus_session(ctx.nats_url()) as bus:
            yield BusCollab(bus)
