"""Threads, budgets, addresses and agent cards over REST, against the real stack: three
CLI agents (real executor processes) with fixed answers reach the majority answer."""

from __future__ import annotations

import httpx
from gateway.calls import error_of
from gateway.stack import Stack
from harness import eventually

VOTERS = {"vote-a": "4", "vote-b": "4", "vote-c": "5"}


def voter(name: str, answer: str) -> dict:
    script = f"cat >/dev/null; echo 'thinking'; echo 'ANSWER: {answer}'"
    return {
        "name": name,
        "type": "cli",
        "command": ["sh", "-c", script],
        "specialization": "voter",
        "capabilities": {"arithmetic": 0.9},
        "projects": ["maths"],
    }


async def register_voters(admin: httpx.AsyncClient) -> None:
    for name, answer in VOTERS.items():
        created = await admin.post("/api/v1/agents", json={"spec": voter(name, answer)})
        assert created.status_code in (201, 409), created.text


async def wait_closed(client: httpx.AsyncClient, thread_id: str) -> dict:
    async def closed() -> dict | None:
        view = (await client.get(f"/api/v1/threads/{thread_id}")).json()
        return view if view["state"] == "closed" else None

    return await eventually(closed, timeout=60, what=f"thread {thread_id} closed")


async def test_question_thread_reaches_the_majority(
    stack: Stack, admin: httpx.AsyncClient, operator: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    await register_voters(admin)
    started = await operator.post(
        "/api/v1/threads",
        json={"topic": "What is 2+2?", "address": "whoosh://:voter@maths", "answer_type": "int"},
    )
    assert started.status_code == 201, started.text
    thread = started.json()
    assert [p["agent"] for p in thread["participants"]] == list(VOTERS)
    done = await wait_closed(viewer, thread["id"])
    assert (done["outcome"], done["decision"]) == ("consensus", "4")
    assert done["rounds"][0]["tally"] == {"4": 2.0, "5": 1.0}
    events = (await viewer.get(f"/api/v1/threads/{thread['id']}/events")).json()["events"]
    assert [e["type"] for e in events].count("ThreadVoteCast") == 3
    listed = (await viewer.get("/api/v1/threads", params={"state": "closed"})).json()
    assert thread["id"] in [t["id"] for t in listed["threads"]]
    late = await operator.post(f"/api/v1/threads/{thread['id']}/messages", json={"body": "hi"})
    assert "closed" in error_of(late, 409, "bad_state")


async def test_refusals_name_the_problem(
    stack: Stack, admin: httpx.AsyncClient, operator: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    await register_voters(admin)
    unknown = await operator.post(
        "/api/v1/threads", json={"topic": "q", "participants": [{"agent": "nobody"}]}
    )
    assert error_of(unknown, 404, "not_found") == "unknown agent 'nobody'"
    bad_type = await operator.post(
        "/api/v1/threads",
        json={"topic": "q", "participants": [{"agent": "vote-a"}], "answer_type": "float"},
    )
    assert "answer_type" in error_of(bad_type, 422, "invalid")
    started = await operator.post(
        "/api/v1/threads",
        json={"topic": "q", "participants": [{"agent": "vote-a"}], "answer_type": "int"},
    )
    decided = await viewer.post(
        f"/api/v1/threads/{started.json()['id']}/decision", json={"decision": "4"}
    )
    assert decided.status_code == 403
    address = await viewer.get("/api/v1/resolve", params={"address": "whoosh://a:b@p:"})
    assert "position 16" in error_of(address, 422, "invalid")
    negative = await admin.put("/api/v1/budgets/agent:vote-c", json={"tokens": -1})
    assert "tokens" in error_of(negative, 422, "invalid")
    by_operator = await operator.put("/api/v1/budgets/agent:vote-c", json={"tokens": 5})
    assert by_operator.status_code == 403


async def test_resolve_cards_and_budgets(
    stack: Stack, admin: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    await register_voters(admin)
    found = (await viewer.get("/api/v1/resolve", params={"address": "bzzz://vote-*@maths"})).json()
    assert found["agents"] == list(VOTERS)
    card = (await viewer.get("/api/v1/agents/vote-a/card")).json()
    assert card["name"] == "vote-a" and card["url"].endswith("/api/v1/agents/vote-a")
    assert [s["id"] for s in card["skills"]] == ["arithmetic"]
    assert (await viewer.get("/api/v1/agents/nobody/card")).status_code == 404
    put = await admin.put("/api/v1/budgets/agent:vote-c", json={"tokens": 1000, "period": "day"})
    assert put.status_code == 200, put.text
    assert put.json()["tokens"] == 1000 and put.json()["period"] == "day"
    listed = (await viewer.get("/api/v1/budgets")).json()["budgets"]
    assert "agent:vote-c" in [b["scope"] for b in listed]
    one = (await viewer.get("/api/v1/budgets/agent:vote-c")).json()
    assert (one["tokens"], one["used_tokens"], one["reserved_tokens"]) == (1000, 0, 0)
    assert (one["share_used"], one["exhausted"], one["on_exhausted"]) == (0.0, False, "refuse")
    stop = {"tokens": 1000, "period": "day", "on_exhausted": "stop"}
    changed = await admin.put("/api/v1/budgets/agent:vote-c", json=stop)
    assert changed.json()["on_exhausted"] == "stop"  # the read-back shows this change
    missing = await viewer.get("/api/v1/budgets/agent:nobody")
    assert error_of(missing, 404, "not_found") == "no budget for scope 'agent:nobody'"
    assert (await viewer.get("/api/v1/budgets/planet:earth")).status_code == 422


async def test_websocket_scope_thread_streams_the_threads_events(
    stack: Stack, admin: httpx.AsyncClient, operator: httpx.AsyncClient, keys
) -> None:
    from gateway.ws_client import open_ws, receive_until, send
    from whoosh_shared.contract.api_keys import Role

    await register_voters(admin)
    started = await operator.post(
        "/api/v1/threads",
        json={
            "topic": "2+2?",
            "participants": [{"agent": n} for n in VOTERS],
            "answer_type": "int",
        },
    )
    thread_id = started.json()["id"]
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "thread", "id": thread_id,
                        "last_event_id": 0})  # fmt: skip
        seen = await receive_until(ws, lambda m: m.get("change") == "ThreadClosed")
    changes = [m["change"] for m in seen if m.get("aggregate") == "thread"]
    assert changes[0] == "ThreadStarted" and changes.count("ThreadVoteCast") == 3
    assert {m["aggregate_id"] for m in seen if "aggregate_id" in m} == {thread_id}
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "thread", "id": "nope"})
        error = await receive_until(ws, lambda m: m.get("type") == "error")
    assert "is not a thread id" in error[-1]["message"]
