"""Relay: the store's notification log -> JetStream, exactly once from a consumer's view.

Every stored event is published, in notification order, on
`whoosh.evt.<aggregate>.<id>.<type>` with `Nats-Msg-Id` = `<aggregate id>:<version>:<time>`
(EventEnvelope.id), so a republish after a crash is dropped by the stream's duplicate
window. The
tracked position is the notification id carried by the last message in the
stream itself: nothing to keep in sync, and a restart resumes right after it.

A TaskAssigned event also puts a WorkItem on the agent's work queue, before the
event itself, so that resuming after the event implies the work went out. Inside a
coordinator the direct dispatch (dispatch.py) has nearly always published it already:
the relay then only waits, with the batch's acks, for that publish to be acknowledged,
and publishes the WorkItem itself (after the event, within the same batch) only if that
dispatch fails; the position still moves only once the work is on the queue.

Where events and work items come from is a `RelaySource`: a standalone relay reads
the store; the relay inside a coordinator takes them from the coordinator's memory
(the envelopes it just folded, the task and agent from its projection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agent_env import mask_envelope
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.enums import WORK_TOKEN
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.limits import LimitSettings, head_and_tail, preview, utf8_size
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.blob_store import BlobStore
from whoosh_shared.runtime.supervision import LoopHealth

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.store import WhooshStore, read_envelopes
from whoosh_coordinator.tasks.domain import Task

log = logging.getLogger(__name__)
BATCH = 500
ACK_TIMEOUT_S = 10.0
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 10.0
DEFAULT_MAX_PAYLOAD = 1024 * 1024  # nats-server's default; the connection's own is used
HEADROOM = 4096  # headers and framing


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
            prompt_ref=BlobRef.model_validate(task.prompt_ref) if task.prompt_ref else None,
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
            prompt_ref=task.prompt_ref,
            timeout_s=task.timeout_s,
            llm=task.llm,
            model=task.model or agent.spec.model,
            workspace_disposable=task.workspace_disposable,
        )


class DirectDispatch(Protocol):
    """What the relay asks the coordinator's direct dispatch (dispatch.Dispatcher)."""

    def acked(self, work: WorkItem) -> bool: ...

    def in_flight(self, work: WorkItem) -> asyncio.Task[bool] | None: ...


def _acked() -> Awaitable[PubAck]:
    done: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
    done.set_result(PubAck(stream=subjects.WORK_STREAM, seq=0))
    return done


