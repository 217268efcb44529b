#!/usr/bin/env python
"""The gateway under load: REST submit throughput, and WebSocket fan-out of one busy task.

    .venv/bin/python benchmarks/bench_gateway.py [--submits 2000] [--concurrency 1,16,64]
                                                 [--clients 1,10,50] [--lines 2000]

It starts, on loopback, a fresh nats-server, a coordinator (SQLite), one executor-cli and
one gateway, and issues an admin key over the bus (rate limits raised out of the way).
- submit: N `POST /api/v1/tasks` with C in flight (to a disabled agent, so the tasks
  queue and only the submit path is measured), against the same N `SubmitTask` sent
  straight over NATS: tasks/s and per-request latency each way, and the gateway's added
  ms at p50.
- fan-out: K WebSocket clients subscribe to one task that prints L lines (a small Python
  program stamps each line with its send time); each client's delivery latency per line
  (receive time - stamp), lines received, and whether any client was cut off as slow.
  The clients share this process, so at large K their own parsing is part of the figure.
The table is printed and written as JSON to benchmarks/results/.

Not part of the test suite. Every process it starts is stopped at the end, on errors and
on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # the test harness: nats-server binary, free ports
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
from bench_support import (  # noqa: E402
    BenchError,
    Proc,
    install_signal_handlers,
    log,
    run_concurrent,
    start_nats,
    summarize,
    wait_for_coordinator,
    watched,
)
from harness import free_port  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec  # noqa: E402
from whoosh_shared.contract.api_keys import Role, generate_key  # noqa: E402
from whoosh_shared.contract.commands import CreateApiKey, RegisterAgent, SubmitTask  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

UNLIMITED = {
    "WHOOSH__GATEWAY__RATE_LIMITS__REQUESTS_PER_MINUTE": "10000000",
    "WHOOSH__GATEWAY__RATE_LIMITS__CONCURRENT_TASKS": "10000000",
    "WHOOSH_CONFIG": "/dev/null",
}
STAMPED_LINES = """python3 -c '
import sys, time
for i in range({lines}):
    print(f"{{time.time():.6f}} line {{i}}", flush=True)
    if i % 50 == 49:
        time.sleep(0.005)
'"""


async def start_stack(workdir: Path) -> tuple[str, str, str, list[Proc]]:
    gateway_port = free_port()
    logs = workdir / "logs"
    logs.mkdir()
    nats, nats_url = start_nats(workdir, name="nats", logdir=logs)
    procs = [nats]
    store = f"sqlite:///{workdir / 'events.sqlite'}"
    python = sys.executable
    procs.append(
        Proc("coordinator", [python, "-m", "whoosh_coordinator", "serve", "--nats", nats_url,
                             "--store", store], logs, env=UNLIMITED).start()
    )  # fmt: skip
    procs.append(
        Proc("executor-cli", [python, "-m", "whoosh_executor_cli", "--nats", nats_url], logs,
             env=UNLIMITED).start()
    )  # fmt: skip
    procs.append(
        Proc("gateway", [python, "-m", "whoosh_gateway", "--nats", nats_url, "--port",
                         str(gateway_port)], logs, env=UNLIMITED).start()
    )  # fmt: skip
    bus = Bus(nats_url, "bench")
    await bus.connect()
    try:
        await wait_for_coordinator(bus)
        key = generate_key()
        reply = await bus.send(
            CreateApiKey(prefix=key.prefix, key_hash=key.key_hash, name="bench", role=Role.ADMIN)
        )
        if not reply.accepted:
            raise BenchError(f"key not created: {reply.reason}")
        # Only a disabled agent while submits are measured: with an agent that has free
        # slots, every scheduling pass would walk the whole (growing) queue of tasks it
        # cannot take, and the figure would be the scheduler's, not the submit path's.
        await bus.send(
            RegisterAgent(spec=AgentSpec(name="parked", command=["true"], enabled=False))
        )
    finally:
        await bus.close()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get(f"{gateway_url}/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the gateway did not become ready")
            await asyncio.sleep(0.1)
    return nats_url, gateway_url, key.token, procs


