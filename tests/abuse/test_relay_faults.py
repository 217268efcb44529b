"""Faults injected into the relay (against a real nats-server and SQLite store): a publish
that raises, an ack that never comes, an event and a work item too large for one NATS
message. In each case the relay says so at ERROR with the cause, readiness shows it down,
and every event still reaches the stream, once and in order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from coordinator.factories import new_agent, new_task
from harness import eventually, stream_envelopes
from whoosh_coordinator.relay import Relay, StoreSource
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import subjects
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.blob_store import BlobStore
from whoosh_shared.runtime.supervision import LoopHealth, supervise


class FaultyJs:
    """The real JetStream context, with the first `failures` publishes made to fail:
    `mode` "raise" raises at once; "silent" publishes but its ack never comes back (the
    reply lost on the way)."""

    def __init__(self, js: Any, failures: int, mode: str) -> None:
        self.js = js
        self.failures = failures
        self.mode = mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self.js, name)

    async def publish_async(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            if self.mode == "raise":
                raise ConnectionError("injected: publish refused")
            await self.js.publish_async(*args, **kwargs)
            return asyncio.get_running_loop().create_future()  # never resolved
        return await self.js.publish_async(*args, **kwargs)


def stored_history(url: str, tasks: int = 3) -> int:
    store = open_store(url)
    agent = new_agent("fault-agent", max_concurrent=tasks)
    store.save(agent)
    for _ in range(tasks):
        store.save(new_task())
    total = store.recorder.max_notification_id()
    store.close()
    return total


async def relay_until_published(relay: Relay, health: LoopHealth, bus: Any, total: int) -> None:
    running = asyncio.create_task(supervise("relay", relay.run, health))
    try:

        async def all_out() -> bool:
            info = await bus.js.stream_info(subjects.EVENTS_STREAM)
            return info.state.messages >= total and relay.position == total

        await eventually(all_out, timeout=30, what="every event on the stream")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


@pytest.mark.parametrize("mode", ["raise", "silent"])
async def test_failed_publishes_are_retried_logged_and_work_continues(
    bus, sqlite_url: str, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    total = stored_history(sqlite_url)
    store = open_store(sqlite_url)
    health = LoopHealth()
    relay = Relay(StoreSource(store), FaultyJs(bus.js, 3, mode), 0.05, health=health)
    relay.ack_timeout_s = 0.3
    downs: list[dict[str, str]] = []

    async def watch_health() -> None:
        while True:
            downs.append(health.down_now())
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_health())
    with caplog.at_level(logging.ERROR, logger="whoosh_coordinator.relay"):
        await relay_until_published(relay, health, bus, total)
    watcher.cancel()
    store.close()

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    cause = "publish refused" if mode == "raise" else "no ack within 0.3s"
    assert any(cause in e for e in errors), errors
    assert any("relay" in d for d in downs), "readiness showed the relay down meanwhile"
    assert health.down_now() == {}, "healthy again once a batch went through"
    ids = [e.notification_id for e in await stream_envelopes(bus.js)]
    assert ids == list(range(1, total + 1)), "every event once, in order"


async def test_a_stored_event_and_work_item_too_large_for_nats_still_go_out(
    bus, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A task stored before the size policy, with a 1.5 MB inline prompt: its work item
    goes out with the prompt by reference, its event cut to head and tail (the store keeps
    it whole), and the events after it are not held up."""
    prompt = "é" * 750_000 + "the end"
    store = open_store(sqlite_url)
    agent, task = new_agent("big-agent"), new_task(prompt=prompt)
    store.save(agent, task)
    task.assign(agent.id, agent.name)
    agent.take_slot(task.id, 1)
    store.save(task, agent)
    store.save(new_task())
    total = store.recorder.max_notification_id()
    health = LoopHealth()
    relay = Relay(StoreSource(store), bus.js, 0.05, health=health, max_payload=bus.nc.max_payload)
    sub = await bus.js.pull_subscribe(subjects.work("cli", "big-agent"), durable=None)
    with caplog.at_level(logging.ERROR, logger="whoosh_coordinator.relay"):
        await relay_until_published(relay, health, bus, total)
    store.close()

    (msg,) = await sub.fetch(1, timeout=5)
    await msg.ack()
    await sub.unsubscribe()
    item = WorkItem.model_validate_json(msg.data)
    assert len(msg.data) < 64 * 1024 and item.prompt_ref is not None
    assert await BlobStore(bus.js).get_text(item.prompt_ref) == prompt
    envelopes = await stream_envelopes(bus.js)
    assert [e.notification_id for e in envelopes] == list(range(1, total + 1))
    submitted = next(e for e in envelopes if e.type == "TaskSubmitted")
    assert "bytes dropped" in submitted.data["prompt"]
    assert submitted.data["prompt"].endswith("the end")
    assert any("over NATS's max_payload" in r.getMessage() for r in caplog.records)


async def test_a_loop_that_dies_is_restarted_and_reported_down_until_healthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = LoopHealth()
    runs: list[int] = []
    release = asyncio.Event()

    async def flaky_loop() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"injected failure {len(runs)}")
        await release.wait()
        health.up("flaky")
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger="whoosh_shared.runtime.supervision"):
        task = asyncio.create_task(supervise("flaky", flaky_loop, health, first_backoff_s=0.01))
        await eventually(lambda: len(runs) == 3, timeout=5, what="two restarts")
        assert health.down_now() == {"flaky": "RuntimeError: injected failure 2"}
        release.set()
        await eventually(lambda: health.down_now() == {}, timeout=5, what="healthy again")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sum("flaky died: RuntimeError" in r.getMessage() for r in caplog.records) == 2
    assert health.loops["flaky"].restarts == 2
