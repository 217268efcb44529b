"""Who may define command agents, through the gateway, and agents' env never shown:
REST reads, the audit trail and the WebSocket all get masked values."""

from __future__ import annotations

import uuid

import httpx
from gateway.stack import Stack
from gateway.ws_client import of_type, open_ws, receive_until, send
from whoosh_shared.contract.api_keys import Role

SECRET = "sk-live-0123456789"


def spec(name: str, **fields) -> dict:
    return {"name": name, "command": fields.pop("command", ["cat"]), **fields}


async def test_an_operator_is_told_which_role_or_entry_allows_a_command(
    operator: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    name = f"rce-{uuid.uuid4().hex[:6]}"
    body = {"spec": spec(name, command=["bash", "-c", "id"], host="127.0.0.1:1"),
            "test_connectivity": True}  # fmt: skip
    refused = await operator.post("/api/v1/agents", json=body)
    assert refused.status_code == 403, refused.text  # refused before any executor is asked
    error = refused.json()["error"]
    assert error["code"] == "forbidden"
    assert "admin key" in error["message"] and "security.allowed_commands" in error["message"]
    assert (await operator.get(f"/api/v1/agents/{name}")).status_code == 404
    plain = {"spec": spec(name, command=["bash", "-c", "id"])}
    assert (await admin.post("/api/v1/agents", json=plain)).status_code == 201
    change = await operator.patch(f"/api/v1/agents/{name}", json={"env": {"LD_PRELOAD": "x"}})
    assert change.status_code == 403 and "admin" in change.json()["error"]["message"]
    assert (await admin.delete(f"/api/v1/agents/{name}")).status_code == 200


async def test_a_metadata_endpoint_is_refused_even_for_an_admin(admin: httpx.AsyncClient) -> None:
    body = {"spec": {"name": "meta", "type": "ollama", "endpoint": "http://169.254.169.254"}}
    refused = await admin.post("/api/v1/agents", json=body)
    assert refused.status_code == 403
    assert "security.allowed_endpoints" in refused.json()["error"]["message"]


async def test_env_values_are_never_shown(
    stack: Stack, operator: httpx.AsyncClient, admin: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    name = f"secretive-{uuid.uuid4().hex[:6]}"
    ws = await open_ws(stack.gateway.ws_url, keys[Role.VIEWER])
    try:
        await send(ws, {"action": "subscribe", "scope": "all"})
        await receive_until(ws, of_type("subscribed"))  # before the agent is registered
        env = {"OPENAI_API_KEY": SECRET, "HOME_TOKEN": "${HOME_TOKEN}"}
        created = await operator.post("/api/v1/agents", json={"spec": spec(name, env=env)})
        assert created.status_code == 201, created.text
        seen = await receive_until(ws, lambda m: m.get("type") == "agent_status" and name in str(m))
    finally:
        await ws.close()
    shown = created.json()["agent"]["spec"]["env"]
    assert shown == {"OPENAI_API_KEY": "***", "HOME_TOKEN": "${HOME_TOKEN}"}
    reads = [
        created.text,
        (await operator.get(f"/api/v1/agents/{name}")).text,
        (await operator.get("/api/v1/agents")).text,
        (await admin.get("/api/v1/events", params={"limit": 1000})).text,
        str(seen),
    ]
    for text in reads:
        assert SECRET not in text
    assert "***" in str(seen)
