"""The relay publishes every stored event exactly once, in order, across crashes."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

from coordinator.factories import new_agent, new_task
from harness import eventually, stream_envelopes
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import subjects

WRITES = 600


def write_history(store_url: str, done: threading.Event) -> int:
    """Write events in many small transactions: tasks assigned to one agent, then completed."""
    store = open_store(store_url)
    agent = new_agent("relay-agent", max_concurrent=WRITES)
    store.save(agent)
    for _ in range(WRITES // 2):
        task = new_task()
        store.save(task)
        task.assign(agent.id, agent.name)
        agent.take_slot(task.id, task.attempt)
        store.save(task, agent)
    done.set()
    total = store.recorder.max_notification_id()
    store.close()
    return total


def assert_exactly_once_in_order(envelopes, total: int) -> None:
    ids = [e.notification_id for e in envelopes]
    assert ids == list(range(1, total + 1)), "every stored event once, in notification order"
    versions = defaultdict(list)
    for envelope in envelopes:
        versions[envelope.aggregate_id].append(envelope.version)
    for seen in versions.values():
        assert seen == list(range(1, len(seen) + 1)), "per aggregate: each version once, in order"


async def test_relay_killed_mid_stream_resumes_without_loss_or_duplicates(
    bus, spawn, nats_url: str, sqlite_url: str
) -> None:
    done = threading.Event()
    writer = asyncio.get_running_loop().run_in_executor(None, write_history, sqlite_url, done)
    relay = spawn("whoosh_coordinator", "relay", "--nats", nats_url, "--store", sqlite_url)

    async def some_published() -> bool:
        info = await bus.js.stream_info(subjects.EVENTS_STREAM)
        return info.state.messages > 50

    await eventually(some_published, timeout=20, what="the relay to publish some events")
    relay.kill()
    published_before_crash = (await bus.js.stream_info(subjects.EVENTS_STREAM)).state.messages
    total = await writer
    assert published_before_crash < total, "the crash must happen mid-stream"

    # Restart with two relays at once: duplicates from the overlap are dropped by Nats-Msg-Id.
    for _ in range(2):
        spawn("whoosh_coordinator", "relay", "--nats", nats_url, "--store", sqlite_url)

    async def all_published() -> bool:
        info = await bus.js.stream_info(subjects.EVENTS_STREAM)
        return info.state.messages >= total

    await eventually(all_published, timeout=30, what="the restarted relay to catch up")
    await asyncio.sleep(0.5)  # anything extra would arrive now
    assert_exactly_once_in_order(await stream_envelopes(bus.js), total)


async def test_assignment_puts_one_work_item_on_the_agents_queue(
    bus, spawn, nats_url: str, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    agent, task = new_agent("worker-x"), new_task()
    store.save(agent, task)
    task.assign(agent.id, agent.name)
    agent.take_slot(task.id, 1)
    store.save(task, agent)
    store.close()
    spawn("whoosh_coordinator", "relay", "--nats", nats_url, "--store", sqlite_url)
    sub = await bus.js.pull_subscribe(subjects.work("cli", "worker-x"), durable=None)

    async def fetch_work():
        try:
            return await sub.fetch(1, timeout=0.5)
        except TimeoutError:
            return None

    (msg,) = await eventually(fetch_work, timeout=20, what="a work item")
    assert b'"attempt":1' in msg.data and str(task.id).encode() in msg.data
    assert msg.headers["Nats-Msg-Id"] == f"work:{task.id}:1"
    await msg.ack()
    await sub.unsubscribe()


async def test_a_replaced_store_is_relayed_from_its_start(
    bus, spawn, nats_url: str, tmp_path
) -> None:
    """The stream still ends with the old store's events: the new store's must not be skipped
    (by position) nor dropped (as duplicates of same-name agents at the same versions)."""
    for generation in ("old", "new"):
        url = f"sqlite:///{tmp_path / generation}.sqlite"
        store = open_store(url)
        store.save(
            new_agent("same-name"), *(new_task() for _ in range(3 if generation == "old" else 1))
        )
        store.close()
        relay = spawn("whoosh_coordinator", "relay", "--nats", nats_url, "--store", url)
        expected = 4 if generation == "old" else 6

        async def published(expected: int = expected) -> bool:
            return (await bus.js.stream_info(subjects.EVENTS_STREAM)).state.messages >= expected

        await eventually(published, timeout=20, what=f"the {generation} store's events")
        relay.stop()
    envelopes = await stream_envelopes(bus.js)
    assert [e.notification_id for e in envelopes] == [1, 2, 3, 4, 1, 2]
    assert [e.type for e in envelopes[-2:]] == ["AgentRegistered", "TaskSubmitted"]
