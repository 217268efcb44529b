"""What commands ask of WHOOSH, whichever way they reach it: the gateway (HTTP and
WebSocket, with an API key) or, for operators on the cluster's network, NATS directly.

Both answer with the shared contract's models, so every command prints the same tables
and JSON either way; a refusal raises CliError with the code and reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import SubmitTask
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.explain import TaskExplanation
from whoosh_shared.contract.gpu_readings import Gpu
from whoosh_shared.contract.queries import (
    AgentView,
    AlertList,
    FleetStats,
    ListAlerts,
    ListTasks,
    TaskPage,
    TaskView,
)

from whoosh_cli.context import CliContext
from whoosh_cli.task_outcome import Outcome


@dataclass(frozen=True)
class WriteResult:
    """The answer to a write, as `--json` prints it (the shape of a CommandReply)."""

    ok: bool
    ids: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "accepted" if self.ok else "rejected", "ids": self.ids}
        if not self.ok:
            body.update(code=self.code, reason=self.reason)
        return {**body, **self.extra}


class Fleet(Protocol):
    where: str

    async def agents(self) -> list[AgentView]: ...
    async def register(self, spec: AgentSpec) -> WriteResult: ...
    async def set_enabled(self, name: str, enabled: bool) -> WriteResult: ...
    async def remove(self, name: str) -> WriteResult: ...
    async def set_weight(self, name: str, weight: int) -> WriteResult: ...
    async def submit(self, command: SubmitTask) -> WriteResult: ...
    async def submit_and_follow(
        self, command: SubmitTask, live_output: bool, verbose: bool = False
    ) -> Outcome: ...
    async def follow(self, task_id: UUID, live_output: bool, verbose: bool = False) -> Outcome: ...
    async def task(self, task_id: UUID) -> TaskView: ...
    async def explain(self, task_id: UUID) -> TaskExplanation: ...
    async def tasks(self, query: ListTasks) -> TaskPage: ...
    async def cancel(self, task_id: UUID, reason: str) -> WriteResult: ...
    async def events(self, task_id: UUID) -> list[EventEnvelope]: ...
    async def stats(self) -> FleetStats: ...
    async def alerts(self, query: ListAlerts) -> AlertList: ...
    async def gpus(self) -> list[Gpu]: ...


@asynccontextmanager
async def open_fleet(ctx: CliContext) -> AsyncIterator[Fleet]:
    if ctx.uses_gateway:
        from whoosh_cli.fleet_gateway import GatewayFleet
        from whoosh_cli.gateway_session import gateway_session

        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            yield GatewayFleet(session)
    else:
        from whoosh_cli.bus_session import bus_session
        from whoosh_cli.fleet_bus import BusFleet

        url = ctx.nats_url()
        async with bus_session(url) as bus:
            yield BusFleet(bus, url, ctx.config.limits)
