"""Which Host and Origin headers /mcp accepts, derived from the gateway's settings."""

from __future__ import annotations

import logging

import pytest
from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.requests import Request
from whoosh_gateway.mcp.http import transport_security
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.mcp_settings import McpSettings


async def status(settings: GatewaySettings, host: str, origin: str | None = None) -> int:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    request = Request({"type": "http", "method": "POST", "path": "/mcp", "headers": headers})
    refused = await TransportSecurityMiddleware(transport_security(settings)).validate_request(
        request, is_post=False
    )
    return 200 if refused is None else refused.status_code


@pytest.mark.parametrize(
    ("settings", "host", "expected"),
    [
        (GatewaySettings(), "127.0.0.1:4312", 200),
        (GatewaySettings(), "localhost:5000", 200),
        (GatewaySettings(), "[::1]:4312", 200),
        (GatewaySettings(), "evil.example:4312", 421),
        (GatewaySettings(), "", 421),
        (GatewaySettings(host="0.0.0.0"), "10.1.2.3:4312", 421),
        (GatewaySettings(host="0.0.0.0"), "127.0.0.1:4312", 200),
        (GatewaySettings(host="10.1.2.3"), "10.1.2.3:4312", 200),
        (GatewaySettings(host="10.1.2.3"), "localhost:4312", 421),
        (GatewaySettings(public_url="https://whoosh.example"), "whoosh.example", 200),
        (GatewaySettings(public_url="https://whoosh.example:8443/"), "whoosh.example:8443", 200),
        (GatewaySettings(public_url="https://whoosh.example:8443/"), "whoosh.example:9", 421),
        (
            GatewaySettings(host="0.0.0.0", mcp=McpSettings(allowed_hosts=["gpu-box:*"])),
            "gpu-box:4312",
            200,
        ),
        (
            GatewaySettings(mcp=McpSettings(dns_rebinding_protection=False)),
            "anything.example",
            200,
        ),
    ],
)
async def test_host_header(settings: GatewaySettings, host: str, expected: int) -> None:
    assert await status(settings, host) == expected


async def test_origin_header() -> None:
    settings = GatewaySettings(public_url="https://whoosh.example")
    assert await status(settings, "whoosh.example", "https://whoosh.example") == 200
    assert await status(settings, "127.0.0.1:4312", "http://localhost:3000") == 200
    assert await status(settings, "127.0.0.1:4312", "https://evil.example") == 403
    assert await status(settings, "127.0.0.1:4312", None) == 200, "no Origin: not a browser"


def test_listening_everywhere_with_only_loopback_names_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from whoosh_gateway.app import create_app

    with caplog.at_level(logging.WARNING, logger="whoosh_gateway.mcp.http"):
        create_app(GatewaySettings(host="0.0.0.0"), "nats://127.0.0.1:1")
        create_app(
            GatewaySettings(host="0.0.0.0", public_url="https://w.lan"), "nats://127.0.0.1:1"
        )
    warnings = [r.getMessage() for r in caplog.records if r.name == "whoosh_gateway.mcp.http"]
    assert len(warnings) == 1 and "gateway.mcp.allowed_hosts" in warnings[0]
