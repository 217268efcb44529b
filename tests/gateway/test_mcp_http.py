"""MCP over real Streamable HTTP with the SDK's own client, against the running stack's
gateways (subprocesses): both protocol eras, roles, two gateways, waits that end early,
cancel, keys (401, revoked, 429), Host/Origin, no redirect, no OAuth discovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from gateway.calls import error_of
from gateway.stack import Gateway, Stack
from harness import alive, eventually
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from whoosh_shared.contract.api_keys import Role

ERAS = ["legacy", "2026-07-28"]
FIVE_PER_MINUTE = {"WHOOSH__GATEWAY__RATE_LIMITS__REQUESTS_PER_MINUTE": "5"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def mcp_client(
    gateway: Gateway, key: str | None, mode: str = "legacy", statuses: list[int] | None = None
) -> AsyncIterator[Client]:
    """The SDK's client over real HTTP; `statuses` collects each response's status."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30, read=300),
        event_hooks={"response": [record]},
    ) as http:
        transport = streamable_http_client(f"{gateway.url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


async def submit(gateway: Gateway, key: str, prompt: str, **args: object) -> str:
    return (await submitted(gateway, key, prompt, **args))["task_id"]


async def submitted(gateway: Gateway, key: str, prompt: str, **args: object) -> dict:
    async with mcp_client(gateway, key) as client:
        result = await client.call_tool(
            "whoosh_submit_task", {"prompt": prompt, "capabilities": ["shell"], **args}
        )
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_per_role_over_http_in_both_eras(stack: Stack, keys, mode: str) -> None:
    async with mcp_client(stack.gateway, keys[Role.VIEWER], mode) as viewer:
        seen = {t.name for t in (await viewer.list_tools()).tools}
        refused = await viewer.call_tool("whoosh_cancel_task", {"task_id": str(uuid.uuid4())})
        status = await viewer.call_tool("whoosh_cluster_status", {})
    async with mcp_client(stack.gateways[1], keys[Role.OPERATOR], mode) as operator:
        operator_seen = {t.name for t in (await operator.list_tools()).tools}
    assert "whoosh_get_task" in seen and "whoosh_submit_task" not in seen
    assert {"whoosh_submit_task", "whoosh_cancel_task"} <= operator_seen
    assert refused.is_error and "needs the operator role" in refused.content[0].text
    assert status.structured_content["agents"] >= 1


@pytest.mark.parametrize("mode", ERAS)
async def test_submit_through_one_gateway_and_wait_through_the_other(
    stack: Stack, keys, mode: str
) -> None:
    one, two = stack.gateways[0], stack.gateways[1]
    task_id = await submit(one, keys[Role.OPERATOR], "sleep 3; echo first; sleep 10; echo last")
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with mcp_client(two, keys[Role.VIEWER], mode) as client:
        waited = await client.call_tool(
            "whoosh_wait_task",
            {"task_id": task_id, "timeout_s": 60},
            progress_callback=on_progress,
        )
    assert not waited.is_error, waited.content
    body = waited.structured_content
    assert body["ended"] is True and body["task"]["status"] == "completed"
    assert body["task"]["output_tail"].split() == ["first", "last"]
    assert len(messages) >= 2, messages  # at start, then every 10 s at least
    assert any("first" in m for m in messages), messages


async def test_a_wait_cut_off_by_the_client_does_not_cancel_the_task(stack: Stack, keys) -> None:
    task_id = await submit(stack.gateway, keys[Role.OPERATOR], "sleep 8; echo survived")
    async with mcp_client(stack.gateways[1], keys[Role.VIEWER]) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await client.call_tool("whoosh_wait_task", {"task_id": task_id, "timeout_s": 60})
            pytest.fail("the wait should still have been running")
    async with mcp_client(stack.gateway, keys[Role.VIEWER]) as client:
        waited = await client.call_tool("whoosh_wait_task", {"task_id": task_id, "timeout_s": 60})
    assert waited.structured_content["task"]["status"] == "completed"
    assert "survived" in waited.structured_content["task"]["output_tail"]


async def test_cancel_kills_the_process_group(stack: Stack, keys, tmp_path: Path) -> None:
    shell_pid, sleeper_pid = tmp_path / "shell.pid", tmp_path / "sleeper.pid"
    task_id = await submit(
        stack.gateway,
        keys[Role.OPERATOR],
        f"echo $$ > {shell_pid}\nsleep 60 &\necho $! > {sleeper_pid}\nwait\n",
    )

    async def pids() -> list[int] | None:
        try:
            return [int(shell_pid.read_text()), int(sleeper_pid.read_text())]
        except (FileNotFoundError, ValueError):
            return None

    running = await eventually(pids, timeout=30, what="the task's processes")
    assert all(alive(pid) for pid in running)
    async with mcp_client(stack.gateways[1], keys[Role.OPERATOR]) as client:
        cancelled = await client.call_tool(
            "whoosh_cancel_task", {"task_id": task_id, "reason": "enough"}
        )
        assert not cancelled.is_error, cancelled.content
        waited = await client.call_tool("whoosh_wait_task", {"task_id": task_id, "timeout_s": 30})
    assert waited.structured_content["task"]["status"] == "cancelled"
    await eventually(
        lambda: not any(alive(pid) for pid in running), timeout=15, what="the group killed"
    )


async def test_keys_401_without_bad_or_revoked_and_oauth_discovery_is_404(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    async with stack.gateway.client() as anonymous:
        no_key = await anonymous.post("/mcp", json=INIT, headers=MCP_HEADERS)
        bad_key = await anonymous.post(
            "/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer whk_bad"}
        )
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
        ):
            error_of(await anonymous.get(path), 404, "not_found")
    assert "no API key" in error_of(no_key, 401, "unauthorized")
    assert no_key.headers["WWW-Authenticate"] == "Bearer"
    error_of(bad_key, 401, "unauthorized")

    token = (await admin.post("/api/v1/keys", json={"name": "mcp doomed", "role": "viewer"})).json()
    statuses: list[int] = []
    async with mcp_client(stack.gateways[1], token["key"], statuses=statuses) as client:
        assert (await client.list_tools()).tools
        revoked = await admin.delete(f"/api/v1/keys/{token['prefix']}")
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(MCPError):
            await client.call_tool("whoosh_cluster_status", {})
    assert statuses[0] == 200 and statuses[-1] == 401, statuses