class Relay:
    """Publishes the log in order. Supervised (see whoosh_shared.runtime.supervision): a publish
    that fails or whose ack does not come within `ack_timeout_s` is logged at ERROR with
    its cause and retried from the same position with a doubling backoff, and `health`
    says "relay" is down until a batch goes through again."""

    def __init__(
        self,
        source: RelaySource,
        js: JetStreamContext,
        poll_interval_s: float,
        dispatch: DirectDispatch | None = None,
        health: LoopHealth | None = None,
        limits: LimitSettings | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        """`dispatch`: the coordinator's direct dispatch, whose WorkItems need no copy."""
        self.source = source
        self.js = js
        self.poll_interval_s = poll_interval_s
        self.dispatch = dispatch
        self.position = 0
        self.wake = asyncio.Event()
        self.health = health or LoopHealth()
        self.limits = limits or LimitSettings()
        self.max_payload = max_payload
        self.blobs = BlobStore(js)
        self.ack_timeout_s = ACK_TIMEOUT_S
        self._backoff_s = RETRY_FIRST_S

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
        self.health.up("relay")
        while True:
            if not await self.relay_batch():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_interval_s)
                self.wake.clear()

    async def relay_batch(self) -> int:
        """Publish the next batch; the position moves only once every publish is acknowledged.

        A failure costs a retry of the batch after a backoff (the stream's duplicate window
        drops what had gone through), never the loop: a relay that stops stops the fleet.

        It first yields once: it is woken by the save that also queued that command's
        reply (and its WorkItem) on the NATS connection, which nats-py writes from a task
        of its own; yielding lets that write go out before this batch's serialization
        instead of after it (measured: the WorkItem of a submit waited 0.3 ms for it)."""
        await asyncio.sleep(0)
        envelopes = self.source.read_after(self.position, BATCH)
        if not envelopes:
            self.health.up("relay")
            return 0
        try:
            acks: list[Awaitable[object]] = []
            for envelope in envelopes:
                if envelope.type == "TaskAssigned":
                    work = self.source.work_item(envelope)
                    if work is not None:
                        acks += await self._work_queued(work)
                acks.append(await self._publish_event(envelope))
            await asyncio.wait_for(asyncio.gather(*acks), self.ack_timeout_s)
        except Exception as exc:
            cause = (
                f"no ack within {self.ack_timeout_s:g}s"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"
            )
            log.error(
                "relay publish failed at notification %d, retrying in %.2fs: %s",
                self.position + 1,
                self._backoff_s,
                cause,
            )
            self.health.down("relay", f"publish failing: {cause}")
            await asyncio.sleep(self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2, RETRY_MAX_S)
            return 0
        self._backoff_s = RETRY_FIRST_S
        self.health.up("relay")
        self.position = envelopes[-1].notification_id
        return len(envelopes)

    async def _work_queued(self, work: WorkItem) -> list[Awaitable[object]]:
        """What the batch waits for so that this WorkItem is on the queue: nothing when the
        direct dispatch saw it acknowledged; that dispatch's publish while it is in flight
        (a copy would cost the coordinator and nats-server work on every task, only to be
        dropped as a duplicate); otherwise a publish of its own."""
        if self.dispatch is not None:
            if self.dispatch.acked(work):
                return []
            publishing = self.dispatch.in_flight(work)
            if publishing is not None:
                return [self._unless_dispatched(work, publishing)]
        return [await self._publish_work(work)]

    async def _unless_dispatched(self, work: WorkItem, publishing: asyncio.Task[bool]) -> None:
        """Publish the WorkItem if the direct dispatch in flight ends without an ack."""
        if not await asyncio.shield(publishing):
            await (await self._publish_work(work))

    async def _publish_event(self, envelope: EventEnvelope) -> Awaitable[PubAck]:
        subject = subjects.event(envelope.aggregate_type, str(envelope.aggregate_id), envelope.type)
        headers = {
            "Nats-Msg-Id": envelope.id,
            subjects.NOTIFICATION_ID_HEADER: str(envelope.notification_id),
        }
        body = mask_envelope(envelope).model_dump_json().encode()
        if len(body) > self.max_payload - HEADROOM:
            body = self._shrunk(mask_envelope(envelope), len(body))
        return await self.js.publish_async(subject, body, headers=headers)

    def _shrunk(self, envelope: EventEnvelope, size: int) -> bytes:
        """An event too large for one message (stored before the size policy existed):
        its long text fields keep their head and tail, so it still validates and the
        stream goes on; the store keeps it whole."""
        budget = max(1024, (self.max_payload - HEADROOM) // 4)
        data = {
            k: head_and_tail(v, budget) if isinstance(v, str) else v
            for k, v in envelope.data.items()
        }
        log.error(
            "event %s (%s) is %d bytes, over NATS's max_payload %d: relayed with its text "
            "fields cut to head and tail; the store keeps it whole",
            envelope.id,
            envelope.type,
            size,
            self.max_payload,
        )
        return envelope.model_copy(update={"data": data}).model_dump_json().encode()

    async def _publish_work(self, work: WorkItem) -> Awaitable[PubAck]:
        if work.prompt_ref is None and utf8_size(work.prompt) > self.limits.inline_bytes:
            # a task stored before prompts went by reference: its prompt goes by reference now
            ref = await self.blobs.put_text(work.prompt)
            work = work.model_copy(update={"prompt": preview(work.prompt), "prompt_ref": ref})
        subject = subjects.work(WORK_TOKEN[work.agent.type], work.agent.name)
        body = work.model_dump_json().encode()
        if len(body) > self.max_payload - HEADROOM:
            # Cannot happen within the contract's bounds; if it does, this work item must
            # not hold up every other one: the coordinator's sweep ends the task.
            log.error(
                "work item for task %s is %d bytes, over NATS's max_payload %d: not sent",
                work.task_id,
                len(body),
                self.max_payload,
            )
            return _acked()
        return await self.js.publish_async(subject, body, headers={"Nats-Msg-Id": work.msg_id})
