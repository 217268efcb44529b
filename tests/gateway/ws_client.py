"""A WebSocket client for the gateway tests: JSON in and out, waits bounded in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

RECEIVE_TIMEOUT_S = 30.0


async def open_ws(url: str, key: str | None, **options: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await connect(url, additional_headers=headers, proxy=None, **options)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, timeout: float = RECEIVE_TIMEOUT_S) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], limit: int = 100_000
) -> list[dict[str, Any]]:
    """Messages up to and including the first for which `done` is true."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        message = await receive(ws)
        seen.append(message)
        if done(message):
            return seen
    raise AssertionError(f"no final message among {len(seen)}")


def of_type(kind: str, task_id: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == kind and (task_id is None or m.get("task_id") == task_id)
