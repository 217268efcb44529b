"""whoosh_subscribe and whoosh_budgets over MCP (in process, real stack): a thread's
votes followed by cursor to its close with nothing missed or repeated, a long poll woken
by an agent event an address names, API key events for admins only, refusals that name
the problem."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from gateway.mcp_fixtures import client_as, gateway_app
from gateway.stack import Stack
from gateway.test_threads_rest import VOTERS, register_voters
from whoosh_shared.contract.api_keys import Role


@pytest.fixture(scope="module")
async def app(stack: Stack) -> AsyncIterator[FastAPI]:
    async with gateway_app(stack.nats.url) as app:
        yield app


async def test_a_threads_events_followed_by_cursor_to_its_close(
    app, admin: httpx.AsyncClient
) -> None:
    await register_voters(admin)
    async with client_as(app, Role.OPERATOR) as operator:
        started = await operator.call_tool(
            "whoosh_thread",
            {"topic": "What is 3+1?", "participants": [{"agent": n} for n in VOTERS],
             "answer_type": "int"},
        )  # fmt: skip
        assert not started.is_error, started.content
    thread_id = started.structured_content["id"]
    seen: list[dict] = []
    cursor, calls = 0, 0
    async with client_as(app, Role.VIEWER) as viewer:
        while not any(e["type"] == "ThreadClosed" for e in seen):
            calls += 1
            assert calls < 40, seen
            got = await viewer.call_tool(
                "whoosh_subscribe",
                {"scope": "thread", "target": thread_id, "after": cursor, "wait_s": 10,
                 "event_types": ["ThreadVoteCast", "ThreadClosed"]},
            )  # fmt: skip
            assert not got.is_error, got.content
            batch = got.structured_content
            assert batch["cursor"] >= cursor
            cursor = batch["cursor"]
            seen += batch["events"]
    ids = [e["event_id"] for e in seen]
    assert ids == sorted(set(ids)), "in order, each once"
    votes = sorted(e["data"]["value"] for e in seen if e["type"] == "ThreadVoteCast")
    assert votes == ["4", "4", "5"]
    assert seen[-1]["type"] == "ThreadClosed" and seen[-1]["data"]["decision"] == "4"
    assert all(e["aggregate_id"] == thread_id for e in seen)
    async with client_as(app, Role.VIEWER) as viewer:  # a thread is not an execution
        wrong = await viewer.call_tool(
            "whoosh_subscribe", {"scope": "execution", "target": thread_id}
        )
    assert wrong.is_error and f"unknown execution {thread_id}" in wrong.content[0].text


async def test_a_long_poll_on_an_address_wakes_on_its_agents_event(
    app, admin: httpx.AsyncClient
) -> None:
    await register_voters(admin)
    async with client_as(app, Role.VIEWER) as viewer, client_as(app, Role.OPERATOR) as operator:

        async def disable_soon() -> None:
            await asyncio.sleep(1.0)
            changed = await operator.call_tool(
                "whoosh_set_agent_enabled", {"name": "vote-b", "enabled": False}
            )
            assert not changed.is_error, changed.content

        began = time.monotonic()
        poll = viewer.call_tool(
            "whoosh_subscribe",
            {
                "scope": "address",
                "target": "bzzz://vote-*@maths",
                "after": -1,
                "wait_s": 15,
                "event_types": ["AgentDisabled", "AgentEnabled"],
            },
        )
        got, _ = await asyncio.gather(poll, disable_soon())
        took = time.monotonic() - began
        await operator.call_tool("whoosh_set_agent_enabled", {"name": "vote-b", "enabled": True})
    assert not got.is_error, got.content
    batch = got.structured_content
    assert [e["type"] for e in batch["events"]] == ["AgentDisabled"], batch
    assert batch["events"][0]["aggregate_type"] == "agent"
    assert batch["waited_s"] > 0.5 and took < 14, "woken by the event, not by the wait's end"


async def test_api_key_events_reach_admins_only(app, admin: httpx.AsyncClient) -> None:
    async with client_as(app, Role.ADMIN) as admin_mcp:
        now = await admin_mcp.call_tool("whoosh_subscribe", {"scope": "all", "after": -1})
    start = now.structured_content["cursor"]
    created = await admin.post("/api/v1/keys", json={"name": "sub-test", "role": "viewer"})
    assert created.status_code == 201, created.text
    args = {"scope": "all", "after": start, "wait_s": 10, "event_types": ["ApiKeyCreated"]}
    async with client_as(app, Role.ADMIN) as admin_mcp:
        for_admin = await admin_mcp.call_tool("whoosh_subscribe", args)
    assert [e["type"] for e in for_admin.structured_content["events"]] == ["ApiKeyCreated"]
    async with client_as(app, Role.VIEWER) as viewer:
        for_viewer = await viewer.call_tool("whoosh_subscribe", {**args, "wait_s": 0})
    assert for_viewer.structured_content["events"] == []
    assert for_viewer.structured_content["cursor"] >= for_admin.structured_content["cursor"]


async def test_refusals_name_the_problem(app) -> None:
    async with client_as(app, Role.VIEWER) as viewer:
        typo = await viewer.call_tool(
            "whoosh_subscribe", {"scope": "all", "event_types": ["ThreadVotesCast"]}
        )
        assert typo.is_error
        assert "unknown event type 'ThreadVotesCast'" in typo.content[0].text
        assert "ThreadVoteCast" in typo.content[0].text
        missing = await viewer.call_tool("whoosh_subscribe", {"scope": "thread"})
        assert missing.is_error and "needs a target" in missing.content[0].text
        unknown = await viewer.call_tool(
            "whoosh_subscribe",
            {"scope": "thread", "target": "00000000-0000-0000-0000-000000000001"},
        )
        assert unknown.is_error and "not_found" in unknown.content[0].text
        agent = await viewer.call_tool("whoosh_subscribe", {"scope": "agent", "target": "nobody"})
        assert agent.is_error and "unknown agent 'nobody'" in agent.content[0].text
        address = await viewer.call_tool(
            "whoosh_subscribe", {"scope": "address", "target": "whoosh://a@"}
        )
        assert address.is_error and "position 12" in address.content[0].text
    async with client_as(app, None) as nobody:
        with pytest.raises(Exception, match="no authenticated caller"):
            await nobody.call_tool("whoosh_subscribe", {"scope": "all"})


async def test_budgets_are_readable_by_a_viewer(app, admin: httpx.AsyncClient) -> None:
    put = await admin.put(
        "/api/v1/budgets/project:subtest", json={"tokens": 1000, "on_exhausted": "stop"}
    )
    assert put.status_code == 200, put.text
    async with client_as(app, Role.VIEWER) as viewer:
        got = await viewer.call_tool("whoosh_budgets", {})
    assert not got.is_error, got.content
    mine = [b for b in got.structured_content["budgets"] if b["scope"] == "project:subtest"]
    assert mine and mine[0]["tokens"] == 1000 and mine[0]["on_exhausted"] == "stop"
    assert mine[0]["used_tokens"] == 0 and mine[0]["share_used"] == 0.0
