"""Direct dispatch: the committing coordinator puts the WorkItem on the queue at once,
and the relay (the guarantee) never makes it two.

The relay may skip a WorkItem only when the dispatcher saw it acknowledged; any other
relay (a standalone one, another coordinator's) publishes it again and JetStream's
duplicate window drops the copy. Either way the queue holds one message per attempt."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import eventually
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.dispatch import Dispatcher
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.relay import FollowerSource, Relay, StoreSource
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec


async def _queued_messages(bus: Any) -> int:
    return (await bus.js.stream_info(subjects.WORK_STREAM)).state.messages


async def test_work_goes_out_on_commit_and_the_relay_adds_no_copy(bus, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    projection = FleetProjection()
    follower = Follower(store, projection)
    source = FollowerSource(follower)
    dispatcher = Dispatcher(bus.js, source.work_item)
    handler = CommandHandler(
        store, projection, on_saved=lambda saved: dispatcher.saved(follower.fold_saved(saved))
    )
    assert handler.handle(c.RegisterAgent(spec=AgentSpec(name="direct", command=["true"])))
    reply = handler.handle(c.SubmitTask(prompt="hi", agent="direct"))
    task_id = reply.ids["task_id"]
    assert projection.tasks  # assigned in the submit transaction

    async def one_queued() -> bool:
        return await _queued_messages(bus) == 1

    await eventually(one_queued, timeout=10, what="the WorkItem, before any relay ran")
    await dispatcher.close()
    sub = await bus.js.pull_subscribe(subjects.work("cli", "direct"), durable=None)
    (msg,) = await sub.fetch(1, timeout=2)
    assert msg.headers["Nats-Msg-Id"] == f"work:{task_id}:1"
    work = source.work_item(next(e for e in follower.recent if e.type == "TaskAssigned"))
    assert work is not None and dispatcher.acked(work)

    # The embedded relay skips what the dispatcher saw acknowledged; a standalone relay
    # (which cannot know) publishes it again, and the duplicate window drops it.
    for relay in (
        Relay(source, bus.js, 0.1, dispatcher.acked),
        Relay(StoreSource(store), bus.js, 0.1),
    ):
        assert await relay.relay_batch() == 4  # registered, submitted, assigned, slot taken
    await asyncio.sleep(0.2)
    assert await _queued_messages(bus) == 1
    events = (await bus.js.stream_info(subjects.EVENTS_STREAM)).state.messages
    assert events == 4
    await msg.ack()
    await sub.unsubscribe()
    store.close()
