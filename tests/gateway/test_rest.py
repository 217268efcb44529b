"""The REST API against a real stack: each endpoint's success and failure paths, and the
one error shape every failure shares."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from gateway.calls import error_of, submit, wait_task
from gateway.stack import Stack
from harness import eventually


async def test_health_and_readiness(stack: Stack) -> None:
    async with stack.gateway.client() as anyone:
        assert (await anyone.get("/healthz")).json() == {"status": "ok"}
        ready = (await anyone.get("/readyz")).json()
        assert ready["status"] == "ready" and ready["nats"] and ready["coordinator"]
        document = (await anyone.get("/openapi.json")).json()
        assert "/api/v1/tasks" in document["paths"] and document["info"]["title"]
        docs = await anyone.get("/docs")
        assert docs.status_code == 200 and "/openapi.json" in docs.text


async def test_readiness_fails_without_a_coordinator(stack: Stack, nats_url: str) -> None:
    """A gateway on a NATS where no coordinator listens is alive but not ready."""
    from harness import ServiceProcess, free_port

    port = free_port()
    proc = ServiceProcess(
        "whoosh_gateway",
        ["--nats", nats_url, "--port", str(port)],
        {"WHOOSH_CONFIG": "/dev/null"},
        stack.root / "lonely-gateway.log",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def answers() -> httpx.Response | None:
                try:
                    return await client.get("/readyz")
                except httpx.TransportError:
                    return None

            ready = await eventually(answers, timeout=30, what="the lonely gateway")
            assert ready.status_code == 503
            assert ready.json() == {
                "status": "not_ready",
                "nats": True,
                "coordinator": False,
                "detail": "no coordinator",
                "down": {},
            }
            assert (await client.get("/healthz")).status_code == 200
            refused = await client.get("/api/v1/agents", headers={"X-API-Key": "whk_x"})
            error_of(refused, 401, "unauthorized")
    finally:
        proc.stop()


async def test_a_task_runs_and_its_output_and_history_can_be_read(
    operator: httpx.AsyncClient,
) -> None:
    task_id = await submit(operator, "echo out-$((40+2))", agent="shell", priority=7)
    view = await wait_task(operator, task_id, "completed")
    assert view["priority"] == 7 and view["agent"] == "shell"
    assert view["submitted_by"].startswith("key ") and "test operator" in view["submitted_by"]

    output = (await operator.get(f"/api/v1/tasks/{task_id}/output")).json()
    assert output["status"] == "completed" and output["output"].strip() == "out-42"
    assert output["exit_code"] == 0 and output["usage"]["duration_s"] > 0

    history = (await operator.get(f"/api/v1/tasks/{task_id}/events")).json()
    types = [e["type"] for e in history["events"]]
    assert types[0] == "TaskSubmitted" and types[-1] == "TaskCompleted"
    assert "TaskStarted" in types and history["next_cursor"] is None
    assert history["events"][0]["data"]["actor"] == view["submitted_by"]
    first = (await operator.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 1})).json()
    rest = await operator.get(
        f"/api/v1/tasks/{task_id}/events", params={"after": first["next_cursor"]}
    )
    assert [e["type"] for e in first["events"] + rest.json()["events"]] == types


async def test_task_list_filters_and_pages_with_a_cursor(operator: httpx.AsyncClient) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    marker = uuid.uuid4().hex[:8]
    ids = [await submit(operator, f"echo {marker}-{i}", agent="shell") for i in range(3)]
    tagged = await submit(operator, "echo cap", capabilities=["shell"])
    await asyncio.gather(*(wait_task(operator, i, "completed") for i in [*ids, tagged]))

    params = {"submitted_after": since.isoformat(), "agent": "shell", "limit": 2}
    first = (await operator.get("/api/v1/tasks", params=params)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await operator.get("/api/v1/tasks", params={**params, "cursor": first["next_cursor"]})
    ).json()
    seen = [t["id"] for t in first["items"] + second["items"]]
    assert seen[:4] == [tagged, *ids[::-1]], "newest first, no task twice across pages"

    recent = {"submitted_after": since.isoformat(), "capability": "shell"}
    by_capability = await operator.get("/api/v1/tasks", params=recent)
    assert [t["id"] for t in by_capability.json()["items"]] == [tagged]
    done = await operator.get("/api/v1/tasks", params={"status": "completed", "limit": 1000})
    assert set(ids) <= {t["id"] for t in done.json()["items"]}
    future = datetime.now(UTC) + timedelta(hours=1)
    later = await operator.get("/api/v1/tasks", params={"submitted_after": future.isoformat()})
    assert later.json() == {"items": [], "next_cursor": None}

    error_of(await operator.get("/api/v1/tasks", params={"cursor": "abc"}), 400, "invalid_cursor")
    error_of(await operator.get("/api/v1/tasks", params={"status": "nope"}), 422, "invalid")
    naive = await operator.get("/api/v1/tasks", params={"submitted_after": "2026-01-01T00:00:00"})
    assert "timezone" in error_of(naive, 422, "invalid")


async def test_cancel_stops_a_running_task_and_a_second_cancel_is_a_conflict(
    operator: httpx.AsyncClient,
) -> None:
    task_id = await submit(operator, "echo started; sleep 30", agent="shell")
    await wait_task(operator, task_id, "running")
    cancelled = await operator.post(
        f"/api/v1/tasks/{task_id}/cancel", json={"reason": "changed my mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["reason"] == "changed my mind"
    again = await operator.post(f"/api/v1/tasks/{task_id}/cancel")
    assert "nothing to cancel" in error_of(again, 409, "bad_state")


async def test_unknown_ids_are_404_and_malformed_ids_422(operator: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    for path in ("", "/output", "/events"):
        error_of(await operator.get(f"/api/v1/tasks/{missing}{path}"), 404, "not_found")
    error_of(await operator.post(f"/api/v1/tasks/{missing}/cancel"), 404, "not_found")
    assert "task_id" in error_of(await operator.get("/api/v1/tasks/not-a-uuid"), 422, "invalid")
    error_of(await operator.get("/api/v1/agents/ghost"), 404, "not_found")
    error_of(await operator.get("/api/v1/agents/Bad%20Name"), 422, "invalid")
    error_of(await operator.get("/api/v1/nowhere"), 404, "not_found")
    error_of(await operator.delete("/api/v1/tasks"), 405, "method_not_allowed")


async def test_bad_bodies_are_refused_with_the_problem_named(operator: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    malformed = await operator.post("/api/v1/tasks", content=b'{"prompt": ', headers=headers)
    assert "JSON" in error_of(malformed, 422, "invalid")
    wrong_type = await operator.post("/api/v1/tasks", json={"prompt": "x", "priority": "high"})
    assert "priority" in error_of(wrong_type, 422, "invalid")
    unknown = await operator.post("/api/v1/tasks", json={"prompt": "x", "actor": "root"})
    assert "actor" in error_of(unknown, 422, "invalid")
    blank = await operator.post("/api/v1/tasks", json={"prompt": "   "})
    assert "empty" in error_of(blank, 422, "invalid")
    array = await operator.post("/api/v1/tasks", json=["prompt"])
    error_of(array, 422, "invalid")
    no_agent = await operator.post("/api/v1/tasks", json={"prompt": "x", "model": "nonexistent"})
    error_of(no_agent, 422, "no_capable_agent")
    over = 8 * 1024 * 1024 + 1  # limits.max_prompt_bytes, default
    huge = await operator.post("/api/v1/tasks", json={"prompt": "x" * over})
    message = error_of(huge, 413, "too_large")
    assert f"{over} bytes" in message and "limits.max_prompt_bytes" in message

    async def chunks():  # past the body limit (3 x the prompt limit + 1 MiB), never declared
        for _ in range(300):
            yield b"x" * 100_000

    streamed = await operator.post("/api/v1/tasks", content=chunks(), headers=headers)
    error_of(streamed, 413, "too_large")
    assert (await operator.get("/healthz")).status_code == 200, "the service stays up"


async def test_agents_register_update_disable_enable_and_remove(
    operator: httpx.AsyncClient,
) -> None:
    spec = {"name": "temp-agent", "command": ["cat"], "capabilities": ["x"]}
    created = await operator.post("/api/v1/agents", json={"spec": spec})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["agent"]["status"] == "idle" and body["agent"]["capacity"] == 1
    assert body["connectivity"] == {
        "tested": False,
        "ok": None,
        "detail": "a local agent: nothing to reach",
    }
    duplicate = await operator.post("/api/v1/agents", json={"spec": spec})
    error_of(duplicate, 409, "duplicate")

    updated = await operator.patch("/api/v1/agents/temp-agent", json={"max_concurrent": 3})
    assert updated.json()["agent"]["capacity"] == 3
    error_of(await operator.patch("/api/v1/agents/temp-agent", json={}), 422, "invalid")
    error_of(
        await operator.patch("/api/v1/agents/temp-agent", json={"type": "ollama"}), 422, "invalid"
    )
    disabled = await operator.post("/api/v1/agents/temp-agent/disable")
    assert disabled.json()["agent"]["status"] == "disabled"
    enabled = await operator.post("/api/v1/agents/temp-agent/enable")
    assert enabled.json()["agent"]["status"] == "idle"

    listed = (await operator.get("/api/v1/agents", params={"limit": 1})).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    rest = (await operator.get("/api/v1/agents", params={"cursor": listed["next_cursor"]})).json()
    names = [a["name"] for a in (a["spec"] for a in listed["items"] + rest["items"])]
    assert names == sorted(names) and {"shell", "temp-agent"} <= set(names)

    removed = await operator.delete("/api/v1/agents/temp-agent")
    assert removed.json() == {"name": "temp-agent", "removed": True}
    error_of(await operator.get("/api/v1/agents/temp-agent"), 404, "not_found")
    error_of(await operator.delete("/api/v1/agents/temp-agent"), 404, "not_found")
    bad_spec = await operator.post("/api/v1/agents", json={"spec": {"name": "x", "type": "cli"}})
    assert "command" in error_of(bad_spec, 422, "invalid")


async def test_a_remote_agent_that_cannot_be_reached_is_refused_with_the_cause(
    operator: httpx.AsyncClient,
) -> None:
    """The executor's connectivity test (an SSH connect to a port where nothing listens)."""
    from harness import free_port

    spec = {"name": "far-away", "command": ["sh", "-s"], "host": f"127.0.0.1:{free_port()}",
            "ssh": {"insecure_skip_host_key_check": True, "connect_timeout_s": 5}}  # fmt: skip
    refused = await operator.post("/api/v1/agents", json={"spec": spec})
    assert "cannot be reached" in error_of(refused, 422, "connectivity")
    error_of(await operator.get("/api/v1/agents/far-away"), 404, "not_found")
    untested = await operator.post(
        "/api/v1/agents", json={"spec": spec, "test_connectivity": False}
    )
    assert untested.status_code == 201 and untested.json()["connectivity"] is None
    assert (await operator.delete("/api/v1/agents/far-away")).status_code == 200


