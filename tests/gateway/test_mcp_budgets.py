"""Budgets and usage over MCP (in process, real stack): a viewer reads both, with the
same figures as REST."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from gateway.mcp_fixtures import client_as, gateway_app
from gateway.stack import Stack
from whoosh_shared.contract.api_keys import Role


@pytest.fixture(scope="module")
async def app(stack: Stack) -> AsyncIterator[FastAPI]:
    async with gateway_app(stack.nats.url) as app:
        yield app


async def test_a_viewer_reads_budgets_and_usage(app, admin: httpx.AsyncClient) -> None:
    made = await admin.put("/api/v1/budgets/project:mcp-test", json={"tokens": 777})
    assert made.status_code == 200, made.text
    async with client_as(app, Role.VIEWER) as viewer:
        budgets = await viewer.call_tool("whoosh_budgets", {})
        usage = await viewer.call_tool("whoosh_usage", {})
    assert not budgets.is_error and not usage.is_error, (budgets.content, usage.content)
    scopes = {b["scope"]: b for b in budgets.structured_content["budgets"]}
    assert scopes["project:mcp-test"]["tokens"] == 777
    rest = (await admin.get("/api/v1/usage")).json()
    assert usage.structured_content["total"]["tasks"] <= rest["total"]["tasks"]
    assert set(usage.structured_content) == set(rest)
