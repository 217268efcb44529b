"""The executors' durable pull consumer: take work from JetStream only when a slot is free.

One durable consumer per agent type (a work-queue stream allows one consumer per
subject); every executor process of that type binds the same one, so JetStream spreads
work across them and hands a dead executor's unacked messages to the others.

Why pull requests of our own and not faststream's pull subscriber: with `max_workers`
faststream (0.7) fetches the next message before a worker is free and parks it in
memory, so one message per subscriber sits unacked with its ack_wait running and no
in-progress acks; on tasks longer than ack_wait it is redelivered to another executor
while still queued here, and both run it. Nothing is ever asked for here beyond the free
slots, and every message is handed to its handler the moment it arrives.

Why not nats-py's `fetch`: a fetch is one request per batch, and its batch mode waits
for the whole batch (or the server's "no messages") before returning any of it, so the
consumer had to fetch one message, then what was already queued with a short timeout:
two or three pull requests per task, each costing nats-server and this process a
round of work (measured with `bench_noop.py`: one fetch per message took nats-server
from 0.32 to 0.87 ms of CPU per task). Here a standing pull request asks for as many
messages as there are free slots and lives PULL_EXPIRES_S; it is topped up once the
slots freed since outnumber what is still asked for, i.e. one request per several
tasks under load and one per task when work comes one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, AckPolicy, ConsumerConfig, DeliverPolicy, Header
from nats.js.errors import BadRequestError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType
from whoosh_shared.runtime.bus import BusError

log = logging.getLogger(__name__)

PULL_EXPIRES_S = 2.0  # a pull request's life; also how often an idle consumer hears back
STATUS_GRACE_S = 1.0  # past its expiry, a request is gone even if its status was lost
RETRY_AFTER_ERROR_S = 1.0
OVERFLOW_REDELIVERY_DELAY_S = 0.2
PENDING_MESSAGES = "Nats-Pending-Messages"
CONSUMER_GONE = ("consumer deleted", "consumer is push based")

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
    """Asks for work while slots are free and runs each message through `handler` in its
    own task, at most `max_parallel` at a time."""

    def __init__(
        self,
        nc: Client,
        settings: ExecutorSettings,
        handler: MessageHandler,
        durable: str,
        agent_type: AgentType,
    ) -> None:
        self._durable = durable
        self._agent_type = agent_type
        self._nc = nc
        self._settings = settings
        self._handler = handler
        self._next_subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{subjects.WORK_STREAM}.{durable}"
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._sub: Subscription | None = None
        self._inbox = ""
        self._requested = 0
        """Messages asked for and neither delivered nor given up by the server."""
        self._requests_end = 0.0
        """When the last request sent is surely over (expired, or its status lost)."""
        self._consumer_gone = False
        self.on_fetched: Callable[[], None] | None = None
        """Told whenever the server answers (work or a request's end): its supervisor
        marks the loop healthy."""

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def bind(self) -> None:
        """Create or update the durable consumer (ack_wait follows the config) and listen
        on an inbox of our own for what our pull requests bring."""
        config = consumer_config(self._settings, self._durable, self._agent_type)
        try:
            await self._nc.jetstream().add_consumer(subjects.WORK_STREAM, config)
        except BadRequestError as exc:
            raise BusError(
                f"cannot create the work consumer {self._durable!r} on {subjects.WORK_STREAM} "
                f"for {config.filter_subject}: {exc.description} (a work-queue stream allows "
                "one consumer per subject: is another one taking this work?)"
            ) from exc
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_delivery)
        self._requested, self._requests_end, self._consumer_gone = 0, 0.0, False

    async def run(self) -> None:
        """Keep pull requests standing for the free slots until `stop` is called. Handler
        tasks are left to `drain`."""
        while not self._stop.is_set():
            if self._sub is None or self._consumer_gone:
                await self._pause_then_rebind()
                continue
            self._changed.clear()
            self._forget_lapsed_requests()
            wanted = self._settings.max_parallel - len(self._tasks) - self._requested
            if wanted > 0 and wanted >= self._requested:
                try:
                    await self._request(wanted)
                except (nats.errors.Error, OSError) as exc:
                    log.warning("asking for work failed, retrying: %r", exc)
                    await self._pause_then_rebind()
                    continue
            await self._wait_for_change()

    async def _request(self, batch: int) -> None:
        """One pull request for `batch` messages, answered as they come (not as a batch)."""
        body = {"batch": batch, "expires": int(PULL_EXPIRES_S * 1e9)}
        await self._nc.publish(self._next_subject, json.dumps(body).encode(), reply=self._inbox)
        self._requested += batch
        self._requests_end = time.monotonic() + PULL_EXPIRES_S + STATUS_GRACE_S

    def _forget_lapsed_requests(self) -> None:
        """Past the last request's end nothing is asked for any more, whatever statuses a
        lost connection swallowed: the count starts over from zero."""
        if self._requested and time.monotonic() > self._requests_end:
            self._requested = 0

    async def _wait_for_change(self) -> None:
        """Until a slot frees, a request ends, stop, or the last request's end."""
        timeout = max(self._requests_end - time.monotonic(), 0.0) or PULL_EXPIRES_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _on_delivery(self, msg: Msg) -> None:
        """A work message or the status that ends a pull request (408: it expired, 409:
        the server gave it up; both say how many of its messages it did not deliver)."""
        self._fetched()
        status = (msg.headers or {}).get(Header.STATUS)
        if status is None:
            self._requested = max(self._requested - 1, 0)
            await self._start(msg)
            return
        if status == "100":  # an idle heartbeat: nothing ends
            return
        pending = (msg.headers or {}).get(PENDING_MESSAGES)
        self._requested = max(self._requested - int(pending), 0) if pending else 0
        description = (msg.headers or {}).get(Header.DESCRIPTION, "").lower()
        if status == "409" and description.startswith(CONSUMER_GONE):
            log.warning("the work consumer went away (%s): binding again", description)
            self._consumer_gone = True
        self._changed.set()

    async def _start(self, msg: Msg) -> None:
        """Run it in a task of its own, its slot freed when the task ends. One beyond the
        free slots (a request outlived a reconnect) goes back to the stream. Messages
        arriving after a stop still get a task: the handler hands them straight back
        (NAK), so none waits out its ack_wait."""
        if len(self._tasks) >= self._settings.max_parallel:
            try:
                await msg.nak(delay=OVERFLOW_REDELIVERY_DELAY_S)
            except Exception as exc:  # the connection is gone: redelivered after ack_wait
                log.debug("nak of surplus work not sent: %s", exc)
            return
        task = asyncio.create_task(self._handler(msg))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _fetched(self) -> None:
        """The server answered: the loop works; its supervisor is told."""
        if self.on_fetched is not None:
            self.on_fetched()

    def stop(self) -> None:
        """Stop asking for work (what is already asked for may still arrive until `close`)."""
        self._stop.set()
        self._changed.set()

    async def drain(self) -> None:
        """Wait for every handler task to finish (the caller decides how they are hurried)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop listening: the server drops the pull requests of an inbox nobody hears."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except (nats.errors.Error, OSError) as exc:
                log.debug("unsubscribe failed: %s", exc)
            self._sub = None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._changed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("work handler failed", exc_info=task.exception())

    async def _pause_then_rebind(self) -> None:
        """After an error (server restart, consumer deleted): wait, then bind again."""
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
