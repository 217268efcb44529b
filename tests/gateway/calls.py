"""Small REST helpers shared by the gateway tests."""

from __future__ import annotations

import httpx
from harness import eventually


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return body["error"]["message"]


async def wait_task(client: httpx.AsyncClient, task_id: str, *statuses: str) -> dict:
    async def reached() -> dict | None:
        view = (await client.get(f"/api/v1/tasks/{task_id}")).json()
        return view if view["status"] in statuses else None

    return await eventually(reached, timeout=30, what=f"task {task_id} in {statuses}")


async def submit(client: httpx.AsyncClient, prompt: str, **fields) -> str:
    response = await client.post("/api/v1/tasks", json={"prompt": prompt, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith(response.json()["task_id"])
    return response.json()["task_id"]