async def test_requests_per_minute_apply_to_mcp_with_retry_after(stack: Stack) -> None:
    limited = await stack.start_gateway(env=FIVE_PER_MINUTE)
    try:
        key = await stack.issue_key(Role.VIEWER, "mcp limited")
        left = 60 - time.time() % 60
        if left < 15:
            await asyncio.sleep(left + 0.1)
        async with limited.client(key) as http:
            answers = [await http.post("/mcp", json=INIT, headers=MCP_HEADERS) for _ in range(6)]
    finally:
        limited.process.stop()
        stack.gateways.remove(limited)
    assert [a.status_code for a in answers[:5]] == [200] * 5, [a.text for a in answers]
    assert "5 requests per minute" in error_of(answers[5], 429, "rate_limited")
    assert 1 <= int(answers[5].headers["Retry-After"]) <= 60


async def test_host_and_origin_checks_and_no_redirect(stack: Stack, keys) -> None:
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {keys[Role.VIEWER]}"}
    async with stack.gateway.client(follow_redirects=False) as http:
        evil_host = await http.post("/mcp", json=INIT, headers={**auth, "Host": "evil.example"})
        evil_origin = await http.post(
            "/mcp", json=INIT, headers={**auth, "Origin": "http://evil.example"}
        )
        no_key_evil_host = await http.post(
            "/mcp", json=INIT, headers={**MCP_HEADERS, "Host": "evil.example:80"}
        )
        fine = await http.post(
            "/mcp", json=INIT, headers={**auth, "Origin": "http://localhost:1234"}
        )
    assert "evil.example" in error_of(evil_host, 421, "invalid_host")
    assert "evil.example" in error_of(no_key_evil_host, 421, "invalid_host")
    assert "evil.example" in error_of(evil_origin, 403, "invalid_origin")
    assert fine.status_code == 200, fine.text  # exactly /mcp: no 307 to /mcp/
    assert "mcp-session-id" not in fine.headers, "stateless: no session to stick to"


async def test_the_same_idempotency_key_gives_one_task(stack: Stack, keys) -> None:
    key = f"mcp-{uuid.uuid4()}"
    operator = keys[Role.OPERATOR]
    first = await submitted(stack.gateway, operator, "echo once", idempotency_key=key)
    again = await submitted(stack.gateways[1], operator, "echo once", idempotency_key=key)
    other = await submitted(stack.gateway, operator, "echo once", idempotency_key=key + "-2")
    assert first["task_id"] == again["task_id"] != other["task_id"]
    assert (first["replayed"], again["replayed"], other["replayed"]) == (False, True, False)
    async with mcp_client(stack.gateway, operator) as client:
        reused = await client.call_tool(
            "whoosh_submit_task",
            {"prompt": "echo another", "capabilities": ["shell"], "idempotency_key": key},
        )
    assert reused.is_error and "idempotency_key_reused" in reused.content[0].text
