"""Idempotent submit through the gateway: `Idempotency-Key` on REST and
`idempotency_key` on a WebSocket start give one task however often, and through
whichever gateway, a request is sent again."""

from __future__ import annotations

import uuid

import httpx
from gateway.stack import Stack
from gateway.ws_client import of_type, open_ws, receive_until, send
from whoosh_shared.contract.api_keys import Role

TASK = {"prompt": "echo once", "agent": "shell"}


async def test_the_same_key_through_two_gateways_gives_one_task(
    stack: Stack, keys: dict[Role, str]
) -> None:
    key = str(uuid.uuid4())
    headers = {"Idempotency-Key": key}
    answers = []
    for gateway in stack.gateways:
        async with gateway.client(keys[Role.OPERATOR]) as client:
            answers.append(await client.post("/api/v1/tasks", json=TASK, headers=headers))
    first, again = answers
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["task_id"] == again.json()["task_id"]
    assert first.headers["Location"] == again.headers["Location"]


async def test_a_key_is_the_callers_own(stack: Stack, keys: dict[Role, str]) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    ids = []
    for role in (Role.OPERATOR, Role.ADMIN):
        async with stack.gateway.client(keys[role]) as client:
            created = await client.post("/api/v1/tasks", json=TASK, headers=headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["task_id"])
    assert ids[0] != ids[1]


async def test_a_reused_key_and_a_malformed_key_are_refused(operator: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    assert (await operator.post("/api/v1/tasks", json=TASK, headers=headers)).status_code == 201
    other = await operator.post(
        "/api/v1/tasks", json={**TASK, "prompt": "echo other"}, headers=headers
    )
    assert other.status_code == 422, other.text
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert headers["Idempotency-Key"] in error["message"]
    bad = await operator.post("/api/v1/tasks", json=TASK, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.text


async def test_a_websocket_start_sent_twice_starts_one_task(
    stack: Stack, keys: dict[Role, str]
) -> None:
    key = str(uuid.uuid4())
    accepted = []
    for gateway in stack.gateways:
        ws = await open_ws(gateway.ws_url, keys[Role.OPERATOR])
        try:
            await send(ws, {"action": "start", "task": TASK, "idempotency_key": key})
            accepted.append((await receive_until(ws, of_type("accepted")))[-1])
        finally:
            await ws.close()
    assert accepted[0]["task_id"] == accepted[1]["task_id"]
    assert [a["replayed"] for a in accepted] == [False, True]
    async with stack.gateway.client(keys[Role.OPERATOR]) as client:  # the REST twin agrees
        rest = await client.post("/api/v1/tasks", json=TASK, headers={"Idempotency-Key": key})
    assert rest.status_code == 200 and rest.json()["task_id"] == accepted[0]["task_id"]
