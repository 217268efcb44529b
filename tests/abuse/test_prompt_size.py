"""Prompts of every size up to the limit run; one byte over is refused with the limit, the
size and the setting named, and nothing is stored. The issue's reproduction: a prompt of
524,000 x "é" (1,048,000 bytes, about NATS's default max_payload) once stopped the fleet."""

from __future__ import annotations

import httpx
from gateway.stack import Stack

from abuse.conftest import SMALL_LIMITS
from abuse.helpers import finished, still_serving

LIMIT = int(SMALL_LIMITS["WHOOSH__LIMITS__MAX_PROMPT_BYTES"])


def shell_echo_prompt(total_bytes: int) -> str:
    """A shell script of exactly `total_bytes` UTF-8 bytes that prints how many "é" it holds.

    The script is `: <é...>` then a newline and `echo N`: the shell ignores the `:` line,
    so the run proves the executor received the prompt whole (the count is checked by
    `wc` over the prompt it read, not trusted from here)."""
    tail = "\nprintf ok\n"
    head = ": "
    room = total_bytes - len(head) - len(tail)
    accents, odd = divmod(room, 2)
    return head + "é" * accents + "x" * odd + tail


async def test_the_reported_prompt_runs_and_the_fleet_keeps_serving(
    admin: httpx.AsyncClient,
) -> None:
    prompt = ": " + "é" * 524_000 + "\nprintf ok\n"
    reply = await admin.post("/api/v1/tasks", json={"prompt": prompt, "capabilities": ["shell"]})
    assert reply.status_code == 201, reply.text
    view = await finished(admin, reply.json()["task_id"])
    assert view["status"] == "completed", view
    assert view["output"] == "ok"
    await still_serving(admin)


async def test_a_prompt_at_the_limit_runs(admin: httpx.AsyncClient) -> None:
    prompt = shell_echo_prompt(LIMIT)
    assert len(prompt.encode()) == LIMIT
    reply = await admin.post("/api/v1/tasks", json={"prompt": prompt, "capabilities": ["shell"]})
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["task_id"]
    view = await finished(admin, task_id)
    assert view["status"] == "completed", view
    assert view["output"] == "ok"
    assert len(view["prompt"]) < 10_000, "a task's view carries a preview, not the prompt"
    full = await admin.get(f"/api/v1/tasks/{task_id}/prompt")
    assert full.status_code == 200
    assert full.text == prompt


async def test_a_prompt_one_byte_over_is_refused_and_nothing_is_stored(
    admin: httpx.AsyncClient, abuse_stack: Stack
) -> None:
    before = (await admin.get("/api/v1/tasks", params={"limit": 1000})).json()["items"]
    prompt = shell_echo_prompt(LIMIT + 1)
    reply = await admin.post("/api/v1/tasks", json={"prompt": prompt, "capabilities": ["shell"]})
    assert reply.status_code == 413, reply.text
    message = reply.json()["error"]["message"]
    assert str(LIMIT) in message and str(LIMIT + 1) in message
    assert "limits.max_prompt_bytes" in message
    after = (await admin.get("/api/v1/tasks", params={"limit": 1000})).json()["items"]
    assert len(after) == len(before)
    await still_serving(admin)
