"""Retention: the JetStream streams carry the byte and age limits of whoosh.yaml, and a
WebSocket resume from further back than the event stream holds is served from the store
(the stream is a bounded window; the store keeps everything)."""

from __future__ import annotations

import httpx
from gateway.calls import submit, wait_task
from gateway.stack import Stack
from gateway.ws_client import of_type, open_ws, receive_until, send
from nats.js.api import DiscardPolicy
from whoosh_shared.contract import subjects
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.stream_limits import StreamLimits
from whoosh_shared.runtime.bus import Bus


async def test_a_resume_from_before_the_stream_is_served_from_the_store(
    stack: Stack, keys: dict[Role, str], operator: httpx.AsyncClient
) -> None:
    task_id = await submit(operator, "echo kept", agent="shell")
    await wait_task(operator, task_id, "completed")
    bus = Bus(stack.nats.url, "test-retention")
    await bus.connect()
    try:  # the stream lets this task's events go, as its limits would
        await bus.js.purge_stream(subjects.EVENTS_STREAM, subject=f"whoosh.evt.task.{task_id}.>")
        left = await bus.js.stream_info(
            subjects.EVENTS_STREAM, subjects_filter=f"whoosh.evt.task.{task_id}.>"
        )
        assert not left.state.subjects
        events = (await bus.js.stream_info(subjects.EVENTS_STREAM)).config
        work = (await bus.js.stream_info(subjects.WORK_STREAM)).config
    finally:
        await bus.close()
    defaults = StreamLimits()
    assert (events.max_bytes, events.max_age) == (
        defaults.events_max_bytes, defaults.events_max_age_s)  # fmt: skip
    assert work.max_bytes == defaults.work_max_bytes and work.discard == DiscardPolicy.NEW
    history = (await operator.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
    async with await open_ws(stack.gateways[1].ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "task", "id": task_id,
                        "last_event_id": 0})  # fmt: skip
        resumed = await receive_until(ws, of_type("subscribed"))
    assert resumed[-1]["replayed"] == len(history) > 3
    assert any(m["type"] == "execution_completed" for m in resumed)
