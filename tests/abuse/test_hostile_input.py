"""Hostile input at the gateway: JSON nested 10,000 deep, 10,000 subscriptions on one
socket, 50 MB on a CLI agent's stdout. Each gets a clear, bounded answer and the fleet
keeps serving everyone else."""

from __future__ import annotations

import json

import httpx
from gateway.stack import Stack
from gateway.ws_client import of_type, open_ws, receive, receive_until, send

from abuse.helpers import finished, still_serving

DEEP = 10_000


async def test_json_nested_10000_deep_is_a_clear_4xx(admin: httpx.AsyncClient) -> None:
    before = len((await admin.get("/api/v1/tasks", params={"limit": 1000})).json()["items"])
    body = '{"prompt": "echo x", "llm": {"options": {"a": ' + "[" * DEEP + "]" * DEEP + "}}}"
    reply = await admin.post(
        "/api/v1/tasks", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code in (400, 422), reply.text
    assert "deep" in reply.json()["error"]["message"]
    shallow = '{"prompt": "echo x", "llm": {"options": {"a": ' + "[" * 40 + "]" * 40 + "}}}"
    reply = await admin.post(
        "/api/v1/tasks", content=shallow, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 422 and "deeper than 32" in reply.json()["error"]["message"]
    after = len((await admin.get("/api/v1/tasks", params={"limit": 1000})).json()["items"])
    assert after == before, "nothing written"
    await still_serving(admin)


async def test_deep_json_on_the_socket_is_an_error_and_the_socket_stays_up(
    abuse_stack: Stack, admin: httpx.AsyncClient
) -> None:
    async with await open_ws(abuse_stack.gateway.ws_url, abuse_stack.admin_key) as ws:
        await ws.send('{"action": "ping", "x": ' + "[" * DEEP + "]" * DEEP + "}")
        error = await receive(ws)
        assert error["type"] == "error" and "deep" in error["message"], error
        await send(ws, {"action": "ping", "request_id": "after"})
        assert (await receive_until(ws, of_type("pong")))[-1]["request_id"] == "after"


async def test_ten_thousand_subscriptions_on_one_socket_are_bounded(
    abuse_stack: Stack, admin: httpx.AsyncClient
) -> None:
    async with await open_ws(abuse_stack.gateway.ws_url, abuse_stack.admin_key) as ws:
        ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(10_000)]
        for i, task_id in enumerate(ids):
            await ws.send(json.dumps({"action": "subscribe", "scope": "task", "id": task_id,
                                      "request_id": str(i)}))  # fmt: skip
        answers = [await receive(ws) for _ in ids]
        accepted = [a for a in answers if a["type"] == "subscribed"]
        refused = [a for a in answers if a["type"] == "error"]
        assert len(accepted) == 1000 and len(refused) == 9000
        assert "1000 subscriptions" in refused[0]["message"]
        await send(ws, {"action": "ping", "request_id": "alive"})
        assert (await receive_until(ws, of_type("pong")))[-1]["request_id"] == "alive"
    await still_serving(admin)


async def test_fifty_megabytes_of_stdout_is_cut_and_the_fleet_keeps_serving(
    admin: httpx.AsyncClient,
) -> None:
    script = "head -c 52428800 /dev/zero | tr '\\0' 'a'; echo; echo the-end"
    reply = await admin.post("/api/v1/tasks", json={"prompt": script, "capabilities": ["shell"]})
    assert reply.status_code == 201, reply.text
    view = await finished(admin, reply.json()["task_id"], timeout=120)
    assert view["status"] == "completed", view
    output = view["output"]
    assert output.rstrip().endswith("the-end")
    assert "truncated" in output and len(output.encode()) <= 128 * 1024
    await still_serving(admin)
