"""Direct dispatch: the committing coordinator puts the WorkItem on the queue at once,
and the relay (the guarantee) never makes it two.

The relay may skip a WorkItem only when the dispatcher saw it acknowledged, and waits for
a dispatch still in flight rather than publishing a copy; any other relay (a standalone
one, another coordinator's) publishes it again and JetStream's duplicate window drops the
copy. Either way the queue holds one message per attempt."""

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
from whoosh_shared.contract.work import WorkItem


async def _queued_messages(bus: Any) -> int:
    return (await bus.js.stream_info(subjects.WORK_STREAM)).state.messages


def _coordinator_parts(
    bus: Any, sqlite_url: str, dispatcher_class: type[Dispatcher] = Dispatcher
) -> tuple[Any, FollowerSource, Dispatcher, CommandHandler, Follower]:
    """A coordinator's store, relay source, direct dispatch and handler, wired as it does."""
    store = open_store(sqlite_url)
    projection = FleetProjection()
    follower = Follower(store, projection)
    source = FollowerSource(follower)
    dispatcher = dispatcher_class(bus.js, source.work_item)
    handler = CommandHandler(
        store, projection, on_saved=lambda saved: dispatcher.saved(follower.fold_saved(saved))
    )
    return store, source, dispatcher, handler, follower


async def _work_published(bus: Any) -> list[str]:
    """Every publish on the work subjects (a core subscription sees copies that the
    stream's duplicate window drops)."""
    seen: list[str] = []

    async def on_work(msg: Any) -> None:
        seen.append(msg.headers["Nats-Msg-Id"])

    await bus.nc.subscribe(subjects.WORK_WILDCARD, cb=on_work)
    await bus.nc.flush()
    return seen


async def test_work_goes_out_on_commit_and_the_relay_adds_no_copy(bus, sqlite_url: str) -> None:
    store, source, dispatcher, handler, follower = _coordinator_parts(bus, sqlite_url)
    assert handler.handle(c.RegisterAgent(spec=AgentSpec(name="direct", command=["true"])))
    reply = handler.handle(c.SubmitTask(prompt="hi", agent="direct"))
    task_id = reply.ids["task_id"]
    assert follower.projection.tasks  # assigned in the submit transaction

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
        Relay(source, bus.js, 0.1, dispatch=dispatcher),
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


async def _relay_right_after_submit(
    bus: Any, sqlite_url: str, dispatcher_class: type[Dispatcher] = Dispatcher
) -> None:
    """Submit, run the coordinator's relay at once (the direct dispatch's publish is then
    still in flight, as in a coordinator), and check the work went out exactly once."""
    store, source, dispatcher, handler, _ = _coordinator_parts(bus, sqlite_url, dispatcher_class)
    published = await _work_published(bus)
    assert handler.handle(c.RegisterAgent(spec=AgentSpec(name="overtaken", command=["true"])))
    reply = handler.handle(c.SubmitTask(prompt="hi", agent="overtaken"))
    relay = Relay(source, bus.js, 0.1, dispatch=dispatcher)
    assert await relay.relay_batch() == 4
    await bus.nc.flush()
    await asyncio.sleep(0.2)
    assert published == [f"work:{reply.ids['task_id']}:1"]
    assert await _queued_messages(bus) == 1
    store.close()


async def test_a_relay_that_overtakes_the_dispatch_waits_for_it_and_publishes_no_copy(
    bus, sqlite_url: str
) -> None:
    """The coordinator's relay runs right after the save that dispatched the work, before
    that publish's ack is back: it must wait for the ack, not send the item again."""
    await _relay_right_after_submit(bus, sqlite_url)


class _Unacknowledged(Dispatcher):
    """A direct dispatch whose publish never gets its ack (a NATS hiccup)."""

    async def _publish(self, work: WorkItem) -> bool:
        await asyncio.sleep(0.05)
        return False


async def test_a_dispatch_that_is_not_acknowledged_is_published_by_the_relay(
    bus, sqlite_url: str
) -> None:
    """The one publish seen is then the relay's own."""
    await _relay_right_after_submit(bus, sqlite_url, _Unacknowledged)
