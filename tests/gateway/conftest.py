"""One real stack for the gateway tests (see stack.py), and keys of each role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from gateway.stack import OPERATOR_COMMANDS, SHELL_AGENT, Stack
from harness import NatsServer, eventually
from whoosh_shared.contract.api_keys import Role


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("gateway-stack")
    nats = NatsServer(root / "nats")
    nats.start()
    stack = Stack(root, nats, f"sqlite:///{root / 'events.sqlite'}")
    try:
        stack.spawn(
            "whoosh_coordinator", "serve", "--nats", nats.url, "--store", stack.store_url,
            env=OPERATOR_COMMANDS,
        )  # fmt: skip
        executor = stack.spawn("whoosh_executor_cli", "--nats", nats.url)
        await asyncio.gather(  # in parallel: on a busy machine each start takes seconds
            stack.start_gateway(),
            stack.start_gateway(),
            eventually(
                lambda: "executor ready" in executor.output(), timeout=60, what="the executor"
            ),
        )
        stack.admin_key = await stack.issue_key(Role.ADMIN, "test admin")
        async with stack.gateway.client(stack.admin_key) as admin:
            created = await admin.post("/api/v1/agents", json={"spec": SHELL_AGENT})
            assert created.status_code == 201, created.text
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
async def keys(stack: Stack) -> dict[Role, str]:
    return {
        Role.ADMIN: stack.admin_key,
        Role.OPERATOR: await stack.issue_key(Role.OPERATOR, "test operator"),
        Role.VIEWER: await stack.issue_key(Role.VIEWER, "test viewer"),
    }


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.gateway.client(stack.admin_key) as client:
        yield client


@pytest.fixture
async def operator(stack: Stack, keys: dict[Role, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.gateway.client(keys[Role.OPERATOR]) as client:
        yield client


@pytest.fixture
async def viewer(stack: Stack, keys: dict[Role, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.gateway.client(keys[Role.VIEWER]) as client:
        yield client
