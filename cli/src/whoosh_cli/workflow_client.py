"""Workflow and execution commands and queries, through the gateway (REST) or NATS.

The same shared-contract commands either way: over NATS they go to the coordinator as
they are; through the gateway each becomes its REST call. A refusal raises CliError
(exit 2 for a definition or input the user must fix, 1 otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.commands import Command
from whoosh_shared.contract.queries import Query
from whoosh_shared.runtime.bus import Bus

from whoosh_cli.bus_session import ask, send
from whoosh_cli.context import CliContext
from whoosh_cli.errors import CliError, UsageError
from whoosh_cli.gateway_session import GatewayRejected, GatewaySession

ModelT = TypeVar("ModelT", bound=BaseModel)
ACTOR = "cli"


def refused(what: str, code: str | None, reason: str | None) -> CliError:
    message = f"{what} refused ({code or 'rejected'}): {reason or ''}"
    return UsageError(message) if code == "invalid" else CliError(message)


class Workflows(Protocol):
    async def send(self, command: Command) -> dict[str, str]: ...
    async def ask(self, query: Query, model: type[ModelT]) -> ModelT: ...


class BusWorkflows:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def send(self, command: Command) -> dict[str, str]:
        reply = await send(self.bus, command)
        if not reply.accepted:
            raise refused(type(command).__name__, reply.code, reply.reason)
        return reply.ids

    async def ask(self, query: Query, model: type[ModelT]) -> ModelT:
        return await ask(self.bus, query, model)


class GatewayWorkflows:
    def __init__(self, session: GatewaySession) -> None:
        self.session = session

    async def send(self, command: Command) -> dict[str, str]:
        method_path, body = _rest_of(command)
        try:
            answer = await self.session.call("POST", method_path, json=body)
        except GatewayRejected as rejected:
            raise refused(type(command).__name__, rejected.code, rejected.reason) from None
        if isinstance(command, w.CreateWorkflow | w.RunWorkflow):
            return {k: str(v) for k, v in answer.items()}
        return {"execution_id": str(answer["id"]), "status": str(answer["status"])}

    async def ask(self, query: Query, model: type[ModelT]) -> ModelT:
        path, params = _rest_of_query(query)
        try:
            return await self.session.get(path, model, **params)
        except GatewayRejected as rejected:
            raise CliError(f"{rejected.code}: {rejected.reason}") from None


def _rest_of(command: Command) -> tuple[str, dict[str, Any]]:
    body = command.model_dump(mode="json", exclude={"actor"}, exclude_none=True)
    match command:
        case w.CreateWorkflow():
            return "/workflows", body
        case w.RunWorkflow(workflow=name):
            return f"/workflows/{name}/run", {"inputs": command.inputs, "version": command.version}
        case w.CancelExecution(execution_id=eid):
            return f"/executions/{eid}/cancel", {"reason": command.reason}
        case w.RetryExecution(execution_id=eid):
            return f"/executions/{eid}/retry", {"from_step": command.from_step}
        case w.DecideApproval(execution_id=eid):
            verb = "approve" if command.approve else "reject"
            return f"/executions/{eid}/{verb}", {"step": command.step, "comment": command.comment}
    raise CliError(f"no REST call for {type(command).__name__}")


def _rest_of_query(query: Query) -> tuple[str, dict[str, Any]]:
    match query:
        case w.ListWorkflows():
            return "/workflows", {}
        case w.GetWorkflow(name=name, version=version):
            return f"/workflows/{name}", {"version": version}
        case w.ListExecutions():
            return "/executions", query.model_dump(mode="json", exclude_none=True)
        case w.GetExecution(execution_id=eid):
            return f"/executions/{eid}", {}
    raise CliError(f"no REST call for {type(query).__name__}")


@asynccontextmanager
async def open_workflows(ctx: CliContext) -> AsyncIterator[Workflows]:
    if ctx.uses_gateway:
        from whoosh_cli.gateway_session import gateway_session

        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            yield GatewayWorkflows(session)
    else:
        from whoosh_cli.bus_session import bus_session

        async with bus_session(ctx.nats_url()) as bus:
            yield BusWorkflows(bus)
