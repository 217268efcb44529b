"""The thread tools over MCP (in process, real stack): whoosh_lookup, whoosh_thread,
whoosh_get, whoosh_post, with the role split and readable refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from gateway.mcp_fixtures import client_as, gateway_app
from gateway.stack import Stack
from gateway.test_threads_rest import VOTERS, register_voters
from harness import eventually
from whoosh_shared.contract.api_keys import Role


@pytest.fixture(scope="module")
async def app(stack: Stack) -> AsyncIterator[FastAPI]:
    async with gateway_app(stack.nats.url) as app:
        yield app


async def test_lookup_start_get_and_post(app, admin: httpx.AsyncClient) -> None:
    await register_voters(admin)
    async with client_as(app, Role.VIEWER) as viewer:
        found = await viewer.call_tool("whoosh_lookup", {"address": "bzzz://vote-*@maths"})
        assert found.structured_content["agents"] == list(VOTERS)
        bad = await viewer.call_tool("whoosh_lookup", {"address": "whoosh://a@"})
        assert bad.is_error and "position 12" in bad.content[0].text
        refused = await viewer.call_tool("whoosh_thread", {"topic": "q", "address": "whoosh://x"})
        assert refused.is_error and "needs the operator role" in refused.content[0].text
    async with client_as(app, Role.OPERATOR) as operator:
        started = await operator.call_tool(
            "whoosh_thread",
            {"topic": "What is 2+2?", "participants": [{"agent": n} for n in VOTERS],
             "answer_type": "int"},
        )  # fmt: skip
        assert not started.is_error, started.content
        thread_id = started.structured_content["id"]

        async def closed() -> dict | None:
            got = await operator.call_tool("whoosh_get", {"thread_id": thread_id})
            view = got.structured_content
            return view if view["state"] == "closed" else None

        view = await eventually(closed, timeout=60, what="the thread to close")
        assert (view["outcome"], view["decision"]) == ("consensus", "4")
        late = await operator.call_tool("whoosh_post", {"thread_id": thread_id, "body": "hi"})
        assert late.is_error and "closed" in late.content[0].text
