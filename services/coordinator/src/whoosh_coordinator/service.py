"""The coordinator process: NATS wiring around the command handler, plus its loops.

Commands and queries arrive on wildcard subjects in a queue group, so several
coordinators share the load. Replies go out before scheduling: a background
pass places queued work right after, batching whatever arrived meanwhile. Other
writers' events (a second coordinator on the same PostgreSQL store) are picked
up from the notification log on a store-appended nudge or, at worst, a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from faststream.nats.annotations import NatsMessage
from whoosh_shared import subjects
from whoosh_shared.bus import Bus, ensure_streams
from whoosh_shared.config import CoordinatorSettings
from whoosh_shared.store import describe_store
from whoosh_shared.work import StoreAppended

from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.relay import Relay
from whoosh_coordinator.replay import fold_new
from whoosh_coordinator.store import open_store

log = logging.getLogger(__name__)


class Coordinator:
    def __init__(
        self,
        store_url: str,
        nats_url: str,
        settings: CoordinatorSettings,
        run_relay: bool = True,
        stream_replicas: int = 1,
    ) -> None:
        self.store_url = store_url
        self.settings = settings
        self.stream_replicas = stream_replicas
        self.store = open_store(store_url)
        self.projection = FleetProjection()
        self.bus = Bus(nats_url, "whoosh-coordinator")
        self.handler = CommandHandler(self.store, self.projection, on_saved=self._on_saved)
        self.queries = QueryHandler(self.projection)
        self.assigner = Assigner(self.handler, settings.timeout_grace_s)
        self.run_relay = run_relay
        self.relay: Relay | None = None
        self.kick = asyncio.Event()
        self._saved = False
        self._declare_subscribers()

    # -- wiring -----------------------------------------------------------------------

    def _declare_subscribers(self) -> None:
        broker = self.bus.broker

        @broker.subscriber(subjects.COMMAND_WILDCARD, queue=subjects.COORDINATOR_QUEUE)
        async def on_command(message: NatsMessage) -> bytes:
            reply = self.handler.handle_raw(message.raw_message.subject, message.body)
            await self._after_change()
            return reply.model_dump_json().encode()

        @broker.subscriber(subjects.QUERY_WILDCARD, queue=subjects.COORDINATOR_QUEUE)
        async def on_query(message: NatsMessage) -> bytes:
            reply = self.queries.handle_raw(message.raw_message.subject, message.body)
            return reply.model_dump_json().encode()

        @broker.subscriber(subjects.STORE_APPENDED)
        async def on_appended(message: NatsMessage) -> None:
            self.kick.set()

    def _on_saved(self) -> None:
        self._saved = True
        self.catch_up()
        if self.relay is not None:
            self.relay.wake.set()

    async def _after_change(self) -> None:
        """Tell followers (relays, other coordinators) and our own scheduler: the log grew."""
        if not self._saved:
            return
        self._saved = False
        self.kick.set()
        nudge = StoreAppended(notification_id=self.projection.position)
        await self.bus.nc.publish(subjects.STORE_APPENDED, nudge.model_dump_json().encode())

    def catch_up(self) -> int:
        """Fold every event the projection has not seen yet (ours or another writer's)."""
        return fold_new(self.store, self.projection)

    # -- loops ------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), self.settings.poll_interval_s)
            self.kick.clear()
            try:
                self.catch_up()
                self.assigner.assign_pending()
                await self._after_change()
            except Exception:
                log.exception("scheduling pass failed")
                await asyncio.sleep(self.settings.poll_interval_s)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                if self.assigner.time_out_overdue():
                    await self._after_change()
                self.kick.set()  # retries whose backoff has passed become placeable
            except Exception:
                log.exception("timeout sweep failed")

    async def run(self, stop: asyncio.Event) -> None:
        folded = self.catch_up()
        log.info(
            "coordinator started: store %s, %d events replayed, %d tasks, %d agents",
            describe_store(self.store_url),
            folded,
            len(self.projection.tasks),
            len(self.projection.agents),
        )
        await self.bus.connect()
        await ensure_streams(self.bus.js, self.stream_replicas, update=True)
        await self.bus.broker.start()
        loops = [
            asyncio.create_task(self._schedule_loop()),
            asyncio.create_task(self._sweep_loop()),
        ]
        if self.run_relay:
            self.relay = Relay(self.store, self.bus.js, self.settings.poll_interval_s)
            loops.append(asyncio.create_task(self.relay.run()))
        self.kick.set()
        try:
            await stop.wait()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.bus.close()
            self.store.close()
            log.info("coordinator stopped")


async def run_relay_only(
    store_url: str, nats_url: str, poll_interval_s: float, stop: asyncio.Event
) -> None:
    """A relay as its own process: follows the store, woken by nudges or its poll."""
    store = open_store(store_url)
    bus = Bus(nats_url, "whoosh-relay")
    await bus.connect()
    await ensure_streams(bus.js)
    relay = Relay(store, bus.js, poll_interval_s)

    @bus.broker.subscriber(subjects.STORE_APPENDED)
    async def on_appended(message: NatsMessage) -> None:
        relay.wake.set()

    await bus.broker.start()
    task = asyncio.create_task(relay.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()
        store.close()


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
