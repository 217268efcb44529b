"""`/api/v1/workflows` and `/api/v1/executions` against the real stack: shell steps run on
the stack's `sh -s` agent through a real executor."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from harness import eventually

DIAMOND = """
whoosh: workflow/v1
name: rest-diamond
inputs:
  word: {type: string, required: true}
steps:
  a: {type: shell, command: "echo a-{{ inputs.word }}"}
  b: {type: shell, needs: [a], command: "echo b-$(echo '{{ steps.a.output | trim }}')"}
  c: {type: shell, needs: [a], command: "echo c >&2; exit 3", on_error: continue}
  gate: {type: approval, needs: [b, c], message: "go on after {{ steps.b.output | trim }}?"}
  d: {type: shell, needs: [gate], command: "echo d-{{ steps.c.exit_code }}"}
"""


async def wait_until(client: httpx.AsyncClient, execution_id: str, predicate: Any) -> dict:
    found: dict = {}

    async def check() -> bool:
        nonlocal found
        answer = await client.get(f"/api/v1/executions/{execution_id}")
        found = answer.json()
        return bool(predicate(found))

    await eventually(check, timeout=60, what=f"execution {execution_id}")
    return found


def steps(view: dict) -> dict[str, dict]:
    return {s["id"]: s for s in view["steps"]}


async def test_store_run_approve_and_read_an_execution(operator: httpx.AsyncClient) -> None:
    stored = await operator.post("/api/v1/workflows", json={"source": DIAMOND})
    assert stored.status_code == 201, stored.text
    assert stored.json()["version"] == 1
    listed = await operator.get("/api/v1/workflows")
    assert "rest-diamond" in [w["name"] for w in listed.json()["workflows"]]
    shown = await operator.get("/api/v1/workflows/rest-diamond")
    assert shown.json()["source"] == DIAMOND and shown.json()["shown_version"] == 1

    started = await operator.post("/api/v1/workflows/rest-diamond/run",
                                  json={"inputs": {"word": "x"}})  # fmt: skip
    assert started.status_code == 201, started.text
    run = started.json()["execution_id"]
    view = await wait_until(operator, run, lambda v: steps(v)["gate"]["status"] == "waiting")
    got = steps(view)
    assert got["a"]["output"] == "a-x\n" and got["b"]["output"] == "b-a-x\n"
    assert got["c"]["status"] == "failed" and got["c"]["exit_code"] == 3
    assert got["a"]["agent"] == "shell" and got["a"]["attempts"] == 1
    assert got["a"]["duration_s"] is not None and got["a"]["started_at"]
    assert got["gate"]["message"] == "go on after b-a-x?"

    wrong = await operator.post(f"/api/v1/executions/{run}/approve", json={"step": "d"})
    assert wrong.status_code == 409, wrong.text
    approved = await operator.post(f"/api/v1/executions/{run}/approve", json={"step": "gate"})
    assert approved.status_code == 200, approved.text
    done = await wait_until(operator, run, lambda v: v["status"] != "running")
    assert done["status"] == "succeeded"
    assert steps(done)["d"]["output"] == "d-3\n"
    assert steps(done)["gate"]["decided_by"].startswith("key ")

    history = await operator.get(f"/api/v1/executions/{run}/events")
    types = [e["type"] for e in history.json()["events"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionFinished"
    listed_runs = await operator.get("/api/v1/executions", params={"workflow": "rest-diamond"})
    assert run in [e["id"] for e in listed_runs.json()["executions"]]


SLOW = """
whoosh: workflow/v1
name: rest-slow
steps:
  sleep: {type: shell, command: "sleep 30"}
  never: {type: shell, needs: [sleep], command: "echo never"}
"""


async def test_cancel_stops_the_running_step(operator: httpx.AsyncClient) -> None:
    assert (await operator.post("/api/v1/workflows", json={"source": SLOW})).status_code == 201
    run = (await operator.post("/api/v1/workflows/rest-slow/run")).json()["execution_id"]
    view = await wait_until(operator, run, lambda v: steps(v)["sleep"]["status"] == "running")
    task_id = steps(view)["sleep"]["task_id"]
    await eventually(
        lambda: _task_running(operator, task_id), timeout=30, what="the step's task to run"
    )
    cancelled = await operator.post(f"/api/v1/executions/{run}/cancel", json={"reason": "stop"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert steps(cancelled.json())["never"]["status"] == "skipped"
    task = (await operator.get(f"/api/v1/tasks/{task_id}")).json()
    assert task["status"] == "cancelled"
    again = await operator.post(f"/api/v1/executions/{run}/cancel")
    assert again.status_code == 409


async def _task_running(client: httpx.AsyncClient, task_id: str) -> bool:
    return (await client.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "running"


async def test_refusals(operator: httpx.AsyncClient, viewer: httpx.AsyncClient) -> None:
    bad = await operator.post(
        "/api/v1/workflows",
        json={"source": "whoosh: workflow/v1\nname: bad\nsteps:\n  a: {type: magic}\n",
              "filename": "bad.yaml"},
    )  # fmt: skip
    assert bad.status_code == 422
    assert "bad.yaml line 4: step 'a' has unknown type 'magic'" in bad.json()["error"]["message"]
    assert (await operator.get("/api/v1/workflows/bad")).status_code == 404
    missing = await operator.post("/api/v1/workflows/rest-diamond/run", json={"inputs": {}})
    assert (
        missing.status_code == 422
        and "input 'word' is required" in missing.json()["error"]["message"]
    )
    forbidden = await viewer.post("/api/v1/workflows", json={"template": "bugfix"})
    assert forbidden.status_code == 403
    unknown = await operator.get("/api/v1/executions/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404
    templates = (await viewer.get("/api/v1/workflows/templates")).json()["templates"]
    assert [t["name"] for t in templates] == [
        "bugfix", "code-review", "infrastructure", "web-development",
    ]  # fmt: skip
    made = await operator.post("/api/v1/workflows", json={"template": "bugfix", "name": "fix-1"})
    assert made.status_code == 201 and made.json()["name"] == "fix-1"
    await asyncio.sleep(0)


STREAMED = """
whoosh: workflow/v1
name: ws-flow
steps:
  talk: {type: shell, command: "sleep 1.5; for i in 1 2 3; do echo line-$i; sleep 0.2; done"}
  after: {type: set, needs: [talk], fields: {n: "{{ steps.talk.output | length }}"}}
