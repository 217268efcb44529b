"""REST for scheduling: an agent's traffic weight, and a task's explanation."""

from __future__ import annotations

import httpx
from gateway.calls import error_of, submit, wait_task


async def all_events(admin: httpx.AsyncClient) -> list[dict]:
    found: list[dict] = []
    after: int | None = 0
    while after is not None:
        page = (await admin.get("/api/v1/events", params={"after": after, "limit": 1000})).json()
        found += page["events"]
        after = page["next_cursor"]
    return found


async def test_weight_route_sets_validates_and_records_who(
    operator: httpx.AsyncClient, viewer: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    spec = {"name": "canary", "command": ["cat"], "weight": 20}
    created = await operator.post("/api/v1/agents", json={"spec": spec})
    assert created.status_code == 201, created.text
    assert created.json()["agent"]["spec"]["weight"] == 20

    changed = await operator.put("/api/v1/agents/canary/weight", json={"weight": 0})
    assert changed.status_code == 200, changed.text
    assert changed.json()["agent"]["spec"]["weight"] == 0
    patched = await operator.patch("/api/v1/agents/canary", json={"weight": 35})
    assert patched.json()["agent"]["spec"]["weight"] == 35

    too_big = await operator.put("/api/v1/agents/canary/weight", json={"weight": 101})
    assert "weight" in error_of(too_big, 422, "invalid")
    negative = await operator.patch("/api/v1/agents/canary", json={"weight": -1})
    assert "weight" in error_of(negative, 422, "invalid")
    unknown = await operator.put("/api/v1/agents/ghost/weight", json={"weight": 5})
    assert "unknown agent 'ghost'" in error_of(unknown, 404, "not_found")
    error_of(await viewer.put("/api/v1/agents/canary/weight", json={"weight": 5}), 403, "forbidden")

    changes = [e["data"] for e in await all_events(admin) if e["type"] == "AgentWeightChanged"]
    assert [(c["previous"], c["weight"]) for c in changes][-2:] == [(20, 0), (0, 35)]
    assert all(c["actor"].startswith("key ") for c in changes)
    assert (await operator.delete("/api/v1/agents/canary")).status_code == 200


async def test_explain_route_names_the_agents_verdicts(
    operator: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    task_id = await submit(operator, "echo explained", capabilities=["shell"])
    await wait_task(operator, task_id, "completed")
    explained = await viewer.get(f"/api/v1/tasks/{task_id}/explain")
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["task_id"] == task_id and body["agent"] == "shell"
    assert body["decision"].startswith("ran on shell; submitted now: ")
    shell = next(a for a in body["agents"] if a["agent"] == "shell")
    assert shell["eligible"] is True and shell["weight"] == 100
    missing = await viewer.get("/api/v1/tasks/00000000-0000-4000-8000-000000000000/explain")
    error_of(missing, 404, "not_found")
