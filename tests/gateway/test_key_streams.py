"""Keys end where they must: a revoked or expired key's open WebSockets close (4401) on
every gateway within 5 s; and with auth disabled, a web page elsewhere gets nothing
(Host and Origin are checked)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from gateway.stack import Stack
from gateway.ws_client import open_ws, receive, send
from websockets.exceptions import ConnectionClosed, InvalidStatus

CLOSE_WITHIN_S = 5.0


async def closed_with(ws, within: float) -> tuple[int, str, float]:
    """Wait for the server to close the socket: its code, reason and when."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), within)
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or "", time.monotonic() - started


async def subscribed(url: str, key: str):
    ws = await open_ws(url, key)
    await send(ws, {"action": "subscribe", "scope": "all"})
    assert (await receive(ws))["type"] == "subscribed"
    return ws


async def test_a_revoked_keys_sockets_close_on_every_gateway(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    token = (await admin.post("/api/v1/keys", json={"name": "streamer", "role": "operator"})).json()
    sockets = [await subscribed(g.ws_url, token["key"]) for g in stack.gateways[:2]]
    assert (await admin.delete(f"/api/v1/keys/{token['prefix']}")).status_code == 200
    for ws in sockets:
        code, reason, took = await closed_with(ws, CLOSE_WITHIN_S)
        assert code == 4401 and "revoked" in reason and took < CLOSE_WITHIN_S
    again = await open_ws(stack.gateways[1].ws_url, token["key"])
    assert (await receive(again))["code"] == "unauthorized"


async def test_an_expired_keys_socket_closes(stack: Stack, admin: httpx.AsyncClient) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    body = {"name": "brief", "role": "viewer", "expires_at": expires.isoformat()}
    token = (await admin.post("/api/v1/keys", json=body)).json()["key"]
    ws = await subscribed(stack.gateways[1].ws_url, token)
    code, reason, _ = await closed_with(ws, 2 + CLOSE_WITHIN_S)
    assert code == 4401 and "expired" in reason
    assert datetime.now(UTC) - expires < timedelta(seconds=CLOSE_WITHIN_S)


async def test_without_auth_only_this_machines_clients_get_in(stack: Stack) -> None:
    local = await stack.start_gateway(env={"WHOOSH__GATEWAY__INSECURE_NO_AUTH": "true"})
    port = local.url.rsplit(":", 1)[1]
    try:
        async with local.client() as client:
            assert (await client.get("/api/v1/me")).status_code == 200
            rebound = await client.get("/api/v1/me", headers={"Host": f"evil.example:{port}"})
            assert rebound.status_code == 403
            assert "Host" in rebound.text and "insecure_no_auth" in rebound.text
            cross = await client.post("/api/v1/tasks", json={"prompt": "echo pwned"},
                                      headers={"Origin": "https://evil.example"})  # fmt: skip
            assert cross.status_code == 403 and "Origin" in cross.text
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(local.ws_url, None, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        own = await open_ws(local.ws_url, None, origin=f"http://localhost:{port}")
        await send(own, {"action": "ping"})
        assert (await receive(own))["type"] == "pong"
        await own.close()
    finally:
        local.process.stop()
        stack.gateways.remove(local)
