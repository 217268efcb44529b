"""`/mcp` on the gateway: Streamable HTTP, stateless, behind the gateway's own checks.

Order per request: Host/Origin (DNS-rebinding protection: 421 / 403, before anything
else, with the SDK's own validator), then the API key (401), then the key's rate limit
(429 + Retry-After) -- the same functions REST uses -- and only then the SDK. The caller
rides in the request's ASGI state (and a contextvar) to the tools.

Stateless (`stateless_http=True`): every request stands alone, so N gateways behind a
plain load balancer serve MCP as one, for 2025-era clients too (2026-07-28 clients are
sessionless anyway). Served by a plain route at exactly `/mcp` -- no Mount, so no 307 to
`/mcp/`, which several clients do not follow.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlparse

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from whoosh_shared.contract.gateway_settings import LOOPBACK_HOSTS, GatewaySettings

from whoosh_gateway.access import authenticate
from whoosh_gateway.errors import ApiError, error_response
from whoosh_gateway.gateway_state import GatewayState
from whoosh_gateway.mcp.calls import CALLER_STATE_KEY, CURRENT_CALLER
from whoosh_gateway.mcp.server import WhooshMcpServer, build_server
from whoosh_gateway.submit_size import body_limit

log = logging.getLogger(__name__)
MCP_PATH = "/mcp"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _host_names(settings: GatewaySettings) -> list[str]:
    """The names a client may put in Host: the listening host, the public URL's host,
    loopback names when listening on loopback, and gateway.mcp.allowed_hosts."""
    names: set[str] = set()
    if settings.host not in WILDCARD_HOSTS:
        names.add(f"[{settings.host}]" if ":" in settings.host else settings.host)
    if settings.host in LOOPBACK_HOSTS or settings.host in WILDCARD_HOSTS:
        names.update({"127.0.0.1", "localhost", "[::1]"})
    if settings.public_url:
        public = urlparse(settings.public_url)
        if public.hostname:
            host = f"[{public.hostname}]" if ":" in public.hostname else public.hostname
            names.add(host if public.port is None else f"{host}:{public.port}")
    return sorted(names)


def transport_security(settings: GatewaySettings) -> TransportSecuritySettings:
    """Host/Origin allowlists derived from the gateway's settings (any port of a known
    name: a gateway on port 0 learns its port only when it listens)."""
    mcp = settings.mcp
    hosts: list[str] = []
    origins: list[str] = []
    for name in _host_names(settings):
        has_port = name.rsplit("]", 1)[-1].count(":") == 1
        hosts.extend([name] if has_port else [name, f"{name}:*"])
        for scheme in ("http", "https"):
            origins.extend(
                [f"{scheme}://{name}"]
                if has_port
                else [f"{scheme}://{name}", f"{scheme}://{name}:*"]
            )
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=mcp.dns_rebinding_protection,
        allowed_hosts=hosts + list(mcp.allowed_hosts),
        allowed_origins=origins + list(mcp.allowed_origins),
    )


def _warn_if_only_loopback(settings: GatewaySettings) -> None:
    """Listening on every address while MCP accepts only loopback names is a trap: say so."""
    mcp = settings.mcp
    if (
        settings.host in WILDCARD_HOSTS
        and not settings.public_url
        and not mcp.allowed_hosts
        and mcp.dns_rebinding_protection
    ):
        log.warning(
            "gateway.host is %s but MCP accepts only loopback Host names: other machines get "
            "421 at /mcp until gateway.public_url or gateway.mcp.allowed_hosts names the host "
            "they use",
            settings.host,
        )


class McpEndpoint:
    """The ASGI app of the `/mcp` route."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.server: WhooshMcpServer = build_server(state)
        security = transport_security(state.settings)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=False,  # SSE responses: progress notifications can flow
            transport_security=security,
            # the gateway's own body limit (BodyLimit) stays the one that bites
            max_request_body_size=body_limit(state.settings.max_body_bytes, state.limits),
        )
        self.session_manager: StreamableHTTPSessionManager = self.server.session_manager
        self.security = TransportSecurityMiddleware(security)
        _warn_if_only_loopback(state.settings)

    def running(self) -> AbstractAsyncContextManager[None]:
        """Enter in the gateway's lifespan (a route's app has no lifespan of its own)."""
        return self.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refused = await self.security.validate_request(request, is_post=False)
        if refused is not None:
            await _refusal(request, refused.status_code)(scope, receive, send)
            return
        try:
            caller = await authenticate(request)
            await self.state.limiter.check(caller)
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})[CALLER_STATE_KEY] = caller
        token = CURRENT_CALLER.set(caller)
        try:
            await self.session_manager.handle_request(scope, receive, send)
        finally:
            CURRENT_CALLER.reset(token)


def _refusal(request: Request, status: int) -> Response:
    """The SDK's Host/Origin refusal in the gateway's error shape, naming the header."""
    if status == 421:
        host = request.headers.get("host", "")
        return error_response(
            421,
            "invalid_host",
            f"Host {host[:200]!r} is not a name this gateway serves MCP under "
            "(gateway.host, gateway.public_url, gateway.mcp.allowed_hosts)",
        )
    origin = request.headers.get("origin", "")
    return error_response(
        403,
        "invalid_origin",
        f"Origin {origin[:200]!r} may not call MCP here (gateway.mcp.allowed_origins)",
    )
