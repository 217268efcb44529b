#!/usr/bin/env python
"""What MCP costs over REST: reading one task through the gateway, sequentially.

    .venv/bin/python benchmarks/bench_mcp.py [--calls 300]

It starts, on loopback, the same stack as bench_gateway.py (nats-server, coordinator on
SQLite, executor-cli, one gateway, an admin key, rate limits out of the way), submits one
task, and reads it N times each way, one call at a time, over keep-alive connections:
- REST: `GET /api/v1/tasks/{id}` (httpx);
- MCP raw: `tools/call whoosh_get_task` as one JSON-RPC POST to /mcp (httpx, the 2025
  stateless path: no session, an SSE response), so the figure is the server's;
- MCP SDK, legacy and 2026-07-28: the same call through the official SDK client, as
  an AI host would make it (its own parsing and validation included).
Latency p50/p90/p99 and calls/s per way, printed and written as JSON to
benchmarks/results/. Not part of the test suite; every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
import httpx2  # noqa: E402
from bench_gateway import start_stack  # noqa: E402
from bench_support import BenchError, Proc, install_signal_handlers, log, summarize, watched  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


async def timed(n: int, one: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    for _ in range(min(20, n)):  # warm-up: connections, caches
        await one()
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await one()
        latencies.append(time.perf_counter() - t0)
    took = time.perf_counter() - started
    return {**summarize(latencies, (90, 99)), "per_s": round(n / took, 1)}


async def measure(gateway_url: str, token: str, n: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=auth, timeout=30) as http:
        accepted = await http.post("/api/v1/tasks", json={"prompt": "echo bench"})
        if accepted.status_code != 201:
            raise BenchError(f"submit refused: {accepted.text}")
        task_id = accepted.json()["task_id"]
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "whoosh_get_task", "arguments": {"task_id": task_id}},
        }

        async def rest() -> None:
            response = await http.get(f"/api/v1/tasks/{task_id}")
            if response.status_code != 200:
                raise BenchError(f"REST read failed: {response.text}")

        async def raw() -> None:
            response = await http.post("/mcp", json=call, headers=MCP_HEADERS)
            if response.status_code != 200 or '"isError":true' in response.text:
                raise BenchError(f"MCP read failed: {response.text[:500]}")

        results = {"rest": await timed(n, rest), "mcp_raw": await timed(n, raw)}
    for mode in ("legacy", "2026-07-28"):
        async with httpx2.AsyncClient(headers=auth, timeout=30) as h2:
            transport = streamable_http_client(f"{gateway_url}/mcp", http_client=h2)
            async with Client(transport, mode=mode) as client:

                async def sdk() -> None:
                    result = await client.call_tool("whoosh_get_task", {"task_id": task_id})
                    if result.is_error:
                        raise BenchError(f"MCP SDK read failed: {result.content}")

                results[f"mcp_sdk_{mode}"] = await timed(n, sdk)
    return results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-mcp-"))
    _, gateway_url, token, procs = await start_stack(workdir)
    log(f"stack up: gateway {gateway_url}, logs in {workdir / 'logs'}")
    return await watched(measure(gateway_url, token, args.calls), procs)


def report(results: dict[str, Any]) -> None:
    print("\nRead one task, sequential     p50 ms   p90 ms   p99 ms    calls/s")
    for way, row in results.items():
        print(f"  {way:<26} {row['p50_ms']:>7} {row['p90_ms']:>8} {row['p99_ms']:>8}"
              f" {row['per_s']:>10}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    arguments = parser.parse_args()
    install_signal_handlers()
    try:
        measured = asyncio.run(main(arguments))
    except BenchError as exc:
        print(f"bench_mcp: {exc}", file=sys.stderr)
        Proc.stop_all()
        sys.exit(1)
    finally:
        Proc.stop_all()
    report(measured)
    out = HERE / "results" / f"mcp-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "args": vars(arguments),
                               **measured}, indent=2))  # fmt: skip
    print(f"\nwritten to {out}")
