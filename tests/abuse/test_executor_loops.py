"""An executor's own loops are supervised like the coordinator's: a fault injected into a
real executor process's loop (WHOOSH_FAULT_LOOP) is logged at ERROR with its cause, the
loop is restarted with backoff, the executor's loop report names it, the coordinator adds
it to GetStats, so the gateway's /readyz answers 503 naming it and `whoosh status` prints
it and exits 1, while the executor keeps running tasks. A loop that recovers drops out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from gateway.stack import SHELL_AGENT, Stack
from harness import NatsServer, eventually
from whoosh_shared.contract.api_keys import Role

from abuse.helpers import still_serving

FAST = {
    "WHOOSH__EXECUTOR__HEARTBEAT_INTERVAL_S": "0.5",
    "WHOOSH__EXECUTOR__PROBE_INTERVAL_S": "0.5",
}
CLI_DOWN = "cli-faulty: host checks"
LLM_DOWN = "llm-faulty: probe rounds"
INJECTED = "InjectedFault: fault injected into"


@pytest.fixture
async def faulty_stack(tmp_path) -> AsyncIterator[Stack]:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    stack = Stack(tmp_path, nats, f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        stack.spawn("whoosh_coordinator", "serve", "--nats", nats.url, "--store", stack.store_url)
        await stack.start_gateway()  # ready before any executor reports a loop down
        stack.admin_key = await stack.issue_key(Role.ADMIN, "loops admin")
        async with stack.gateway.client(stack.admin_key) as admin:
            created = await admin.post("/api/v1/agents", json={"spec": SHELL_AGENT})
            assert created.status_code == 201, created.text
        # host checks fail at their first 4 starts (then recover); probe rounds always.
        stack.spawn(
            "whoosh_executor_cli",
            *("--nats", nats.url, "--executor-id", "cli-faulty"),
            env={**FAST, "WHOOSH_FAULT_LOOP": "host checks:4"},
        )
        stack.spawn(
            "whoosh_executor_ollama",
            *("--nats", nats.url, "--executor-id", "llm-faulty"),
            env={**FAST, "WHOOSH_FAULT_LOOP": "probe rounds"},
        )
        stack.spawn(
            "whoosh_monitor",
            *("--nats", nats.url),
            env={"WHOOSH__MONITORING__METRICS_PORT": "0", "WHOOSH_FAULT_LOOP": "alerts"},
        )
        yield stack
    finally:
        stack.stop()


async def test_a_failing_executor_loop_shows_until_it_recovers_and_work_goes_on(
    faulty_stack: Stack, tmp_path
) -> None:
    async with faulty_stack.gateway.client(faulty_stack.admin_key) as admin:

        async def both_down() -> dict | None:
            ready = await admin.get("/readyz")
            body = ready.json()
            down = body.get("down", {})
            return body if ready.status_code == 503 and {CLI_DOWN, LLM_DOWN} <= set(down) else None

        body = await eventually(both_down, timeout=60, interval=0.1, what="both loops down")
        assert body["down"][CLI_DOWN].startswith(INJECTED), body

        async def monitor_down() -> list[str] | None:
            down = (await admin.get("/readyz")).json().get("down", {})
            found = [n for n in down if n.startswith("monitor-") and n.endswith(": alerts")]
            return found or None

        await eventually(monitor_down, timeout=30, interval=0.2, what="the monitor's loop")
        assert "probe rounds" in body["detail"]

        status = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "whoosh_cli", "--nats", faulty_stack.nats.url, "status"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "WHOOSH_CONFIG": os.devnull},
            cwd=tmp_path,
        )
        assert status.returncode == 1, status.stderr
        assert f"DOWN      {LLM_DOWN}: {INJECTED} probe rounds" in status.stdout

        await still_serving(admin)  # the CLI executor runs tasks meanwhile

        async def cli_recovered() -> dict | None:
            down = (await admin.get("/readyz")).json().get("down", {})
            return down if CLI_DOWN not in down and LLM_DOWN in down else None

        await eventually(cli_recovered, timeout=60, interval=0.2, what="host checks to recover")

    cli_log = faulty_stack.processes[2].output()
    died = [line for line in cli_log.splitlines() if "host checks died" in line]
    assert len(died) == 4, cli_log[-3000:]
    assert '"level": "error"' in died[0] and INJECTED in died[0], died[0]
    assert "host checks is healthy again" in cli_log
