"""The abuse suite: hostile or merely huge input against a real WHOOSH (nats-server with
its default 1 MB max_payload, coordinator on SQLite, CLI executor, gateway).

Run it alone with `.venv/bin/pytest tests/abuse -q`. Each test shows the same three
things: a clear refusal (4xx / rejected command) or a bounded result, other clients
still served, and nothing half-written in the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from gateway.stack import SHELL_AGENT, Stack
from harness import NatsServer, eventually
from whoosh_shared.contract.api_keys import Role

SMALL_LIMITS = {
    # Small enough to test "at and just over" without moving 8 MiB per case.
    "WHOOSH__LIMITS__MAX_PROMPT_BYTES": str(3 * 1024 * 1024),
    "WHOOSH__LIMITS__MAX_OUTPUT_BYTES": str(4 * 1024 * 1024),
}
# 10,000 socket messages from one key must not spend the key's rate for the next tests.
GATEWAY_ENV = {**SMALL_LIMITS, "WHOOSH__GATEWAY__RATE_LIMITS__REQUESTS_PER_MINUTE": "1000000"}


@pytest.fixture(scope="module")
async def abuse_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("abuse-stack")
    nats = NatsServer(root / "nats")
    nats.start()
    stack = Stack(root, nats, f"sqlite:///{root / 'events.sqlite'}")
    try:
        stack.spawn(
            "whoosh_coordinator",
            "serve",
            "--nats",
            nats.url,
            "--store",
            stack.store_url,
            env=SMALL_LIMITS,
        )
        executor = stack.spawn("whoosh_executor_cli", "--nats", nats.url, env=SMALL_LIMITS)
        await asyncio.gather(
            stack.start_gateway(env=GATEWAY_ENV),
            eventually(
                lambda: "executor ready" in executor.output(), timeout=60, what="the executor"
            ),
        )
        stack.admin_key = await stack.issue_key(Role.ADMIN, "abuse admin")
        async with stack.gateway.client(stack.admin_key) as admin:
            created = await admin.post("/api/v1/agents", json={"spec": SHELL_AGENT})
            assert created.status_code == 201, created.text
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def admin(abuse_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with abuse_stack.gateway.client(abuse_stack.admin_key) as client:
        yield client