async def test_an_agent_with_work_in_flight_cannot_be_removed(
    operator: httpx.AsyncClient,
) -> None:
    spec = {"name": "busy-agent", "command": ["sh", "-s"]}
    assert (await operator.post("/api/v1/agents", json={"spec": spec})).status_code == 201
    task_id = await submit(operator, "sleep 30", agent="busy-agent")
    await wait_task(operator, task_id, "running")
    busy = (await operator.get("/api/v1/agents/busy-agent")).json()
    assert busy["status"] == "full" and busy["active_tasks"] == 1
    refused = await operator.delete("/api/v1/agents/busy-agent")
    assert "in flight" in error_of(refused, 409, "bad_state")
    await operator.post(f"/api/v1/tasks/{task_id}/cancel")
    await eventually(
        lambda: _removed(operator, "busy-agent"), timeout=15, what="the agent to be removable"
    )


async def _removed(client: httpx.AsyncClient, name: str) -> bool:
    return (await client.delete(f"/api/v1/agents/{name}")).status_code == 200


async def test_me_and_stats(viewer: httpx.AsyncClient) -> None:
    me = (await viewer.get("/api/v1/me")).json()
    assert me["role"] == "viewer" and me["auth"] == "api_key" and me["key_prefix"]
    stats = (await viewer.get("/api/v1/stats")).json()
    assert stats["agents"] >= 1 and "completed" in stats["tasks_by_status"]
    assert (await viewer.get("/api/v1/alerts", params={"status": "firing"})).json() == {
        "alerts": []
    }
    error_of(await viewer.get("/api/v1/alerts", params={"status": "loud"}), 422, "invalid")