"""


async def test_the_execution_scope_streams_step_events_and_output(
    stack, keys, operator: httpx.AsyncClient
) -> None:
    from gateway.ws_client import of_type, open_ws, receive_until, send
    from whoosh_shared.contract.api_keys import Role

    assert (await operator.post("/api/v1/workflows", json={"source": STREAMED})).status_code == 201
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        run = (await operator.post("/api/v1/workflows/ws-flow/run")).json()["execution_id"]
        await send(ws, {"action": "subscribe", "scope": "execution", "id": run,
                        "last_event_id": 0})  # fmt: skip
        seen = await receive_until(ws, lambda m: m.get("change") == "ExecutionFinished")
    changes = [m.get("change") for m in seen if m.get("aggregate") == "execution"]
    assert changes[0] == "ExecutionStarted" and changes[-1] == "ExecutionFinished"
    assert changes.count("ExecutionStepEnded") == 2
    assert any(m.get("type") == "execution_completed" for m in seen)  # the step's task
    lines = [m["text"] for m in seen if m.get("kind") == "message"]
    assert lines == ["line-1", "line-2", "line-3"]  # the step's live output
    assert seen[-1]["data"]["status"] == "succeeded"
    assert any(of_type("subscribed")(m) for m in seen)


REVIEWED = """
whoosh: workflow/v1
name: rest-reviewed
steps:
  build: {type: shell, command: "echo built it"}
  review:
    type: review
    needs: [build]
    topic: "Ship it?"
    subject: "{{ steps.build.output }}"
    participants: [{agent: approver-1}, {agent: approver-2}]
  ship: {type: shell, needs: [review], command: "echo shipping after {{ steps.review.output }}"}
"""
APPROVER = {
    "type": "cli",
    "command": ["sh", "-c", "cat > /dev/null; echo 'looks right'; echo 'VERDICT: approve'"],
    "max_concurrent": 2,
}


async def test_a_review_step_runs_as_a_thread_of_real_agents(
    stack, admin: httpx.AsyncClient, operator: httpx.AsyncClient
) -> None:
    """End to end: two CLI agents read the round prompt on stdin and approve; the
    thread's decision lets the next step run; the dashboard links the step to it."""
    for name in ("approver-1", "approver-2"):
        made = await admin.post("/api/v1/agents", json={"spec": {"name": name, **APPROVER}})
        assert made.status_code == 201, made.text
    assert (await operator.post("/api/v1/workflows", json={"source": REVIEWED})).status_code == 201
    from gateway.ws_client import open_ws, receive_until, send

    async with await open_ws(stack.gateway.ws_url, stack.admin_key) as ws:
        run = (await operator.post("/api/v1/workflows/rest-reviewed/run")).json()["execution_id"]
        await send(ws, {"action": "subscribe", "scope": "execution", "id": run,
                        "last_event_id": 0})  # fmt: skip
        seen = await receive_until(ws, lambda m: m.get("change") == "ExecutionFinished")
    changes = {m.get("change") for m in seen if m.get("aggregate") == "thread"}
    assert {"ThreadStarted", "ThreadVoteCast", "ThreadClosed"} <= changes, changes
    done = await wait_until(operator, run, lambda v: v["status"] != "running")
    got = steps(done)
    assert done["status"] == "succeeded", done
    assert got["review"]["output"] == "approve" and got["review"]["task_id"] is None
    assert got["ship"]["output"] == "shipping after approve\n"
    thread = (await operator.get(f"/api/v1/threads/{got['review']['thread_id']}")).json()
    assert thread["kind"] == "review" and thread["decision"] == "approve"
    assert {v["voter"] for v in thread["votes"]} == {"approver-1", "approver-2"}
    assert (
        "built it"
        in (
            await operator.get(f"/api/v1/tasks/{thread['rounds'][0]['tasks']['approver-1']}")
        ).json()["prompt"]
    )  # the subject reached the reviewers
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=20) as ui:
        assert (await ui.post("/ui/login", data={"api_key": stack.admin_key})).status_code == 303
        page = (await ui.get(f"/ui/executions/{run}")).text
    assert f'href="/ui/threads/{got["review"]["thread_id"]}"' in page
