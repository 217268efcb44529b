"""An in-process gateway app on the gateway stack's NATS, and MCP clients over its
server object with a caller of each role (the SDK's in-memory Client bypasses HTTP, so
the caller is set where the HTTP endpoint would put it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp import Client
from whoosh_gateway.app import create_app
from whoosh_gateway.callers import Caller
from whoosh_gateway.mcp.calls import CURRENT_CALLER
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.contract.mcp_settings import McpSettings

TAIL_BYTES = 256
MAX_PROMPT_BYTES = 100_000
MCP_SETTINGS = McpSettings(tail_bytes=TAIL_BYTES, progress_interval_s=1.0, max_wait_s=20)


@asynccontextmanager
async def gateway_app(nats_url: str) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running in a task of its own: the SDK's task group must
    be left by the task that entered it, and a fixture's teardown may run in another."""
    app = create_app(
        GatewaySettings(port=0, mcp=MCP_SETTINGS),
        nats_url,
        "test-mcp-gateway",
        limits=LimitSettings(max_prompt_bytes=MAX_PROMPT_BYTES),
    )
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    runner = asyncio.create_task(run())
    await asyncio.wait(
        [runner, asyncio.create_task(started.wait())],
        timeout=60,
        return_when=asyncio.FIRST_COMPLETED,
    )
    if runner.done():
        runner.result()  # the lifespan failed: raise its error
    try:
        yield app
    finally:
        stop.set()
        await runner


def caller(role: Role) -> Caller:
    return Caller(actor=f"key test{role.value} (mcp {role.value})", role=role, prefix=role.value)


@asynccontextmanager
async def client_as(app: FastAPI, role: Role | None) -> AsyncIterator[Client]:
    token = CURRENT_CALLER.set(caller(role) if role else None)
    try:
        async with Client(app.state.mcp.server) as client:
            yield client
    finally:
        CURRENT_CALLER.reset(token)