class KeepAliveClient:
    """One HTTP/1.1 keep-alive connection, kept minimal: at 64 connections httpx's own
    pool costs more CPU than the gateway does, and the figure would be the client's."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        await self.writer.drain()
        response = await self.reader.readuntil(b"\r\n\r\n")
        lines = response.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length")
        )
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def submit_phase(
    nats_url: str, gateway_url: str, token: str, submits: int, concurrency: int
) -> dict[str, Any]:
    body = {"prompt": "queued", "agent": "parked"}
    host, port = gateway_url.removeprefix("http://").split(":")
    idle = [KeepAliveClient(host, int(port), token) for _ in range(concurrency)]

    async def via_gateway() -> dict[str, Any]:
        client = idle.pop()
        try:
            started = time.perf_counter()
            status, answer = await client.post("/api/v1/tasks", body)
            if status != 201:
                raise BenchError(f"submit answered {status}: {answer[:200]!r}")
            return {"s": time.perf_counter() - started}
        finally:
            idle.append(client)

    try:
        await run_concurrent("warm-up", 50, concurrency, via_gateway, 120)
        gateway, gateway_s = await run_concurrent(
            f"gateway C={concurrency}", submits, concurrency, via_gateway, 600
        )
    finally:
        for client in idle:
            client.close()
    bus = Bus(nats_url, "bench-direct")
    await bus.connect()
    try:

        async def direct() -> dict[str, Any]:
            started = time.perf_counter()
            reply = await bus.send(SubmitTask(prompt="queued", agent="parked"))
            if not reply.accepted:
                raise BenchError(f"direct submit rejected: {reply.reason}")
            return {"s": time.perf_counter() - started}

        nats, nats_s = await run_concurrent(
            f"NATS C={concurrency}", submits, concurrency, direct, 600
        )
    finally:
        await bus.close()
    through_gateway = summarize([r["s"] for r in gateway])
    straight = summarize([r["s"] for r in nats])
    return {
        "concurrency": concurrency,
        "gateway": {**through_gateway, "per_s": round(submits / gateway_s, 1)},
        "nats": {**straight, "per_s": round(submits / nats_s, 1)},
        "added_p50_ms": round(through_gateway["p50_ms"] - straight["p50_ms"], 3),
    }


async def fanout_phase(gateway_url: str, token: str, clients: int, lines: int) -> dict[str, Any]:
    ws_url = gateway_url.replace("http://", "ws://") + "/api/v1/ws"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers) as client:
        busy = {"name": "busy", "command": ["sh", "-s"], "max_concurrent": 4}
        await client.post("/api/v1/agents", json={"spec": busy})  # 409 after the first
        created = await client.post(
            "/api/v1/tasks",
            json={"prompt": "sleep 1; " + STAMPED_LINES.format(lines=lines), "agent": "busy"},
        )
        task_id = created.json()["task_id"]
    latencies: list[float] = []
    received: list[int] = []
    closed_slow = 0

    async def one_client() -> None:
        nonlocal closed_slow
        got = 0
        async with connect(ws_url, additional_headers=headers, proxy=None, max_size=None) as ws:
            await ws.send(json.dumps({"action": "subscribe", "scope": "task", "id": task_id,
                                      "last_event_id": 0}))  # fmt: skip
            try:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    now = time.time()
                    if message.get("kind") == "message":
                        got += 1
                        latencies.append(now - float(message["text"].split(" ", 1)[0]))
                    elif message.get("type") in ("execution_completed", "execution_error"):
                        break
            except Exception as exc:  # a close is what is being measured too
                if "4008" in str(exc):
                    closed_slow += 1
                else:
                    raise
        received.append(got)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    took = time.perf_counter() - started
    return {
        "clients": clients,
        "lines": lines,
        "delivery": summarize(latencies),
        "lines_received_min": min(received) if received else 0,
        "lines_received_max": max(received) if received else 0,
        "messages_per_s": round(sum(received) / took, 1),
        "closed_as_slow": closed_slow,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-gateway-"))
    nats_url, gateway_url, token, procs = await start_stack(workdir)
    log(f"stack up: gateway {gateway_url}, logs in {workdir / 'logs'}")

    async def measure() -> dict[str, Any]:
        submits = [
            await submit_phase(nats_url, gateway_url, token, args.submits, c)
            for c in args.concurrency
        ]
        fanout = [await fanout_phase(gateway_url, token, k, args.lines) for k in args.clients]
        return {"submit": submits, "fanout": fanout}

    return await watched(measure(), procs)


def report(results: dict[str, Any]) -> None:
    print("\nREST submit (tasks/s, p50/p99 ms)      gateway              NATS direct     added")
    for row in results["submit"]:
        g, n = row["gateway"], row["nats"]
        print(f"  C={row['concurrency']:<4} {g['per_s']:>9}/s {g['p50_ms']:>7} {g['p99_ms']:>8}"
              f"   {n['per_s']:>9}/s {n['p50_ms']:>7} {n['p99_ms']:>8}"
              f"   {row['added_p50_ms']:>7} ms")  # fmt: skip
    print(
        "\nWebSocket fan-out of one task         delivery p50/p99 ms   lines min/max   msg/s  cut"
    )
    for row in results["fanout"]:
        d = row["delivery"]
        print(f"  {row['clients']:>4} clients x {row['lines']} lines   {d['p50_ms']:>9} "
              f"{d['p99_ms']:>9}   {row['lines_received_min']:>6}/{row['lines_received_max']:<6}"
              f" {row['messages_per_s']:>8} {row['closed_as_slow']:>4}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16, 64]
    )
    parser.add_argument(
        "--clients", type=lambda v: [int(x) for x in v.split(",")], default=[1, 10, 50]
    )
    parser.add_argument("--lines", type=int, default=2000)
    arguments = parser.parse_args()
    install_signal_handlers()
    try:
        measured = asyncio.run(main(arguments))
    except BenchError as exc:
        print(f"bench_gateway: {exc}", file=sys.stderr)
        Proc.stop_all()
        sys.exit(1)
    finally:
        Proc.stop_all()
    report(measured)
    out = HERE / "results" / f"gateway-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "args": vars(arguments),
                               **measured}, indent=2))  # fmt: skip
    print(f"\nwritten to {out}")
