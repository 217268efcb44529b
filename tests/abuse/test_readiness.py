"""A loop that is down shows: the coordinator's answer to GetStats names it, the gateway's
/readyz answers 503 naming it, and `whoosh status` prints it and exits 1. The coordinator
here is a stand-in on a NATS of the test's own, answering GetStats as a coordinator whose
relay is failing would (the real relay's failure is shown in test_relay_faults)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from harness import NatsServer, ServiceProcess, eventually, free_port
from nats.aio.msg import Msg
from whoosh_shared.contract import queries as q
from whoosh_shared.runtime.bus import Bus

RELAY_DOWN = {"relay": "publish failing: no ack within 10s"}


@pytest.fixture
async def failing_coordinator(tmp_path) -> AsyncIterator[NatsServer]:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    bus = Bus(nats.url, "stand-in-coordinator")
    await bus.connect()

    async def answer(msg: Msg) -> None:
        stats = q.FleetStats(
            tasks_by_status={}, agents=0, agents_enabled=0, in_flight=0, position=0,
            down=RELAY_DOWN,
        )  # fmt: skip
        await msg.respond(q.QueryReply.ok(stats).model_dump_json().encode())

    await bus.nc.subscribe(q.GetStats.SUBJECT, cb=answer)
    try:
        yield nats
    finally:
        await bus.close()
        nats.stop()


async def test_a_loop_down_makes_readyz_503_and_whoosh_status_name_it(
    failing_coordinator: NatsServer, tmp_path
) -> None:
    port = free_port()
    gateway = ServiceProcess(
        "whoosh_gateway",
        ["--nats", failing_coordinator.url, "--port", str(port)],
        {"WHOOSH_CONFIG": os.devnull},
        tmp_path / "gateway.log",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def answers() -> httpx.Response | None:
                try:
                    return await client.get("/readyz")
                except httpx.TransportError:
                    return None

            ready = await eventually(answers, timeout=60, what="the gateway")
        assert ready.status_code == 503
        body = ready.json()
        assert body["coordinator"] is True and body["down"] == RELAY_DOWN
        assert "relay" in body["detail"] and "no ack" in body["detail"]
    finally:
        gateway.stop()

    status = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "whoosh_cli", "--nats", failing_coordinator.url, "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WHOOSH_CONFIG": os.devnull},
        cwd=tmp_path,
    )
    assert status.returncode == 1, status.stderr
    assert "DOWN      relay: publish failing: no ack within 10s" in status.stdout
