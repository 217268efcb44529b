"""Relay: the store's notification log -> JetStream, exactly once from a consumer's view.

Every stored event is published, in notification order, on
`whoosh.evt.<aggregate>.<id>.<type>` with `Nats-Msg-Id` = `<aggregate id>:<version>:<time>`
(EventEnvelope.id), so a republish after a crash is dropped by the stream's duplicate
window. The
tracked position is the notification id carried by the last message in the
stream itself: nothing to keep in sync, and a restart resumes right after it.

A TaskAssigned event also puts a WorkItem on the agent's work queue, before the
event itself, so that resuming after the event implies the work went out.

Where events and work items come from is a `RelaySource`: a standalone relay reads
the store; the relay inside a coordinator takes them from the coordinator's memory
(the envelopes it just folded, the task and agent from its projection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from whoosh_shared import subjects
from whoosh_shared.agent_env import mask_envelope
from whoosh_shared.agents import AgentSpec
from whoosh_shared.enums import WORK_TOKEN
from whoosh_shared.events import EventEnvelope
from whoosh_shared.work import WorkItem

from whoosh_coordinator.domain import Agent, Task
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.store import WhooshStore, read_envelopes

log = logging.getLogger(__name__)
BATCH = 500


class RelaySource(Protocol):
    def read_after(self, position: int, limit: int) -> list[EventEnvelope]: ...

    def work_item(self, assigned: EventEnvelope) -> WorkItem | None:
        """The work for a TaskAssigned event, unless the task has moved past that attempt."""


class StoreSource:
    """For a relay of its own: everything from the store."""

    def __init__(self, store: WhooshStore) -> None:
        self.store = store

    def read_after(self, position: int, limit: int) -> list[EventEnvelope]:
        return read_envelopes(self.store, position, limit)

    def work_item(self, assigned: EventEnvelope) -> WorkItem | None:
        attempt = int(assigned.data["attempt"])
        task: Task = self.store.repository.get(assigned.aggregate_id)
        if not task.active or task.attempt != attempt or task.agent_id is None:
            return None
        agent: Agent = self.store.repository.get(task.agent_id)
        return WorkItem(
            task_id=task.id,
            attempt=attempt,
            agent=AgentSpec.model_validate(agent.spec),
            prompt=task.prompt,
            timeout_s=task.timeout_s,
            llm=task.llm,
            model=task.model or agent.spec.get("model"),
            workspace_disposable=task.workspace_disposable,
        )


class FollowerSource:
    """For the relay inside a coordinator: what it folded, without reading it back. The
    projection is always at or past the relay's position, so task and agent are known."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.projection = follower.projection

    def read_after(self, position: int, limit: int) -> list[EventEnvelope]:
        kept = self.follower.recent_after(position, limit)
        if kept is not None:
            return kept
        folded = self.projection.position
        return [
            e
            for e in read_envelopes(self.follower.store, position, limit)
            if e.notification_id <= folded
        ]

    def work_item(self, assigned: EventEnvelope) -> WorkItem | None:
        attempt = int(assigned.data["attempt"])
        task = self.projection.tasks.get(assigned.aggregate_id)
        if task is None or not task.status.active or task.attempt != attempt or not task.agent:
            return None
        agent = self.projection.agent_by_name(task.agent)
        if agent is None:
            return None
        return WorkItem(
            task_id=task.id,
            attempt=attempt,
            agent=agent.spec,
            prompt=task.prompt,
            timeout_s=task.timeout_s,
            llm=task.llm,
            model=task.model or agent.spec.model,
            workspace_disposable=task.workspace_disposable,
        )


class Relay:
    def __init__(
        self,
        source: RelaySource,
        js: JetStreamContext,
        poll_interval_s: float,
        already_queued: Callable[[WorkItem], bool] = lambda work: False,
    ) -> None:
        """`already_queued`: whether a WorkItem is known to be on the work queue (the
        coordinator's direct dispatch saw its ack), so publishing it again can be skipped."""
        self.source = source
        self.js = js
        self.poll_interval_s = poll_interval_s
        self.already_queued = already_queued
        self.position = 0
        self.wake = asyncio.Event()

    async def tracked_position(self) -> int:
        """The notification id of the stream's last event, if that event is in this store.

        If it is not (the store was wiped, replaced or restored from an older backup),
        this store is relayed from its start: its events carry ids of their own, so
        nothing of it is mistaken for a duplicate of what the stream already holds."""
        try:
            last = await self.js.get_last_msg(subjects.EVENTS_STREAM, subjects.EVENTS_WILDCARD)
        except NotFoundError:
            return 0
        headers = last.headers or {}
        position = int(headers.get(subjects.NOTIFICATION_ID_HEADER) or 0)
        stored = self.source.read_after(position - 1, 1) if position else []
        if not stored or stored[0].id != headers.get("Nats-Msg-Id"):
            log.warning(
                "the event stream ends with notification %d, which this store does not hold: "
                "relaying this store from its start",
                position,
            )
            return 0
        return position

    async def run(self) -> None:
        self.position = await self.tracked_position()
        log.info("relay resuming after notification %d", self.position)
        while True:
            if not await self.relay_batch():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_interval_s)
                self.wake.clear()

    async def relay_batch(self) -> int:
        """Publish the next batch; the position moves only once every publish is acknowledged."""
        envelopes = self.source.read_after(self.position, BATCH)
        if not envelopes:
            return 0
        acks: list[Awaitable[PubAck]] = []
        for envelope in envelopes:
            if envelope.type == "TaskAssigned":
                work = self.source.work_item(envelope)
                if work is not None and not self.already_queued(work):
                    acks.append(await self._publish_work(work))
            acks.append(await self._publish_event(envelope))
        try:
            await asyncio.gather(*acks)
        except Exception as exc:
            log.warning("relay publish failed, retrying from %d: %s", self.position, exc)
            await asyncio.sleep(0.5)
            return 0
        self.position = envelopes[-1].notification_id
        return len(envelopes)

    async def _publish_event(self, envelope: EventEnvelope) -> Awaitable[PubAck]:
        subject = subjects.event(envelope.aggregate_type, str(envelope.aggregate_id), envelope.type)
        headers = {
            "Nats-Msg-Id": envelope.id,
            subjects.NOTIFICATION_ID_HEADER: str(envelope.notification_id),
        }
        return await self.js.publish_async(
            subject, mask_envelope(envelope).model_dump_json().encode(), headers=headers
        )

    async def _publish_work(self, work: WorkItem) -> Awaitable[PubAck]:
        subject = subjects.work(WORK_TOKEN[work.agent.type], work.agent.name)
        return await self.js.publish_async(
            subject, work.model_dump_json().encode(), headers={"Nats-Msg-Id": work.msg_id}
        )
