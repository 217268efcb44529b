"""The gateway's FastAPI application: routes, error shape, body limit, and its lifespan
(connect to NATS, listen for revocations and events, set up the shared rate counters)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.routing import Route
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.contract.queries import AgentList, ListAgents
from whoosh_shared.runtime.bus import Bus

from whoosh_gateway import ui
from whoosh_gateway.body_limit import BodyLimit
from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.errors import ApiError, install_error_handlers
from whoosh_gateway.event_hub import EventHub
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.key_verifier import KeyVerifier
from whoosh_gateway.local_guard import LocalOnly
from whoosh_gateway.mcp.http import MCP_PATH, McpEndpoint
from whoosh_gateway.metrics_proxy import MetricsProxy
from whoosh_gateway.rate_limits import RateLimiter
from whoosh_gateway.refused_keys import RefusedKeys
from whoosh_gateway.routes import (
    agents,
    collab,
    fleet,
    health,
    keys,
    metrics,
    stream,
    tasks,
    usage,
    workflows,
)
from whoosh_gateway.submit_size import body_limit

API_PREFIX = "/api/v1"
DESCRIPTION = """\
The front door of WHOOSH: agents, tasks, API keys and the live event stream.

Every request but `/healthz` and `/readyz` needs an API key
(`Authorization: Bearer whk_...`) whose role allows it: `viewer` reads, `operator` also
submits and cancels tasks and manages agents, `admin` also manages keys and reads the
audit trail. Errors share one shape: `{"error": {"code": ..., "message": ...}}`.
The WebSocket `/api/v1/ws` streams execution events; see its module for the protocol.
`/metrics` serves the monitor's Prometheus metrics again (viewer role), when
`gateway.monitor_metrics_url` names them.
"""


def create_app(
    settings: GatewaySettings,
    nats_url: str,
    name: str = "whoosh-gateway",
    limits: LimitSettings | None = None,
) -> FastAPI:
    limits = limits or LimitSettings()
    bus = Bus(nats_url, name)
    coordinator = CoordinatorClient(bus, settings.request_timeout_s, limits)
    state = GatewayState(
        settings=settings,
        bus=bus,
        coordinator=coordinator,
        verifier=KeyVerifier(
            coordinator,
            settings.key_cache_s,
            RefusedKeys(settings.rate_limits.refused_keys_per_minute),
        ),
        limiter=RateLimiter(settings.rate_limits.requests_per_minute),
        hub=EventHub(),
        metrics=MetricsProxy(settings.monitor_metrics_url, settings.monitor_timeout_s),
        limits=limits,
    )
    mcp_endpoint = McpEndpoint(state) if settings.mcp.enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bus.connect()
        await state.verifier.start(bus)
        await state.hub.start(bus)
        await state.limiter.start(bus.js)
        await state.metrics.start()
        await ui.start(app, bus)
        with contextlib.suppress(ApiError):  # names for agent_status messages; live ones later
            for agent in (await coordinator.ask(ListAgents(), AgentList)).agents:
                state.hub.remember_agent(agent.id, agent.spec.name)
        try:
            async with mcp_endpoint.running() if mcp_endpoint else contextlib.nullcontext():
                yield
        finally:
            await state.metrics.stop()
            await state.hub.stop()
            await state.verifier.stop()
            await bus.close()

    app = FastAPI(
        title="WHOOSH gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by whoosh_gateway.ui.docs from vendored assets (offline)
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.gateway = state
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=body_limit(settings.max_body_bytes, limits))
    if settings.insecure_no_auth:  # no keys: no web pages either (DNS rebinding, CSWSH)
        app.add_middleware(LocalOnly, port=settings.port, public_url=settings.public_url)
    api = APIRouter(prefix=API_PREFIX)
    for module in (agents, tasks, keys, fleet, stream, workflows, collab, usage):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(metrics.router)
    if mcp_endpoint is not None:  # a plain route: exactly /mcp, no redirect to /mcp/
        app.router.routes.append(Route(MCP_PATH, endpoint=mcp_endpoint))
        app.state.mcp = mcp_endpoint
    ui.install(app)
    return app
