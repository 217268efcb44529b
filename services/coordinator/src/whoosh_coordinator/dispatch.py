"""Dispatch: the WorkItem of an assignment goes out the moment its transaction commits.

The relay publishes every stored event in order and puts a TaskAssigned's WorkItem on
the work queue before the event. It publishes in batches and waits for a batch's
JetStream acks before reading the next, so under load a fresh assignment waited for the
previous batch's acks before its executor could see it. The coordinator that committed
the assignment knows the work already: it publishes the WorkItem at once, with the same
`Nats-Msg-Id` the relay uses. The relay stays the guarantee: it still puts the WorkItem
of every TaskAssigned on the queue unless this dispatcher saw that publish acknowledged,
and JetStream's duplicate window drops the second copy if both went out (a crash between
the publish and its ack). A relay that reaches the assignment while this publish is still
in flight waits for its outcome instead of publishing the item a second time (it nearly
always got there first: building, sending and deduplicating the copy cost both the
coordinator and nats-server CPU on every task). So dispatch changes when the work is seen,
never whether or how often.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

from nats.js import JetStreamContext
from whoosh_shared.contract import subjects
from whoosh_shared.contract.enums import WORK_TOKEN
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.work import WorkItem

log = logging.getLogger(__name__)
REMEMBERED = 4_096
ACK_TIMEOUT_S = 10.0


class Dispatcher:
    """Publishes the WorkItems of assignments this process just saved."""

    def __init__(
        self, js: JetStreamContext, work_item: Callable[[EventEnvelope], WorkItem | None]
    ) -> None:
        self.js = js
        self.work_item = work_item
        self._acked: OrderedDict[str, None] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[bool]] = {}

    def saved(self, envelopes: list[EventEnvelope]) -> None:
        """Called right after a commit, with its envelopes (already folded)."""
        for envelope in envelopes:
            if envelope.type != "TaskAssigned":
                continue
            work = self.work_item(envelope)
            if work is None:
                continue
            task = asyncio.get_running_loop().create_task(self._publish(work))
            self._inflight[work.msg_id] = task
            task.add_done_callback(lambda _, key=work.msg_id: self._inflight.pop(key, None))

    def acked(self, work: WorkItem) -> bool:
        """Whether this WorkItem is known to be on the work queue (the relay may skip it)."""
        return work.msg_id in self._acked

    def in_flight(self, work: WorkItem) -> asyncio.Task[bool] | None:
        """This WorkItem's publish while it waits for its ack (its result: acked or not)."""
        return self._inflight.get(work.msg_id)

    async def _publish(self, work: WorkItem) -> bool:
        subject = subjects.work(WORK_TOKEN[work.agent.type], work.agent.name)
        try:
            ack = await self.js.publish_async(
                subject, work.model_dump_json().encode(), headers={"Nats-Msg-Id": work.msg_id}
            )
            await asyncio.wait_for(ack, ACK_TIMEOUT_S)
        except Exception as exc:  # the relay will publish it (an ack that never came too)
            log.debug("direct dispatch of %s failed, left to the relay: %s", work.msg_id, exc)
            return False
        self._acked[work.msg_id] = None
        while len(self._acked) > REMEMBERED:
            self._acked.popitem(last=False)
        return True

    async def close(self) -> None:
        """Let the publishes in flight finish (their acks decide what the relay skips)."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
