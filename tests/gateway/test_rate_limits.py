"""Per-key limits: requests per minute (counted in NATS, so shared by every gateway) and
unfinished tasks (decided by the coordinator), answered with 429 and Retry-After."""

from __future__ import annotations

import asyncio
import time

from gateway.calls import error_of, submit, wait_task
from gateway.stack import Stack
from whoosh_shared.contract.api_keys import Role, generate_key

FIVE_PER_MINUTE = {"WHOOSH__GATEWAY__RATE_LIMITS__REQUESTS_PER_MINUTE": "5"}


async def inside_one_window() -> None:
    """Counters are per clock minute: start a burst well before the minute turns."""
    left = 60 - time.time() % 60
    if left < 10:
        await asyncio.sleep(left + 0.1)


async def test_requests_per_minute_are_counted_across_gateways_per_key(stack: Stack) -> None:
    one = await stack.start_gateway(env=FIVE_PER_MINUTE)
    two = await stack.start_gateway(env=FIVE_PER_MINUTE)
    try:
        key = await stack.issue_key(Role.VIEWER, "limited viewer")
        await inside_one_window()
        other = await stack.issue_key(Role.VIEWER, "another viewer")
        async with one.client(key) as via_one, two.client(key) as via_two:
            for client in (via_one, via_two, via_one, via_two, via_one):
                assert (await client.get("/api/v1/me")).status_code == 200
            refused = await via_two.get("/api/v1/me")
            assert "5 requests per minute" in error_of(refused, 429, "rate_limited")
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
        async with one.client(other) as fresh:
            assert (await fresh.get("/api/v1/me")).status_code == 200, "limits are per key"
        async with one.client("whk_bad") as stranger:
            error_of(await stranger.get("/api/v1/me"), 401, "unauthorized")
    finally:
        for gateway in (one, two):
            gateway.process.stop()
            stack.gateways.remove(gateway)


async def test_concurrent_requests_on_two_gateways_get_exactly_the_budget(stack: Stack) -> None:
    """20 requests at once, half on each gateway, for a key allowed 5 a minute: 5 pass."""
    one = await stack.start_gateway(env=FIVE_PER_MINUTE)
    two = await stack.start_gateway(env=FIVE_PER_MINUTE)
    try:
        key = await stack.issue_key(Role.VIEWER, "bursty")
        await inside_one_window()
        async with one.client(key) as via_one, two.client(key) as via_two:
            await via_one.get("/healthz")  # connections open before the burst
            await via_two.get("/healthz")
            answers = await asyncio.gather(
                *(client.get("/api/v1/me") for client in [via_one, via_two] * 10)
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 5 + [429] * 15
    finally:
        for gateway in (one, two):
            gateway.process.stop()
            stack.gateways.remove(gateway)


async def test_a_key_may_have_only_so_many_unfinished_tasks(stack: Stack) -> None:
    gateway = await stack.start_gateway(env={"WHOOSH__GATEWAY__RATE_LIMITS__CONCURRENT_TASKS": "1"})
    try:
        key = await stack.issue_key(Role.OPERATOR, "one at a time")
        async with gateway.client(key) as client:
            first = await submit(client, "sleep 30", agent="shell")
            refused = await client.post("/api/v1/tasks", json={"prompt": "echo 2"})
            assert "limit is 1" in error_of(refused, 429, "limited")
            assert int(refused.headers["Retry-After"]) > 0
            assert (await client.post(f"/api/v1/tasks/{first}/cancel")).status_code == 200
            second = await submit(client, "echo 2", agent="shell")
            await wait_task(client, second, "completed")
        async with gateway.client(await stack.issue_key(Role.OPERATOR, "other")) as other:
            assert isinstance(await submit(other, "echo mine"), str)
    finally:
        gateway.process.stop()
        stack.gateways.remove(gateway)


async def test_the_websocket_counts_actions_against_the_same_budget(stack: Stack) -> None:
    from gateway.ws_client import open_ws, receive, send

    gateway = await stack.start_gateway(env=FIVE_PER_MINUTE)
    try:
        key = await stack.issue_key(Role.VIEWER, "chatty")
        await inside_one_window()
        async with await open_ws(gateway.ws_url, key) as ws:  # the connection is one request
            answers = []
            for _ in range(5):
                await send(ws, {"action": "ping"})
                answers.append(await receive(ws))
        assert [a["type"] for a in answers] == ["pong"] * 4 + ["error"]
        assert answers[-1]["code"] == "rate_limited"
    finally:
        gateway.process.stop()
        stack.gateways.remove(gateway)


async def test_refused_keys_from_one_address_are_bounded_without_asking_the_coordinator(
    stack: Stack,
) -> None:
    gateway = await stack.start_gateway(
        env={"WHOOSH__GATEWAY__RATE_LIMITS__REFUSED_KEYS_PER_MINUTE": "3"}
    )
    try:
        known = await stack.issue_key(Role.VIEWER, "known viewer")
        await inside_one_window()
        async with gateway.client(known) as client:
            assert (await client.get("/api/v1/me")).status_code == 200  # verified, cached
        strangers = [generate_key().token for _ in range(4)]
        for token in strangers[:3]:
            async with gateway.client(token) as client:
                error_of(await client.get("/api/v1/me"), 401, "unauthorized")
        async with gateway.client(strangers[3]) as client:
            refused = await client.get("/api/v1/me")
        assert "3 refused API keys per minute from 127.0.0.1" in error_of(
            refused, 429, "rate_limited"
        )
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        async with gateway.client(known) as client:  # a verified key is not held up
            assert (await client.get("/api/v1/me")).status_code == 200
        async with stack.gateway.client(strangers[3]) as client:  # counted per gateway
            error_of(await client.get("/api/v1/me"), 401, "unauthorized")
    finally:
        gateway.process.stop()
        stack.gateways.remove(gateway)
