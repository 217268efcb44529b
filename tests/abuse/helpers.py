"""Small steps the abuse tests share: run a task to its end, check the fleet still serves."""

from __future__ import annotations

from typing import Any

import httpx
from harness import eventually

END_STATES = {"completed", "failed", "cancelled", "timed_out"}


async def finished(client: httpx.AsyncClient, task_id: str, timeout: float = 60) -> dict[str, Any]:
    """The task's view once it has ended (fails the test if it does not within `timeout`)."""
    seen: dict[str, Any] = {}

    async def ended() -> bool:
        reply = await client.get(f"/api/v1/tasks/{task_id}")
        assert reply.status_code == 200, reply.text
        seen.update(reply.json())
        return seen["status"] in END_STATES

    await eventually(ended, timeout=timeout, interval=0.2, what=f"task {task_id} to end")
    return seen


async def still_serving(client: httpx.AsyncClient) -> None:
    """A small task runs to completion and the task list answers: the fleet is not stalled."""
    reply = await client.post(
        "/api/v1/tasks", json={"prompt": "echo still-serving", "capabilities": ["shell"]}
    )
    assert reply.status_code == 201, reply.text
    view = await finished(client, reply.json()["task_id"])
    assert view["status"] == "completed", view
    assert view["output"].strip() == "still-serving"
    listed = await client.get("/api/v1/tasks", params={"limit": 1000})
    assert listed.status_code == 200, listed.text
