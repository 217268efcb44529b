"""The executors' durable pull consumer: take work from JetStream only when a slot is free.

One durable consumer per agent type (a work-queue stream allows one consumer per
subject); every executor process of that type binds the same one.

Why nats-py's fetch and not faststream's pull subscriber: with `max_workers`
faststream (0.7) fetches the next message before a worker is free and parks it
in memory, so one message per subscriber sits unacked with its ack_wait running
and no in-progress acks. On tasks longer than ack_wait it is redelivered to
another executor while still queued here, and both run it. (Checked: with
max_workers=2 and ten queued messages the consumer showed 3 acks pending.) A
fetch sized to the free slots takes exactly what can start at once.

Every executor process binds the same durable consumer, so JetStream spreads
work across them and hands a dead executor's unacked messages to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType
from whoosh_shared.runtime.bus import BusError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 2.0  # also bounds how long a stop waits for the fetch in flight
MAX_FETCH_BATCH = 64
BACKLOG_WAIT_S = 0.002  # how long a fetch of what is already queued may wait
RETRY_AFTER_ERROR_S = 1.0

MessageHandler = Callable[[Msg], Awaitable[None]]


def consumer_config(
    settings: ExecutorSettings, durable: str, agent_type: AgentType
) -> ConsumerConfig:
    """The shared durable consumer: explicit acks, ack_wait from the settings, no delivery cap.

    No max_deliver: a message is only redelivered when its executor died or the
    coordinator was unreachable, and the coordinator, not the consumer, decides
    when a task has had enough attempts.
    """
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=subjects.work_for_type(WORK_TOKEN[agent_type]),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=-1,
    )


class WorkConsumer:
    """Fetches work messages and runs each through `handler` in its own task, at most
    `max_parallel` at a time."""

    def __init__(
        self,
        js: JetStreamContext,
        settings: ExecutorSettings,
        handler: MessageHandler,
        durable: str,
        agent_type: AgentType,
    ) -> None:
        self._durable = durable
        self._agent_type = agent_type
        self._js = js
        self._settings = settings
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stop = asyncio.Event()
        self._sub: JetStreamContext.PullSubscription | None = None
        self.on_fetched: Callable[[], None] | None = None
        """Told after each fetch that answered (its supervisor marks the loop healthy)."""

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def bind(self) -> None:
        """Create or update the durable consumer (ack_wait follows the config) and bind to it."""
        config = consumer_config(self._settings, self._durable, self._agent_type)
        try:
            await self._js.add_consumer(subjects.WORK_STREAM, config)
        except BadRequestError as exc:
            raise BusError(
                f"cannot create the work consumer {self._durable!r} on {subjects.WORK_STREAM} "
                f"for {config.filter_subject}: {exc.description} (a work-queue stream allows "
                "one consumer per subject: is another one taking this work?)"
            ) from exc
        self._sub = await self._js.pull_subscribe_bind(self._durable, subjects.WORK_STREAM)

    async def run(self) -> None:
        """Fetch until `stop` is called. Handler tasks are left to `drain`."""
        while not self._stop.is_set():
            if self._sub is None:
                await self._pause_then_rebind()
                continue
            free = self._settings.max_parallel - len(self._tasks)
            if free <= 0:
                await self._wait_for_slot_or_stop()
                continue
            try:
                await self._fetch(free)
            except TimeoutError:  # nats.errors.TimeoutError too: nothing to do right now
                self._fetched()
                continue
            except (nats.errors.Error, OSError) as exc:
                log.warning("fetching work failed, retrying: %r", exc)
                await self._pause_then_rebind()
                continue
            self._fetched()

    async def _fetch(self, free: int) -> None:
        """Wait for one message and start it; then take what is already queued, up to the
        free slots, without waiting for more.

        Not one fetch of a batch: nats-py's, once its waiting request got a first message,
        waits for the rest of the batch until its timeout or the server's "no messages"
        (measured: after 3-8 s idle, the second task waited 1-2 s). A fetch of one returns
        the moment work is there; the backlog fetch's timeout is short enough that it
        cannot hold work up, and without it a burst would cost a fetch per message."""
        assert self._sub is not None
        for msg in await self._sub.fetch(batch=1, timeout=FETCH_TIMEOUT_S):
            self._dispatch(msg)
        backlog = min(free - 1, MAX_FETCH_BATCH)
        if backlog <= 0:
            return
        with contextlib.suppress(TimeoutError):  # nothing queued: the usual case when idle
            for msg in await self._sub.fetch(batch=backlog, timeout=BACKLOG_WAIT_S):
                self._dispatch(msg)

    def _fetched(self) -> None:
        """A fetch answered (work or none): the loop works; its supervisor is told."""
        if self.on_fetched is not None:
            self.on_fetched()

    def stop(self) -> None:
        """Stop fetching; the fetch in flight ends within FETCH_TIMEOUT_S."""
        self._stop.set()

    async def drain(self) -> None:
        """Wait for every handler task to finish (the caller decides how they are hurried)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except (nats.errors.Error, OSError) as exc:
                log.debug("unsubscribe failed: %s", exc)
            self._sub = None

    def _dispatch(self, msg: Msg) -> None:
        """Run one message in its own task, its slot freed when the task ends.

        Messages fetched after a stop still get a task: the handler sees the stop and
        hands them straight back (NAK), so none waits out its ack_wait.
        """
        task = asyncio.create_task(self._handler(msg))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("work handler failed", exc_info=task.exception())

    async def _wait_for_slot_or_stop(self) -> None:
        self._slot_freed.clear()
        if self._settings.max_parallel - len(self._tasks) > 0:
            return
        waiters = [
            asyncio.create_task(self._slot_freed.wait()),
            asyncio.create_task(self._stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _pause_then_rebind(self) -> None:
        """After a fetch error (server restart, consumer deleted): wait, then bind again."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=RETRY_AFTER_ERROR_S)
            return
        except TimeoutError:
            pass
        try:
            await self.close()
            await self.bind()
        except (nats.errors.Error, OSError) as exc:
            log.warning("cannot bind the work consumer yet: %s", exc)
