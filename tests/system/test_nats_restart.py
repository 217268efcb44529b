"""Live subscribers survive a NATS crash: nats-server is killed (-9) while a task streams
to a WebSocket client and started again on the same port with the same store; the client
still gets every event of the task, in order, once, and the fleet goes on working."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest
from gateway.stack import SHELL_AGENT, Stack
from gateway.ws_client import of_type, open_ws, receive_until, send
from harness import NatsServer, eventually, wait_for_port
from system.tcp_proxy import CuttableProxy
from whoosh_shared.contract.api_keys import Role


@pytest.fixture
async def stack(tmp_path) -> AsyncIterator[Stack]:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    stack = Stack(tmp_path, nats, f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        stack.spawn("whoosh_coordinator", "serve", "--nats", nats.url, "--store", stack.store_url)
        executor = stack.spawn("whoosh_executor_cli", "--nats", nats.url)
        await asyncio.gather(
            stack.start_gateway(),
            eventually(lambda: "executor ready" in executor.output(), timeout=60, what="executor"),
        )
        stack.admin_key = await stack.issue_key(Role.ADMIN, "restart admin")
        async with stack.gateway.client(stack.admin_key) as admin:
            created = await admin.post("/api/v1/agents", json={"spec": SHELL_AGENT})
            assert created.status_code == 201, created.text
        yield stack
    finally:
        stack.stop()


def crash_and_restart(nats: NatsServer) -> None:
    assert nats.proc is not None
    nats.proc.send_signal(signal.SIGKILL)
    nats.proc.wait(10)
    nats.start()  # same port, same store directory
    wait_for_port(nats.port, timeout=10)


async def test_a_websocket_client_gets_every_event_once_in_order_across_a_nats_crash(
    stack: Stack,
) -> None:
    prompt = "echo before; sleep 4; echo after"
    async with await open_ws(stack.gateway.ws_url, stack.admin_key) as ws:
        await send(ws, {"action": "start", "task": {"prompt": prompt, "agent": "shell"}})
        accepted = await receive_until(ws, of_type("accepted"))
        task_id = accepted[-1]["task_id"]
        before = await receive_until(ws, of_type("execution_started", task_id))
        await asyncio.to_thread(crash_and_restart, stack.nats)
        after = await receive_until(ws, of_type("execution_completed", task_id))

    got = [m["event_id"] for m in before + after if m.get("task_id") == task_id and "event_id" in m]
    async with stack.gateway.client(stack.admin_key) as admin:

        async def answered() -> bool:
            return (await admin.get(f"/api/v1/tasks/{task_id}")).status_code == 200

        await eventually(answered, timeout=30, what="the gateway to answer again")
        history = (await admin.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
        stored = [e["notification_id"] for e in history]
        assert got == stored, "every stored event of the task, once, in order"
        assert after[-1]["output"].strip().splitlines() == ["before", "after"]
        # the fleet keeps working after the crash
        again = await admin.post("/api/v1/tasks", json={"prompt": "echo again", "agent": "shell"})
        assert again.status_code == 201, again.text


async def test_a_gateway_cut_off_from_nats_catches_up_on_what_it_missed(stack: Stack) -> None:
    """The deterministic case: a gateway (behind a proxy the test cuts) is away from NATS
    while the whole task runs and ends; once back, its socket client still gets every
    event of the task, in order, once, read from the store."""
    proxy = CuttableProxy(stack.nats.port)
    await proxy.start()
    try:
        gateway = await stack.start_gateway(nats_url=proxy.url)
        async with await open_ws(gateway.ws_url, stack.admin_key) as ws:
            await send(ws, {"action": "subscribe", "scope": "all"})
            await receive_until(ws, of_type("subscribed"))
            proxy.cut()
            async with stack.gateways[0].client(stack.admin_key) as admin:
                reply = await admin.post(
                    "/api/v1/tasks", json={"prompt": "echo while-away", "agent": "shell"}
                )
                task_id = reply.json()["task_id"]

                async def done() -> bool:
                    view = (await admin.get(f"/api/v1/tasks/{task_id}")).json()
                    return view["status"] == "completed"

                await eventually(done, timeout=30, what="the task to end while the gateway is away")
                history = (await admin.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
            proxy.open = True
            seen = await receive_until(ws, of_type("execution_completed", task_id))
        got = [m["event_id"] for m in seen if m.get("task_id") == task_id and "event_id" in m]
        assert got == [e["notification_id"] for e in history]
    finally:
        await proxy.close()


async def test_an_executor_away_from_nats_stops_a_run_cancelled_meanwhile(stack: Stack) -> None:
    """The cancellation is published while this executor cannot hear it; once back, it
    asks about its runs and stops the cancelled one (its output is kept), rather than
    letting it run to its timeout."""
    proxy = CuttableProxy(stack.nats.port)
    await proxy.start()
    try:
        away = stack.spawn("whoosh_executor_cli", "--nats", proxy.url, "--executor-id", "away")
        await eventually(lambda: "executor ready" in away.output(), timeout=60, what="executor")
        async with stack.gateway.client(stack.admin_key) as admin:
            spec = {"name": "away-shell", "type": "cli", "command": ["sh", "-s"]}
            assert (await admin.post("/api/v1/agents", json={"spec": spec})).status_code == 201
            # the first executor serves this agent type too: stop it, so "away" runs the task
            stack.processes[1].stop()
            reply = await admin.post(
                "/api/v1/tasks", json={"prompt": "echo started; sleep 60", "agent": "away-shell"}
            )
            task_id = reply.json()["task_id"]

            async def running() -> bool:
                return (await admin.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "running"

            await eventually(running, timeout=30, what="the task to run on 'away'")
            proxy.cut()
            cancelled = await admin.post(f"/api/v1/tasks/{task_id}/cancel", json={"reason": "x"})
            assert cancelled.status_code == 200, cancelled.text
            proxy.open = True

            async def output_kept() -> bool:
                events = (await admin.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
                return any(e["type"] == "TaskOutputKept" for e in events)

            await eventually(output_kept, timeout=30, what="the run to be stopped and reported")
        assert "task ended while NATS was away" in away.output()
    finally:
        await proxy.close()
